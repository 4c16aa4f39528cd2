/**
 * The one interface every transport implements. A transport is a plain object made by a factory
 * function: `memoryTransport()`, `sandboxTransport()` …
 */

import { EmailError } from './errors.js';
import type { EmailMessage } from './message.js';
import type { PreferenceReason } from './preferences.js';
import type { QueueReceipt } from './queue.js';
import type { SuppressionReason } from './suppression.js';

/** Passed to {@link Transport.send} with every attempt. */
export interface SendContext {
  /** Aborts the attempt; a transport stops work and rejects when it fires. */
  readonly signal?: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry … */
  readonly attempt: number;
}

/**
 * One recipient the provider refused while it accepted the message for others (SMTP answers each
 * `RCPT TO` on its own: RFC 5321 §3.3, §4.2.1). A 4xx reply is `transient` (try that recipient
 * again later: greylisting, a full mailbox), a 5xx reply `permanent`.
 */
export interface RecipientRefusal {
  /** The refused address, as sent. */
  readonly address: string;
  /** `transient` for a 4xx reply, `permanent` for a 5xx one. */
  readonly failure: 'transient' | 'permanent';
  /** The SMTP reply code (450, 452, 550 …) or the provider's HTTP status, when known. */
  readonly status?: number;
  /** The server's reply, one line, at most 200 characters. Never contains our credentials. */
  readonly response?: string;
}

/** What a transport reports after the provider accepted a message. */
export interface SendResult {
  /** The Message-ID header of the message sent, e.g. `<…@acme.example>`. */
  readonly messageId: string;
  /** Recipients the provider accepted. */
  readonly accepted: readonly string[];
  /** Recipients the provider refused permanently (5xx) while accepting the others. */
  readonly rejected: readonly string[];
  /**
   * Recipients the provider refused temporarily (4xx) and that were still refused after the last
   * attempt the retry budget allowed. Absent or empty when every recipient was accepted or refused
   * for good. A queue worker parks a copy of the email narrowed to these.
   */
  readonly deferred?: readonly string[];
  /** Why each recipient in `rejected` and `deferred` was refused, one entry per address. */
  readonly refusals?: readonly RecipientRefusal[];
  /** The name of the transport that delivered (`memory`, `sandbox`, `smtp` …). */
  readonly transport: string;
  /** The provider's own response, for logging and debugging. */
  readonly response?: unknown;
  /**
   * The provider's own id of the accepted message, when it gives one (Mailgun's `id`, Postmark's
   * `MessageID`, Resend's `id`, SendGrid's `X-Message-Id` header): what its delivery events name.
   */
  readonly providerMessageId?: string;
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
  /**
   * Recipients the service did not send to because its suppression list has them or their
   * preferences rule the category out, each with why (see `EmailServiceOptions.suppressions` and
   * `preferences`). When every `to` recipient is suppressed nothing is
   * sent at all (not to `cc` or `bcc` either): `accepted` is empty and `attempts` is 0.
   */
  readonly suppressed?: readonly SuppressedRecipient[];
}

/**
 * A recipient left out of a send: the suppression list has it (`hard-bounce`, `complaint`,
 * `unsubscribe`, `manual`), or their preferences rule the category out (`opted-out`,
 * `not-opted-in`).
 */
export interface SuppressedRecipient {
  /** The address, lower-cased. */
  readonly address: string;
  readonly reason: SuppressionReason | PreferenceReason;
}

