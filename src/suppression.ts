/**
 * Suppression: addresses that must not be mailed again (hard bounces, spam complaints, manual
 * blocks), checked by `EmailService` before every non-`security` send.
 */

import { lowerAscii } from './ascii-case.js';
import { isMessageError, MessageError } from './errors.js';
import { parseAddress } from './message.js';
import type { DeliveryEvent } from './webhooks/events.js';

/**
 * Why an address is suppressed: `hard-bounce` (the address does not exist or refuses mail for
 * good), `complaint` (the recipient marked our mail as spam), `unsubscribe`, or `manual`.
 */
export type SuppressionReason = 'hard-bounce' | 'complaint' | 'unsubscribe' | 'manual';

const REASONS: readonly SuppressionReason[] = ['hard-bounce', 'complaint', 'unsubscribe', 'manual'];

/** One suppressed address. */
export interface Suppression {
  /** The address, lower-cased (`jane@example.com`). */
  readonly address: string;
  readonly reason: SuppressionReason;
  /** When it was suppressed. */
  readonly since: Date;
  /** What caused it, for the people who lift it: the provider's bounce text, a note. */
  readonly detail?: string;
}

/** Extra facts {@link SuppressionStore.suppress} keeps with a suppression. */
export interface SuppressOptions {
  /**
   * What caused it (a bounce description, who blocked it and why). At most 1 000 characters, else
   * a `MessageError` naming `detail`. Default: none.
   */
  detail?: string;
  /** When it happened (the provider's event time). Default: now. Not a valid `Date`: a `MessageError` naming `since`. */
  since?: Date;
}

/**
 * Where suppressed addresses live. Every method is asynchronous, so a database can back it;
 * addresses are compared lower-cased. {@link memorySuppressionStore} is the in-process one.
 *
 * @example
 * ```ts
 * const suppressions = memorySuppressionStore();
 * const mail = new EmailService({ transport, from, suppressions });
 * app.post('/hooks/mailgun', createWebhookHandler({ provider: 'mailgun', signingKey, onEvent: suppressFromEvents(suppressions) }));
 * ```
 */
export interface SuppressionStore {
  /**
   * The suppression of `address`, or `undefined` when it may be mailed. A malformed address is a
   * `MessageError` naming `address`.
   */
  isSuppressed(address: string): Promise<Suppression | undefined>;
  /**
   * Suppresses `address`. Suppressing it again keeps the first reason and date (the first cause
   * is what someone lifting it needs to see). A malformed address is a `MessageError` (`address`),
   * an unknown reason one naming `reason`.
   */
  suppress(address: string, reason: SuppressionReason, options?: SuppressOptions): Promise<void>;
  /** Lets `address` be mailed again; resolves to whether it was suppressed (`false`: nothing to lift). */
  lift(address: string): Promise<boolean>;
  /** Every suppression, oldest `since` first (those of the same instant in the order they were made). */
  list(): Promise<Suppression[]>;
}

/**
 * A {@link SuppressionStore} in this process's memory: for tests, a single instance, or as the
 * shape to copy for a database. Lost on restart, and never seen by another process (a second web
 * server, a Kafka worker): use `postgresSuppressionStore()` for those.
 *
 * @example
 * ```ts
 * const suppressions = memorySuppressionStore();
 * await suppressions.suppress('bob@example.com', 'manual', { detail: 'asked by phone, ticket 4121' });
 * const mail = new EmailService({ transport, from, suppressions });
 * ```
 */
export function memorySuppressionStore(): SuppressionStore {
  const entries = new Map<string, Suppression>();
  return {
    async isSuppressed(address) {
      return entries.get(normalise(address));
    },
    async suppress(address, reason, options = {}) {
      const key = normalise(address);
      const entry = suppression(key, reason, options);
      if (!entries.has(key)) entries.set(key, entry);
    },
    async lift(address) {
      return entries.delete(normalise(address));
    },
    async list() {
      // Oldest first; suppressions of the same instant in the order they were made (a stable sort).
      return [...entries.values()].sort((a, b) => a.since.getTime() - b.since.getTime());
    },
  };
}

/**
 * An `onEvent` for a webhook handler that suppresses the addresses a provider reports as dead:
 * hard bounces (`hard-bounce`) and spam complaints (`complaint`), with the provider's reason as
 * the detail. Soft bounces, deferrals, unsubscribes and engagement events change nothing:
 * unsubscribes are preferences, not deliverability, and are yours to record where you keep them.
 * An event whose recipient is not an email address is skipped. A store that fails rejects, so the
 * webhook answers 500 and the provider sends the event again.
 *
 * @example
 * ```ts
 * createWebhookHandler({ provider: 'resend', secret, onEvent: suppressFromEvents(suppressions) });
 * ```
 */
export function suppressFromEvents(store: SuppressionStore): (event: DeliveryEvent) => Promise<void> {
  if (typeof store?.suppress !== 'function')
    throw new TypeError('suppressFromEvents: expected a SuppressionStore (e.g. memorySuppressionStore())');
  return async (event) => {
    // Who bounced or complained is not known (one of several recipients): suppress nobody.
    if (event.recipientKnown === false) return;
    const reason: SuppressionReason | undefined =
      event.type === 'bounced' && event.bounce === 'hard'
        ? 'hard-bounce'
        : event.type === 'complained'
          ? 'complaint'
          : undefined;
    if (!reason) return;
    const detail = [event.provider, event.diagnostic, event.reason].filter(Boolean).join(': ').slice(0, 1000);
    try {
      await store.suppress(event.recipient, reason, { detail, since: event.timestamp });
    } catch (error) {
      // An address no one can send to needs no suppressing, and failing would make the provider
      // send the same request again and again.
      if (isMessageError(error) && error.field === 'address') return;
      throw error;
    }
  };
}

/**
 * Internal: the form an address is stored and compared in: checked as given, then its ASCII
 * letters lower-cased and nothing else (the same mapping the webhooks' events use, so a write and
 * a lookup never disagree).
 */
export function normalise(address: string): string {
  if (typeof address !== 'string') throw new MessageError('address', 'must be an email address');
  return lowerAscii(parseAddress(address.trim(), 'address').address);
}

/**
 * Internal: the suppression a store keeps for `address` (already {@link normalise}d), checked: an
 * unknown reason, a detail over 1 000 characters or an invalid date is a `MessageError` naming it.
 */
export function suppression(
  address: string,
  reason: SuppressionReason,
  options: SuppressOptions,
): Suppression {
  if (!REASONS.includes(reason)) throw new MessageError('reason', `must be one of ${REASONS.join(', ')}`);
  const { detail, since } = options;
  if (detail !== undefined && (typeof detail !== 'string' || detail.length > 1000))
    throw new MessageError('detail', 'must be a string of at most 1 000 characters');
  if (since !== undefined && (!(since instanceof Date) || Number.isNaN(since.getTime())))
    throw new MessageError('since', 'must be a valid Date');
  return Object.freeze({
    address,
    reason,
    since: since ?? new Date(),
    ...(detail ? { detail } : {}),
  });
}
