/**
 * The one interface every transport implements. A transport is a plain object made by a factory
 * function: `memoryTransport()`, `sandboxTransport()` …
 */
import { EmailError } from './errors.js';
import type { EmailMessage } from './message.js';
import type { QueueReceipt } from './queue.js';

/** Passed to {@link Transport.send} with every attempt. */
export interface SendContext {
  /** Aborts the attempt; a transport stops work and rejects when it fires. */
  readonly signal?: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry … */
  readonly attempt: number;
}

/** What a transport reports after the provider accepted a message. */
export interface SendResult {
  /** The Message-ID header of the message sent, e.g. `<…@acme.example>`. */
  readonly messageId: string;
  /** Recipients the provider accepted. */
  readonly accepted: readonly string[];
  /** Recipients the provider refused while accepting the others. */
  readonly rejected: readonly string[];
  /** The name of the transport that delivered (`memory`, `sandbox`, `smtp` …). */
  readonly transport: string;
  /** The provider's own response, for logging and debugging. */
  readonly response?: unknown;
  /** Attempts it took, the first included. Set by `EmailService`, not by transports. */
  readonly attempts?: number;
  /**
   * Failures of the transports tried before the one that delivered (set by `failoverTransport`):
   * a delivered email can still mean a provider needs attention (`failure === 'systemic'`).
   */
  readonly failovers?: readonly EmailError[];
  /**
   * Set when the service has a `queue`: the email was published, not yet sent (`accepted` is
   * empty and `transport` names the queue). The worker sends it, from its own service's sender
   * unless `from` was given; `messageId` is what it will carry when both sides share the sender's
   * domain (it derives from the idempotency key and that domain).
   */
  readonly queued?: QueueReceipt;
}

/**
 * Delivers an {@link EmailMessage}. Implement this to add a provider.
 *
 * @example
 * ```ts
 * const consoleTransport: Transport = {
 *   name: 'console',
 *   async send(message) {
 *     console.log(message.subject);
 *     return { messageId: message.messageId, accepted: message.to.map((a) => a.address), rejected: [], transport: 'console' };
 *   },
 * };
 * ```
 */
export interface Transport {
  /** Short name used in results, errors and logs. */
  readonly name: string;
  /** Delivers one message. Rejects with an `EmailError` on failure. */
  send(message: EmailMessage, context: SendContext): Promise<SendResult>;
  /** Checks that the transport can deliver (credentials, connectivity, a writable folder). */
  verify?(): Promise<void>;
  /** Releases connections and handles. */
  close?(): Promise<void>;
}

/** Rejects with an `EmailError` (`aborted`) when the attempt's signal has fired. For transport authors. */
export function throwIfAborted(context: SendContext, transport: string): void {
  if (context.signal?.aborted) {
    throw new EmailError('the send was aborted', {
      code: 'aborted',
      transport,
      cause: context.signal.reason,
    });
  }
}
