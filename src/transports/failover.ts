/**
 * Failover across transports: the first one that delivers wins. A transport that failed
 * systemically (bad credentials, TLS, account) is skipped for a while instead of being asked again
 * for every message.
 */
import { ConfigError, type EmailError, isEmailError } from '../errors.js';
import type { EmailMessage } from '../message.js';
import {
  commonScheduling,
  type SendContext,
  type SendResult,
  scheduled,
  type Transport,
  wrapped,
} from '../transport.js';

/** Options of {@link failoverTransport}. */
export interface FailoverOptions {
  /** How long a transport that failed systemically is skipped (ms). Default 60 000. */
  cooldownMs?: number;
  /** Called when a transport fails and the next one is tried. */
  onFailover?: (failed: Transport, error: EmailError, next: Transport) => void;
}

/** A transport that tries several in order. */
export interface FailoverTransport extends Transport {
  readonly name: 'failover';
  readonly transports: readonly Transport[];
}

/**
 * Sends through the first transport; on a transient or systemic failure, through the next, and so
 * on. `result.transport` names the one that delivered. A permanent failure (the message itself is
 * refused) or an ambiguous one (it may have been delivered) is not passed on: another provider
 * would refuse it too, or deliver it twice. When every transport fails, the last error is thrown.
 *
 * @example
 * ```ts
 * const transport = failoverTransport([
 *   mailgunTransport({ apiKey, domain: 'mg.acme.example' }),
 *   smtpTransport({ host: 'smtp.backup.example', user, password }),
 * ]);
 * ```
 */
export function failoverTransport(
  transports: readonly Transport[],
  options: FailoverOptions = {},
): FailoverTransport {
  checkTransports(transports, 'failoverTransport');
  const cooldown = coolingDown(options.cooldownMs);

  return {
    name: 'failover',
    // Mail may reach an inbox unless every transport behind it keeps mail instead; one that
    // keeps it beside others that deliver makes the failover capture some (capturesSome).
    ...wrapped(transports),
    narrowsRecipients: transports.every((t) => t.narrowsRecipients === true),
    // A message with a sendAt goes through only when whichever transport takes it can hold it.
    ...scheduled(commonScheduling(transports)),
    describe: () => `failover: ${transports.map((t) => t.describe?.() ?? t.name).join(' -> ')}`,
    transports: Object.freeze([...transports]),
    send: (message, context) => sendInTurn(transports, message, context, cooldown, options.onFailover),
    async verify() {
      await Promise.all(transports.map((t) => t.verify?.()));
    },
    async close() {
      await Promise.all(transports.map((t) => t.close?.()));
    },
  };
}

/** Internal: refuses anything but a non-empty list of transports. */
export function checkTransports(transports: readonly Transport[], factory: string): void {
  if (!Array.isArray(transports) || transports.length === 0) {
    throw new TypeError(`${factory}: give at least one transport`);
  }
  for (const t of transports) {
    if (!t || typeof t.send !== 'function')
      throw new TypeError(`${factory}: every entry must be a Transport`);
  }
  const staged = transports.findIndex((t) => t.staged === true);
  const open = transports.findIndex((t) => t.staged !== true);
  if (staged !== -1 && open !== -1) {
    throw new ConfigError(
      'transports',
      `entry ${staged} (${transports[staged]!.name}) is staged but entry ${open} ` +
        `(${transports[open]!.name}) is not: mail the next one takes over would reach every ` +
        `recipient; put stagingTransport around ${factory}(…) instead`,
    );
  }
}

/** Internal: which transports failed systemically, until when (ms since the epoch). */
export interface Cooldown {
  readonly ms: number;
  readonly downUntil: Map<Transport, number>;
  /**
   * By Message-ID, the transport whose last attempt at it failed ambiguously (it may have
   * delivered): the retry goes there first, where the provider's own idempotency (Resend's
   * `Idempotency-Key`) or a look at its log can tell, not to another that would deliver it again.
   * At most {@link MAX_AMBIGUOUS} kept, oldest dropped.
   */
  readonly ambiguous: Map<string, Transport>;
}

/** Messages remembered as ambiguously failed per wrapper: far more than are retried at once. */
const MAX_AMBIGUOUS = 10_000;

export function coolingDown(ms = 60_000): Cooldown {
  if (!Number.isFinite(ms) || ms < 0)
    throw new ConfigError('cooldownMs', 'must be a number of milliseconds, 0 or more');
  return { ms, downUntil: new Map(), ambiguous: new Map() };
}

/** Keeps `transport` as the one `message` last failed ambiguously on, dropping the oldest beyond the bound. */
function remember(ambiguous: Map<string, Transport>, message: EmailMessage, transport: Transport): void {
  ambiguous.delete(message.messageId);
  ambiguous.set(message.messageId, transport);
  if (ambiguous.size > MAX_AMBIGUOUS) ambiguous.delete(ambiguous.keys().next().value as string);
}

/**
 * Internal, the rule of failover and round robin: sends through `order`'s transports in turn,
 * skipping those cooling down (unless all are), until one delivers. A transient or systemic
 * failure moves on (a systemic one also cools that transport down); a permanent or ambiguous one is
 * thrown at once: another provider would refuse it too, or deliver it twice.
 */
export async function sendInTurn(
  order: readonly Transport[],
  message: EmailMessage,
  context: SendContext,
  cooldown: Cooldown,
  onFailover: FailoverOptions['onFailover'],
): Promise<SendResult> {
  const now = Date.now();
  const usable = order.filter((t) => (cooldown.downUntil.get(t) ?? 0) <= now);
  // When every transport is cooling down, try them all rather than refuse outright.
  let turn = usable.length ? usable : order;
  // A retry after an ambiguous failure goes back to the transport that may have delivered it.
  const maybe = cooldown.ambiguous.get(message.messageId);
  if (maybe !== undefined) turn = [maybe, ...turn.filter((t) => t !== maybe)];
  let last: unknown;
  const failovers: EmailError[] = [];
  for (const [i, transport] of turn.entries()) {
    try {
      const result: SendResult = await transport.send(message, context);
      cooldown.downUntil.delete(transport);
      cooldown.ambiguous.delete(message.messageId);
      return failovers.length ? { ...result, failovers } : result;
    } catch (error) {
      last = error;
      if (isEmailError(error) && error.failure === 'ambiguous')
        remember(cooldown.ambiguous, message, transport);
      if (!isEmailError(error) || (error.failure !== 'transient' && error.failure !== 'systemic'))
        throw error;
      if (error.failure === 'systemic') cooldown.downUntil.set(transport, Date.now() + cooldown.ms);
      failovers.push(error);
      const next = turn[i + 1];
      if (next) onFailover?.(transport, error, next);
    }
  }
  throw last;
}