/** A DKIM signing identity: the domain (`d=`, lower-case ASCII) and the selector (`s=`). */
export interface DkimIdentity {
  readonly domainName: string;
  readonly keySelector: string;
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
  /**
   * True for transports that keep mail instead of delivering it (memory, sandbox), and for a
   * provider's test mode, which accepts mail and delivers none (SendGrid's `sandboxMode`, Mailgun's
   * `testMode`, Postmark's `POSTMARK_API_TEST` token): nothing reaches an inbox. Wrappers (staging,
   * failover) report what they wrap. Production checks use it.
   */
  readonly captures?: boolean;
  /**
   * True for a wrapper (failover, round robin, staging) with a capturing transport behind it
   * beside one that delivers: some mail may be kept instead of delivered (`captures` is then
   * false). The worker and the production checks refuse it as they refuse `captures`.
   */
  readonly capturesSome?: boolean;
  /**
   * True for {@link stagingTransport} and for a wrapper whose every transport is staged: mail
   * reaches only the allowlist (or the redirect inbox). `failoverTransport` and
   * `roundRobinTransport` refuse a staged transport beside one that is not (a `ConfigError` naming
   * `transports`): a failure of the first would send the next message to everyone.
   */
  readonly staged?: boolean;
  /**
   * Whom every message this transport sends is DKIM-signed as (RFC 6376 §3.5 `d=` and `s=`):
   * smtp, ses and sendmail given their `dkim` option; a wrapper when every transport behind it
   * signs as the same. Absent when mailroom does not sign (an HTTP API provider signs with the key
   * set up in its account). Configuration checks compare it with `SMTP_DKIM_*`.
   */
  readonly dkim?: DkimIdentity;
  /**
   * True when `send()` delivers only to `deliveryRecipients(message)`: then the service retries
   * the recipients a server deferred (4xx) on their own, never re-sending to those who accepted.
   * Without it, deferred recipients are not retried in-process but reported in `result.deferred`
   * (a queue worker parks a copy narrowed to them). SMTP, memory and sandbox set it; Mailgun sets it
   * because it refuses such a retry (its API would reach every recipient) rather than send it.
   */
  readonly narrowsRecipients?: boolean;
  /**
   * Set by a transport that can hold a message until its `sendAt` (Mailgun's `o:deliverytime`) or
   * records it (memory, sandbox): how far ahead it schedules, in ms. `EmailService` refuses a
   * message with a future `sendAt` through a transport without it (a `MessageError` naming
   * `sendAt`), and one further ahead than `maxAheadMs`, before anything is sent: never early.
   */
  readonly scheduling?: { readonly maxAheadMs: number };
  /** One line for the start-up log: where mail goes, e.g. `smtp smtp.example.com:587 (starttls)`. No secrets. */
  describe?(): string;
  /** Delivers one message. Rejects with an `EmailError` on failure. */
  send(message: EmailMessage, context: SendContext): Promise<SendResult>;
  /**
   * Throws the `MessageError` that {@link send} would throw for `message` before sending it (what
   * this provider cannot carry: Postmark's one tag, Resend's tag characters, SendGrid's 10 000
   * bytes of custom_args, SES's tag rules, an address sendmail would read as an option), and
   * sends nothing. `memoryTransport({ like })` calls it, so a test suite refuses what production
   * would. Wrappers check with every transport behind them.
   */
  check?(message: EmailMessage): void;
  /**
   * The most `to` recipients one {@link sendBatch} call takes (Mailgun: 1 000). Set exactly when
   * `sendBatch` is.
   */
  readonly batchLimit?: number;
  /**
   * Optional: delivers `message` to every address in `message.to` (1 to `batchLimit` of them, no
   * two alike) in one provider request, each recipient getting a copy of their own addressed to
   * them alone, with the same subject, body, headers and Message-ID (`message.messageId`: one
   * request, one Message-ID). `cc` and `bcc` are empty and there are no attachments (callers keep
   * such messages for {@link send}). The request is accepted for every recipient or rejects with
   * an `EmailError` for all of them; `result.accepted` lists them all.
   *
   * `EmailService.sendBatch` uses it for entries whose rendered emails are identical but for the
   * recipient. Wrappers that change recipients (staging), keep mail for approval (hold), choose
   * among transports (failover, round robin) or keep it (memory, sandbox) do not offer it: a batch
   * through them goes one email per entry, as each entry alone would.
   */
  sendBatch?(message: EmailMessage, context: SendContext): Promise<SendResult>;
  /** Checks that the transport can deliver (credentials, connectivity, a writable folder). */
  verify?(): Promise<void>;
  /** Releases connections and handles. */
  close?(): Promise<void>;
}

/**
 * Internal, for wrappers (failover, round-robin, staging): the scheduling every one of `transports`
 * offers (the shortest reach), or undefined when one of them cannot schedule.
 */
export function commonScheduling(
  transports: readonly Transport[],
): { readonly maxAheadMs: number } | undefined {
  let maxAheadMs = Number.POSITIVE_INFINITY;
  for (const t of transports) {
    if (!t.scheduling) return undefined;
    maxAheadMs = Math.min(maxAheadMs, t.scheduling.maxAheadMs);
  }
  return transports.length > 0 ? Object.freeze({ maxAheadMs }) : undefined;
}

/** Internal: true when some or all of a transport's mail is kept instead of delivered. */
export function mayCapture(transport: Transport): boolean {
  return transport.captures === true || transport.capturesSome === true;
}

/**
 * Internal, for wrappers: what they say of capturing, staging and signing. `captures` when every
 * one of `transports` captures, `capturesSome` when some do (or may) while others deliver,
 * `staged` when every one is staged, `dkim` when every one signs as the same identity, `check`
 * when any of them checks (it checks with each); each an absent property otherwise.
 */
export function wrapped(transports: readonly Transport[]): {
  captures: boolean;
  capturesSome?: true;
  staged?: true;
  dkim?: DkimIdentity;
  check?: (message: EmailMessage) => void;
} {
  const checking = transports.filter((t) => typeof t.check === 'function');
  const captures = transports.every((t) => t.captures === true);
  const staged = transports.length > 0 && transports.every((t) => t.staged === true);
  const some = !captures && transports.some(mayCapture);
  const first = transports[0]?.dkim;
  const same =
    first !== undefined &&
    transports.every(
      (t) => t.dkim?.domainName === first.domainName && t.dkim?.keySelector === first.keySelector,
    );
  return {
    captures,
    ...(some ? { capturesSome: true } : {}),
    ...(staged ? { staged: true } : {}),
    ...(same ? { dkim: first } : {}),
    // Any of them may send it: what one would refuse is refused.
    ...(checking.length > 0
      ? {
          check: (message: EmailMessage) => {
            for (const t of checking) t.check!(message);
          },
        }
      : {}),
  };
}

/** Internal: `{ scheduling }` when there is one, else nothing (an absent property, not an undefined one). */
export function scheduled(scheduling: { readonly maxAheadMs: number } | undefined): {
  scheduling?: { readonly maxAheadMs: number };
} {
  return scheduling ? { scheduling } : {};
}

/**
 * The scheduling of a transport that records `sendAt` rather than holding the email (memory,
 * sandbox): any time ahead. Internal.
 */
export const RECORDS_SEND_AT = Object.freeze({ maxAheadMs: Number.POSITIVE_INFINITY });

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
