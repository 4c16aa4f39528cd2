/**
 * Send later: reading a `sendAt` instant, the limits on how far ahead, and the quiet-hours hook
 * that moves `product`/`marketing` mail to a recipient's next allowed time. Shared by the message
 * check, the service (direct sends), the Kafka producer and its worker.
 */
import { MessageError } from './errors.js';
import type { EmailCategory } from './message.js';

/**
 * How far ahead a `sendAt` may be when the email is published through Kafka: 30 days (ms). The
 * worker holds such a record on its delay topics, hopping it from tier to tier; a month bounds
 * how many hops one email takes and how long a record outlives a change of mind.
 */
export const MAX_QUEUED_SEND_AHEAD_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * An ISO 8601 instant with its offset: `2026-12-01T09:30:00Z`, `2026-12-01T10:30:00.000+01:00`.
 * A local time without an offset is not an instant (whose 09:30?) and is refused.
 */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/**
 * Reads a `sendAt` as given (a `Date`, or an ISO 8601 instant with `Z` or an offset) into ms since
 * the epoch. Throws a `MessageError` naming `field` for anything else.
 */
export function sendAtTime(value: unknown, field = 'sendAt'): number {
  let time = Number.NaN;
  if (value instanceof Date) time = value.getTime();
  else if (typeof value === 'string' && ISO_INSTANT.test(value)) time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new MessageError(
      field,
      'must be a Date or an ISO 8601 instant with an offset, e.g. 2026-12-01T09:30:00Z',
    );
  }
  return time;
}

/**
 * A message's `sendAt` as the message keeps it: a `Date` when it is in the future, undefined when
 * it is absent or already past (a past `sendAt` means "send now", never an error).
 */
export function futureSendAt(value: unknown, now = Date.now()): Date | undefined {
  if (value === undefined) return undefined;
  const time = sendAtTime(value);
  return time > now ? new Date(time) : undefined;
}

/** Throws a `MessageError` naming `sendAt` when `time` is more than `maxAheadMs` from `now`. */
export function checkSendAhead(time: number, maxAheadMs: number, where: string, now = Date.now()): void {
  if (time - now > maxAheadMs) {
    throw new MessageError(
      'sendAt',
      `is ${formatSpan(time - now)} ahead; ${where} schedules at most ${formatSpan(maxAheadMs)} ahead`,
    );
  }
}

/**
 * The quiet-hours hook (`EmailServiceOptions.quietHours`): asked, for `product` and `marketing`
 * mail only, when each `to` recipient may next get an email of `category`. Return a `Date` to hold
 * the email until then (the latest over its recipients wins), or `undefined` (or a time not after
 * `now`) to send now. `security` and `transactional` mail is never asked: it is never held back.
 *
 * @example
 * ```ts
 * // Nothing between 21:00 and 08:00 in the recipient's own time zone.
 * const quietHours: QuietHours = (recipient, _category, now) => nextMorning(zoneOf(recipient), now);
 * ```
 */
export type QuietHours = (
  recipient: string,
  category: 'product' | 'marketing',
  now: Date,
) => Date | undefined;

/**
 * When quiet hours let an email of `category` go to every one of `recipients`: ms since the epoch,
 * or undefined when they do not hold it (or the category is never held). A hook returning
 * something other than a valid Date or undefined is a `MessageError` naming `quietHours`.
 */
export function quietHoursUntil(
  hook: QuietHours | undefined,
  recipients: readonly string[],
  category: EmailCategory,
  now = Date.now(),
): number | undefined {
  if (hook === undefined || (category !== 'product' && category !== 'marketing')) return undefined;
  const at = new Date(now);
  let latest: number | undefined;
  for (const recipient of recipients) {
    const until = hook(recipient, category, at);
    if (until === undefined) continue;
    if (!(until instanceof Date) || Number.isNaN(until.getTime()))
      throw new MessageError('quietHours', 'must return a valid Date or undefined');
    const time = until.getTime();
    if (time > now && (latest === undefined || time > latest)) latest = time;
  }
  return latest;
}

/**
 * When an email is due (ms since the epoch): its own `sendAt` (`own`, still ahead, or undefined),
 * moved later by quiet hours for `recipients` (see {@link quietHoursUntil}); undefined: now. The
 * one rule for a direct send and for a queue worker.
 */
export function dueTime(
  own: number | undefined,
  hook: QuietHours,
  recipients: readonly string[],
  category: EmailCategory,
  now = Date.now(),
): number | undefined {
  const quiet = quietHoursUntil(hook, recipients, category, now);
  return quiet !== undefined && (own === undefined || quiet > own) ? quiet : own;
}

/**
 * Internal: set on a send's input by a queue worker that already held the email until it was due
 * (its `sendAt` and quiet hours, asked just before): the service does not ask quiet hours again,
 * so an email that comes up as quiet hours begin is sent, not refused for a transport that cannot
 * schedule. `Symbol.for`: the package may be loaded twice.
 */
export const ALREADY_DUE = Symbol.for('mailroom.send-at.already-due');

/** A span of ms as people say it: `3 days`, `26 hours`, `90 s`. */
function formatSpan(ms: number): string {
  const day = 86_400_000;
  if (ms >= day && ms % day === 0) return `${ms / day} days`;
  if (ms >= 2 * 3_600_000) return `${Math.round(ms / 3_600_000)} hours`;
  return `${Math.round(ms / 1000)} s`;
}
