import { lowerAscii } from '../ascii-case.js';
import { ConfigError, EmailError, isMessageError } from '../errors.js';
import {
  type Address,
  type AddressInput,
  createMessage,
  type EmailMessage,
  keepEnvelope,
  parseAddress,
  unsafeText,
  withOriginalRecipients,
} from '../message.js';
import { commonScheduling, scheduled, type Transport, wrapped } from '../transport.js';

/** Options for {@link stagingTransport}. */
export interface StagingTransportOptions {
  /** The transport that really delivers. */
  transport: Transport;
  /**
   * Recipients that may receive mail: full addresses (`qa@acme.example`) or whole domains
   * (`@acme.example`, that domain only, not its subdomains; an address whose local part has `%`
   * or `!`, which a server may route on to another domain, never reaches here: every message
   * refuses it). Others are redirected to `redirectTo`
   * or, without it, refused. Anything else (`acme.example`, `*@acme.example`, an empty entry) is a
   * `ConfigError` naming `allow` and the entry's index, when the transport is built.
   */
  allow?: readonly string[];
  /** Where mail for everyone else goes. With no `allow`, all mail goes here. */
  redirectTo?: AddressInput;
  /**
   * Put before every subject. Default `[STAGING] `. Header text: line breaks and control
   * characters are a `ConfigError` naming `subjectPrefix`, when the transport is built.
   */
  subjectPrefix?: string;
}

/**
 * Wraps a transport for staging: only allow-listed recipients get mail, everything else is
 * redirected to one inbox (with the original recipients in `X-Mailroom-Original-Recipients`) or
 * refused — never silently dropped: refused recipients appear in `SendResult.rejected`, and a
 * message with no recipient left fails with an `EmailError` (`rejected`).
 *
 * @example
 * ```ts
 * const transport = stagingTransport({
 *   transport: smtp,
 *   allow: ['@acme.example'],
 *   redirectTo: 'qa-inbox@acme.example',
 * });
 * ```
 */
export function stagingTransport(options: StagingTransportOptions): Transport {
  const { transport } = options;
  if (!transport || typeof transport.send !== 'function') {
    throw new TypeError('stagingTransport: transport is required');
  }
  if (!options.allow && options.redirectTo === undefined) {
    throw new TypeError('stagingTransport: give allow, redirectTo, or both');
  }
  const allow = checkAllow(options.allow, options.redirectTo !== undefined);
  const redirect = options.redirectTo === undefined ? undefined : checkRedirect(options.redirectTo);
  const prefix = checkPrefix(options.subjectPrefix ?? '[STAGING] ');
  const allowed = (a: Address) => {
    const address = lowerAscii(a.address);
    return allow.some((entry) => (entry.startsWith('@') ? address.endsWith(entry) : address === entry));
  };

  return {
    name: transport.name,
    ...wrapped([transport]),
    staged: true,
    narrowsRecipients: transport.narrowsRecipients === true,
    ...scheduled(commonScheduling([transport])),
    describe: () =>
      `${transport.describe?.() ?? transport.name}, staged (allowed: ${allow.join(', ') || 'none'}; others ${redirect ? `to ${redirect.address}` : 'refused'})`,
    async send(message, context) {
      const original = [...message.to, ...message.cc, ...message.bcc];
      const refused = original.filter((a) => !allowed(a));
      const keep = (list: readonly Address[]) => list.filter(allowed);
      let to = keep(message.to);
      if (redirect && refused.length > 0) to = [...to, redirect];
      let cc = keep(message.cc);
      let bcc = keep(message.bcc);
      // A message needs a To: promote the remaining Cc (or Bcc) recipients when To is empty.
      if (to.length === 0) [to, cc] = [cc, []];
      if (to.length === 0) [to, bcc] = [bcc, []];
      if (to.length === 0) {
        throw new EmailError('staging: no recipient is on the allowlist', {
          code: 'rejected',
          transport: 'staging',
        });
      }
      const rewritten: EmailMessage = createMessage({
        ...message,
        to,
        cc,
        bcc,
        subject: `${prefix}${message.subject}`,
        headers: refused.length ? withOriginalRecipients(message) : message.headers,
      });
      // A retry of deferred recipients stays one, with the first attempt's Date.
      const result = await transport.send(keepEnvelope(message, rewritten), context);
      return redirect
        ? result
        : { ...result, rejected: [...result.rejected, ...refused.map((a) => a.address)] };
    },
    verify: transport.verify ? () => transport.verify!() : undefined,
    close: transport.close ? () => transport.close!() : undefined,
  };
}

/** The allowlist as lower-case addresses and `@domain`s, checked entry by entry. */
function checkAllow(allow: unknown, redirects: boolean): string[] {
  if (allow === undefined) return [];
  if (!Array.isArray(allow)) throw new TypeError('stagingTransport: allow must be an array of strings');
  if (allow.length === 0 && !redirects) {
    throw new ConfigError('allow', 'is empty and there is no redirectTo: every message would be refused');
  }
  return allow.map((entry: unknown, index) => {
    if (typeof entry !== 'string') throw new TypeError(`stagingTransport: allow[${index}] must be a string`);
    const bad = new ConfigError(
      'allow',
      `entry ${index} ${shown(entry)} must be an address (qa@acme.example) or a whole domain (@acme.example)`,
    );
    const value = entry.trim();
    // Checked first: parseAddress would read `a@b.example;@c.example` as an address at most.
    if (value === '' || unsafeText(entry) || /[\s,;*]/.test(value)) throw bad;
    try {
      // A domain entry is checked, and made ASCII, as the domain of an address: the way messages' are.
      const domain = value.startsWith('@');
      const parsed = lowerAscii(parseAddress(domain ? `postmaster${value}` : value, 'allow').address);
      return domain ? parsed.slice(parsed.indexOf('@')) : parsed;
    } catch (err) {
      if (isMessageError(err)) throw bad;
      throw err;
    }
  });
}

function checkRedirect(input: AddressInput): Address {
  if (typeof input !== 'string' && (typeof input !== 'object' || input === null)) {
    throw new TypeError('stagingTransport: redirectTo must be an address string or { name, address }');
  }
  try {
    return parseAddress(input, 'redirectTo');
  } catch (err) {
    // The address is the setup's, not a message's: a config mistake, found when it is built.
    if (isMessageError(err)) {
      const problem = err.message.slice(err.field.length + 2);
      throw new ConfigError('redirectTo', err.field === 'redirectTo' ? problem : `${err.field}: ${problem}`);
    }
    throw err;
  }
}

function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw new TypeError('stagingTransport: subjectPrefix must be a string');
  const unsafe = unsafeText(prefix);
  if (unsafe) throw new ConfigError('subjectPrefix', unsafe);
  return prefix;
}

/** An allowlist entry as it may be shown in an error: quoted, escaped, short. */
function shown(entry: string): string {
  return JSON.stringify(entry.length > 60 ? `${entry.slice(0, 60)}…` : entry);
}
