/**
 * Queued delivery: an {@link EmailService} given a `queue` publishes each email instead of sending
 * it, and a worker elsewhere renders and sends. The interface lives in the core so the service
 * never imports a queue client; `mailroom-js/kafka`'s producer implements it.
 */
import type { AddressInput, Attachment, EmailCategory, MetadataValue } from './message.js';

/**
 * One email handed to a queue: a template and its data (rendered by the worker), or a subject
 * and a body already rendered. Validated by the service before it is handed over.
 */
export interface QueuedEmail {
  /** The template's name; the worker's service must know it. */
  readonly template?: string;
  /** The template's data, checked against its fields before publishing. */
  readonly data?: Readonly<Record<string, unknown>>;
  /** Overrides the template's subject; required without a template. */
  readonly subject?: string;
  readonly html?: string;
  readonly text?: string;
  readonly from?: AddressInput;
  readonly replyTo?: AddressInput | readonly AddressInput[];
  readonly to: AddressInput | readonly AddressInput[];
  readonly cc?: AddressInput | readonly AddressInput[];
  readonly bcc?: AddressInput | readonly AddressInput[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly attachments?: readonly Attachment[];
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, MetadataValue>>;
  /**
   * What kind of email it is (`security`, `transactional`, `product`, `marketing`). Default
   * `transactional`. The worker's service checks its suppression list by it: `security` mail is
   * never suppressed.
   */
  readonly category?: EmailCategory;
  /** The language to render the template in (BCP 47). Default: the worker's service `locale`. */
  readonly locale?: string;
  /** Names this logical email; the Message-ID derives from it, so redeliveries are recognisable. */
  readonly idempotencyKey?: string;
  /**
   * When to deliver (a `Date` or an ISO 8601 instant with an offset); absent or past: at once.
   * The worker holds a record until then on its delay topics, never blocking a partition. At most
   * 30 days ahead (`MAX_QUEUED_SEND_AHEAD_MS`): further is a `MessageError` naming `sendAt`.
   */
  readonly sendAt?: Date | string;
  /** W3C trace context of the request that asked for the email. */
  readonly traceparent?: string;
}

/** Where a queued email went. */
export interface QueueReceipt {
  /** The envelope's own id. */
  readonly id: string;
  readonly idempotencyKey: string;
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: string;
}

/** A queue an {@link EmailService} can publish to instead of sending (e.g. `createEmailProducer()`). */
export interface EmailQueue {
  /** Short name used in results and logs, e.g. `kafka`. */
  readonly name: string;
  /** Publishes one email; resolves once the queue has durably accepted it. */
  enqueue(email: QueuedEmail, options?: { signal?: AbortSignal }): Promise<QueueReceipt>;
}
