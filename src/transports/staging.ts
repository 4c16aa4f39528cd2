import { EmailError } from '../errors.js';
import {
  type Address,
  type AddressInput,
  createMessage,
  type EmailMessage,
  keepEnvelope,
  parseAddress,
} from '../message.js';
import type { Transport } from '../transport.js';

/** Options for {@link stagingTransport}. */
export interface StagingTransportOptions {
  /** The transport that really delivers. */
  transport: Transport;
  /**
   * Recipients that may receive mail: full addresses (`qa@acme.example`) or whole domains
   * (`@acme.example`). Others are redirected to `redirectTo` or, without it, refused.
   */
  allow?: readonly string[];
  /** Where mail for everyone else goes. With no `allow`, all mail goes here. */
  redirectTo?: AddressInput;
  /** Put before every subject. Default `[STAGING] `. */
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
  const allow = (options.allow ?? []).map((entry) => entry.trim().toLowerCase());
  const redirect =
    options.redirectTo === undefined ? undefined : parseAddress(options.redirectTo, 'redirectTo');
  const prefix = options.subjectPrefix ?? '[STAGING] ';
  const allowed = (a: Address) => {
    const address = a.address.toLowerCase();
    return allow.some((entry) => (entry.startsWith('@') ? address.endsWith(entry) : address === entry));
  };

  return {
    name: transport.name,
    captures: transport.captures === true,
    narrowsRecipients: transport.narrowsRecipients === true,
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
        headers: refused.length
          ? {
              ...message.headers,
              'X-Mailroom-Original-Recipients': original.map((a) => a.address).join(', '),
            }
          : message.headers,
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
