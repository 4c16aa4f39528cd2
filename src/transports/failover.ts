/**
 * Failover across transports: the first one that delivers wins. A transport that failed
 * systemically (bad credentials, TLS, account) is skipped for a while instead of being asked again
 * for every message.
 */
import { type EmailError, isEmailError } from '../errors.js';
import type { SendResult, Transport } from '../transport.js';

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
  if (!Array.isArray(transports) || transports.length === 0) {
    throw new TypeError('failoverTransport: give at least one transport');
  }
  for (const t of transports) {
    if (!t || typeof t.send !== 'function')
      throw new TypeError('failoverTransport: every entry must be a Transport');
  }
  const cooldownMs = options.cooldownMs ?? 60_000;
  const downUntil = new Map<Transport, number>();

  return {
    name: 'failover',
    // Mail may reach an inbox unless every transport behind it keeps mail instead.
    captures: transports.every((t) => t.captures === true),
    narrowsRecipients: transports.every((t) => t.narrowsRecipients === true),
    describe: () => `failover: ${transports.map((t) => t.describe?.() ?? t.name).join(' -> ')}`,
    transports: Object.freeze([...transports]),
    async send(message, context) {
      const now = Date.now();
      const usable = transports.filter((t) => (downUntil.get(t) ?? 0) <= now);
      // When every transport is cooling down, try them all rather than refuse outright.
      const order = usable.length ? usable : transports;
      let last: unknown;
      const failovers: EmailError[] = [];
      for (const [i, transport] of order.entries()) {
        try {
          const result: SendResult = await transport.send(message, context);
          downUntil.delete(transport);
          return failovers.length ? { ...result, failovers } : result;
        } catch (error) {
          last = error;
          if (!isEmailError(error) || (error.failure !== 'transient' && error.failure !== 'systemic'))
            throw error;
          if (error.failure === 'systemic') downUntil.set(transport, Date.now() + cooldownMs);
          failovers.push(error);
          const next = order[i + 1];
          if (next) options.onFailover?.(transport, error, next);
        }
      }
      throw last;
    },
    async verify() {
      await Promise.all(transports.map((t) => t.verify?.()));
    },
    async close() {
      await Promise.all(transports.map((t) => t.close?.()));
    },
  };
}
