/**
 * Round robin across transports: each send starts with the next transport in turn, so the load is
 * spread; a failure moves on the way failover does.
 */
import { commonScheduling, scheduled, type Transport, wrapped } from '../transport.js';
import { checkTransports, coolingDown, type FailoverOptions, sendInTurn } from './failover.js';

/** Options of {@link roundRobinTransport}: those of failover. */
export interface RoundRobinOptions {
  /** How long a transport that failed systemically is left out of the turn (ms). Default 60 000. */
  cooldownMs?: number;
  /** Called when a transport fails and the next one is tried for the same message. */
  onFailover?: FailoverOptions['onFailover'];
}

/** A transport that spreads sends across several. */
export interface RoundRobinTransport extends Transport {
  readonly name: 'round-robin';
  readonly transports: readonly Transport[];
}

/**
 * Sends each message through the next transport in turn (the first message through the first,
 * the second through the second, …, then the first again), spreading the load over providers or
 * accounts. A message whose transport fails transiently or systemically goes to the next ones in
 * turn, as with `failoverTransport` (and `result.failovers` lists those failures); a transport
 * that failed systemically (credentials, account) is left out of the turn for `cooldownMs`. A
 * permanent failure (the message itself is refused) or an ambiguous one (it may have been
 * delivered) is thrown at once. `result.transport` names the transport that delivered. A retry of
 * the same message (the service's next attempt) takes the next turn like any other send, so a
 * timeout or dropped answer on one provider is retried on another.
 *
 * Throws a `TypeError` for an empty list or an entry that is not a transport, a `ConfigError`
 * naming `cooldownMs` for a negative or non-numeric cooldown.
 *
 * @example
 * ```ts
 * const transport = roundRobinTransport([
 *   postmarkTransport({ serverToken: process.env.POSTMARK_SERVER_TOKEN! }),
 *   sendgridTransport({ apiKey: process.env.SENDGRID_API_KEY! }),
 * ]);
 * ```
 */
export function roundRobinTransport(
  transports: readonly Transport[],
  options: RoundRobinOptions = {},
): RoundRobinTransport {
  checkTransports(transports, 'roundRobinTransport');
  const cooldown = coolingDown(options.cooldownMs);
  const list = Object.freeze([...transports]);
  let next = 0;

  return {
    name: 'round-robin',
    ...wrapped(list),
    narrowsRecipients: list.every((t) => t.narrowsRecipients === true),
    ...scheduled(commonScheduling(list)),
    describe: () => `round-robin: ${list.map((t) => t.describe?.() ?? t.name).join(', ')}`,
    transports: list,
    send(message, context) {
      const start = next;
      next = (next + 1) % list.length;
      const order = [...list.slice(start), ...list.slice(0, start)];
      return sendInTurn(order, message, context, cooldown, options.onFailover);
    },
    async verify() {
      await Promise.all(list.map((t) => t.verify?.()));
    },
    async close() {
      await Promise.all(list.map((t) => t.close?.()));
    },
  };
}
