/**
 * What happens to one consumed record: parse, skip if already sent, render and send, and on
 * failure decide between the retry topic, the dead-letter topic, a systemic pause, or leaving it
 * uncommitted. The worker owns the consumer loop; this file owns the decision and the headers.
 */
import {
  EmailError,
  isConfigError,
  isEmailError,
  isMailroomError,
  isMessageError,
  isTemplateError,
  MessageError,
} from '../errors.js';
import { maskAddresses, oneLine } from '../log.js';
import { parseAddress } from '../message.js';
import type { RetryOptions } from '../retry.js';
import { ALREADY_DUE, dueTime } from '../send-at.js';
import type { EmailService } from '../service.js';
import { categoryOf, type TemplateHandle } from '../templates/define.js';
import type { RecipientRefusal, SendResult } from '../transport.js';
import { markRenderedAsSent } from '../unsubscribe/footer.js';
import { isPending, KeyClaims } from './claims.js';
import { headerText, type KafkaHeaders, type KafkaIncomingMessage } from './client.js';
import { type EnvelopeLimits, type EnvelopeV1, envelopeFields, readEnvelope } from './envelope.js';
import { isKafkaForwardError, isKafkaTopicMissingError, isKafkaUnavailableError } from './failures.js';
import {
  type ClaimResult,
  type IdempotencyStore,
  type IdempotencyStoreError,
  isIdempotencyStoreError,
} from './idempotency.js';
import { isoTime } from './iso-time.js';
import {
  NARROWED_HEADER,
  narrowedCopies,
  REFUSALS_HEADER,
  recipientsOf,
  refusalSummary,
  refusalsHeader,
  refusalsOf,
  storeKey,
} from './narrow.js';

/** Headers the worker writes on retry and dead-letter records. */
export const HEADERS = {
  attempts: 'mailroom-attempts',
  rounds: 'mailroom-rounds',
  notBefore: 'mailroom-not-before',
  reason: 'mailroom-dead-letter-reason',
  errorCode: 'mailroom-error-code',
  errorMessage: 'mailroom-error-message',
  originalTopic: 'mailroom-original-topic',
  originalPartition: 'mailroom-original-partition',
  originalOffset: 'mailroom-original-offset',
  firstFailureAt: 'mailroom-first-failure-at',
  lastFailureAt: 'mailroom-last-failure-at',
  /** On a copy narrowed to some recipients of a sent email: `deferred` (retry topic) or `rejected` (dead-letter topic). */
  narrowed: NARROWED_HEADER,
  /** On a dead-lettered copy narrowed to refused recipients: `[{ address, failure, status, response }]` as JSON. */
  refusals: REFUSALS_HEADER,
  /** On a record moved to a delay topic: when it is due (its `sendAt`, or the end of quiet hours), ms since the epoch. */
  dueAt: 'mailroom-due-at',
  /** On a record moved to a delay topic: how many delay topics it has been through, this one included. */
  hops: 'mailroom-delay-hops',
} as const;

/** The quiet-hours hook threw, or answered with something other than a Date or undefined. */
class QuietHoursFailure extends Error {
  constructor(cause: unknown) {
    super('the quiet-hours hook failed', { cause });
  }
}

/** Why a record was dead-lettered. */
export type DeadLetterReason =
  | 'permanent'
  /** Some recipients were refused for good while others received it: a copy narrowed to them. */
  | 'recipients-rejected'
  | 'max-attempts'
  | 'invalid-envelope'
  | 'invalid-data'
  | 'unknown-template'
  /** Not yet due (`sendAt`, quiet hours) and the worker has no delay topics to hold it on (`delayTopics: false`). */
  | 'not-due';

/**
 * A delay topic: records wait on it `delayMs` (a constant, so the topic is in due order: its head
 * is always the first due) before they come up again. See `EmailWorkerOptions.delayTopics`.
 */
export interface DelayTier {
  readonly topic: string;
  readonly delayMs: number;
}

/**
 * The tier a record waiting `remainingMs` more goes to: the longest not past its due time, else the
 * shortest (where it waits only until due: see {@link RecordHandlerOptions.delayTiers}).
 * `tiers` is sorted shortest first and not empty.
 */
function tierFor(tiers: readonly DelayTier[], remainingMs: number): DelayTier {
  let chosen = tiers[0] as DelayTier;
  for (const tier of tiers) if (tier.delayMs <= remainingMs) chosen = tier;
  return chosen;
}

/** Where a record came from. */
export interface RecordPosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** `done`: sent, parked or dead-lettered, so commit. `hold`: leave it uncommitted, to be fetched again. */
export type Outcome = 'done' | 'hold';

/** What the worker hears about each record (for its stats, log lines and events). */
export interface RecordReports {
  /** Arguments, not an event object: the worker builds one only when someone listens. */
  sent(at: RecordPosition, envelope: EnvelopeV1, result: SendResult, attempts: number): void;
  retried(
    event: RecordPosition & { envelope: EnvelopeV1; error: unknown; attempts: number; notBefore: Date },
  ): void;
  deadLettered(
    event: RecordPosition & {
      envelope: EnvelopeV1 | undefined;
      reason: DeadLetterReason;
      error: unknown;
      attempts: number;
    },
  ): void;
  duplicate(event: RecordPosition & { envelope: EnvelopeV1 }): void;
  /** Not yet due: moved to a delay topic until `notBefore` (then moved on, or sent once due). */
  delayed(
    event: RecordPosition & { envelope: EnvelopeV1; dueAt: Date; notBefore: Date; delayTopic: string },
  ): void;
  /** Another owner's lease on the key is live: the record was parked on the retry topic until it ends. */
  held(event: RecordPosition & { envelope: EnvelopeV1; owner: string; until: Date }): void;
  /** This send may repeat one by another worker: a lease that ran out was taken over, or ours ran out. */
  possibleDuplicate(event: RecordPosition & PossibleDuplicate & { envelope: EnvelopeV1 }): void;
  /** The store failed where the worker can go on (marking sent, releasing): said, not fatal. */
  storeFailed(error: IdempotencyStoreError): void;
  /** A systemic failure (or the store cannot answer a claim): the worker pauses; the record is held. */
  systemic(error: EmailError | IdempotencyStoreError): void;
}

/**
 * Why a send may be a duplicate. `lease-expired`: this worker took over a lease another owner let
 * run out (it died or stalled mid-send), so it may have sent the email already. `lease-lost`: this
 * worker's own lease ran out before it marked the email sent, so another may have sent it too.
 */
export type PossibleDuplicate =
  | { reason: 'lease-expired'; previousOwner: string }
  | { reason: 'lease-lost'; previousOwner?: undefined };

/** What {@link recordHandler} needs. */
export interface RecordHandlerOptions {
  service: EmailService;
  store: IdempotencyStore;
  /** This worker's name in the store's leases: unique per running worker. */
  owner: string;
  limits: EnvelopeLimits;
  inProcess: Required<RetryOptions>;
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  retryTopic: string;
  deadLetterTopic: string;
  /**
   * The delay topics, shortest first; empty when the worker has none (a record not yet due is then
   * dead-lettered as `not-due`). A record waiting less than the shortest tier goes to it with its
   * own due time as not-before, so behind another record of that tier it can be late by up to that
   * tier's delay, never early.
   */
  delayTiers: readonly DelayTier[];
  signal: AbortSignal;
  /** Publishes a copy of the record (its value replaced when given), with extra headers, to a topic; rejects if that fails. */
  forward(topic: string, message: KafkaIncomingMessage, headers: KafkaHeaders, value?: string): Promise<void>;
  report: RecordReports;
}

/** Makes the function that handles one record. It rejects only when forwarding a record failed. */
export function recordHandler(o: RecordHandlerOptions) {
  const { service, report } = o;
  const claims = new KeyClaims(o.store, o.owner, report);
  const unforwarded = new UnforwardedSends();
  // Asked once: whether the service has quiet hours (then every send says it is already due).
  const quietHours = service.quietHours !== undefined;
  // Frozen, so the service checks it once rather than per email.
  const inProcess = Object.freeze({ ...o.inProcess });

  const deadLetter = async (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1 | undefined,
    reason: DeadLetterReason,
    error: unknown,
    attempts: number,
    narrowed?: { value: string; headers: KafkaHeaders },
  ): Promise<Outcome> => {
    const headers = {
      ...failureHeaders(message, at, error, attempts),
      [HEADERS.reason]: reason,
      ...narrowed?.headers,
    };
    await o.forward(o.deadLetterTopic, message, headers, narrowed?.value);
    report.deadLettered({ ...at, envelope, reason, error, attempts });
    return 'done';
  };

  /**
   * Not yet due: a copy on the delay tier that fits, then commit (produce-then-commit: a failed
   * publish rejects, so the record is fetched again, never lost). Nothing is claimed or sent.
   */
  const delay = async (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    due: number,
    prior: number,
  ): Promise<Outcome> => {
    if (o.delayTiers.length === 0) {
      const error = new MessageError(
        'sendAt',
        `is due at ${new Date(due).toISOString()}, and this worker has no delay topics to hold it on (start it with delayTopics: true)`,
      );
      return deadLetter(message, at, envelope, 'not-due', error, prior);
    }
    const now = Date.now();
    const tier = tierFor(o.delayTiers, due - now);
    const notBefore = Math.min(now + tier.delayMs, due);
    await o.forward(tier.topic, message, {
      [HEADERS.notBefore]: String(notBefore),
      [HEADERS.dueAt]: String(due),
      [HEADERS.hops]: String(countHeader(message, HEADERS.hops) + 1),
      ...originHeaders(message, at),
    });
    report.delayed({
      ...at,
      envelope,
      dueAt: new Date(due),
      notBefore: new Date(notBefore),
      delayTopic: tier.topic,
    });
    return 'done';
  };

  /**
   * When a record is due, if that is still ahead (ms since the epoch): its `sendAt`, moved later by
   * the service's quiet hours for `product`/`marketing` mail. Undefined: send now. Throws the
   * record's own fault (a `MessageError`), or a {@link QuietHoursFailure} when the hook failed.
   */
  const dueLater = (envelope: EnvelopeV1, template: TemplateHandle | undefined): number | undefined => {
    const now = Date.now();
    let due = envelope.sendAt === undefined ? undefined : isoTime(envelope.sendAt);
    if (due !== undefined && due <= now) due = undefined;
    const hook = service.quietHours;
    if (hook === undefined) return due;
    const category = template
      ? categoryOf(template, envelope.category)
      : (envelope.category ?? 'transactional');
    const recipients = envelope.to.map((to, i) => parseAddress(to, `to[${i}]`).address);
    try {
      return dueTime(due, hook, recipients, category, now);
    } catch (error) {
      throw new QuietHoursFailure(error);
    }
  };

  const park = async (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    error: unknown,
    attempts: number,
    narrowed?: { value: string; headers: KafkaHeaders },
  ): Promise<Outcome> => {
    const rounds = countHeader(message, HEADERS.rounds) + 1;
    const delay = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (rounds - 1));
    // Half fixed, half random: parked emails from one outage do not all come back at once.
    const notBefore = new Date(Date.now() + delay / 2 + Math.random() * (delay / 2));
    await o.forward(
      o.retryTopic,
      message,
      {
        ...failureHeaders(message, at, error, attempts),
        [HEADERS.rounds]: String(rounds),
        [HEADERS.notBefore]: String(notBefore.getTime()),
        ...narrowed?.headers,
      },
      narrowed?.value,
    );
    report.retried({ ...at, envelope, error, attempts, notBefore });
    return 'done';
  };

  /** A failure worth another try: parked on the retry topic, or dead-lettered once out of attempts. */
  const later = (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    error: unknown,
    attempts: number,
    narrowed?: { value: string; headers: KafkaHeaders },
  ): Promise<Outcome> =>
    attempts >= o.maxAttempts
      ? deadLetter(message, at, envelope, 'max-attempts', error, attempts, narrowed)
      : park(message, at, envelope, error, attempts, narrowed);

  // Not async: a record is read and its key claimed (the memory store answers at once) without a
  // frame of its own; sendClaimed is the one that waits.
  const handle = (message: KafkaIncomingMessage, at: RecordPosition): Outcome | Promise<Outcome> => {
    const prior = countHeader(message, HEADERS.attempts);
    let envelope: EnvelopeV1;
    try {
      envelope = readEnvelope(message.value, o.limits);
    } catch (error) {
      return deadLetter(message, at, undefined, 'invalid-envelope', error, prior);
    }
    // Looked up once: the render and the category take the handle, not the name again.
    let template: TemplateHandle | undefined;
    if (envelope.template !== undefined) {
      try {
        template = service.templates.get(envelope.template);
      } catch (error) {
        return deadLetter(message, at, envelope, 'unknown-template', error, prior);
      }
    }
    // Not yet due (sendAt, quiet hours): onto a delay topic, never waited for here.
    if (envelope.sendAt !== undefined || quietHours) {
      let due: number | undefined;
      try {
        due = dueLater(envelope, template);
      } catch (error) {
        // The quiet-hours hook is the app's code, not the record: another try later (a lookup
        // that failed may work then), dead-lettered as max-attempts once out of attempts.
        if (error instanceof QuietHoursFailure) return later(message, at, envelope, error.cause, prior + 1);
        return deadLetter(message, at, envelope, 'invalid-envelope', error, prior);
      }
      if (due !== undefined) return delay(message, at, envelope, due, prior);
    }
    // A copy of a record (a producer retry wrote it twice) often sits in the same batch: it waits
    // for the first copy, then finds the key sent, rather than racing it past the store.
    const key = storeKey(envelope, message);
    const claiming = claims.claim(key);
    if (isPending(claiming)) {
      return claiming.then((claim) => claimed(message, at, envelope, template, prior, key, claim));
    }
    return claimed(message, at, envelope, template, prior, key, claiming);
  };

  /** What the store answered decides: skip, park, send. `claims.done(key)` once the record is decided. */
  const claimed = (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    template: TemplateHandle | undefined,
    prior: number,
    key: string,
    claim: ClaimResult | undefined,
  ): Outcome | Promise<Outcome> => {
    if (claim?.status === 'claimed') {
      if (claim.expiredLeaseOf !== undefined) {
        try {
          report.possibleDuplicate({
            ...at,
            envelope,
            reason: 'lease-expired',
            previousOwner: claim.expiredLeaseOf,
          });
        } catch (error) {
          claims.done(key);
          throw error;
        }
      }
      // Sent by this worker already, its refused recipients' copies not yet written: only those now.
      const sent = unforwarded.get(key);
      if (sent !== undefined)
        return sentToSome(message, at, envelope, key, sent.result, sent.attempts, sent.written);
      return sendClaimed(message, at, envelope, template, prior, key); // calls claims.done(key) when it is over
    }
    try {
      if (claim === undefined) return 'hold'; // no answer: nothing is sent, the worker pauses
      if (claim.status === 'sent') {
        report.duplicate({ ...at, envelope });
        return 'done';
      }
      return parkHeld(message, at, envelope, prior, claim);
    } finally {
      claims.done(key);
    }
  };

  /**
   * Sends a record whose key this worker claimed, then marks the key sent, or releases it when
   * nothing was sent; then lets the copies of the key waiting in this process go on
   * (`claims.done(key)`, whatever happened). Promise callbacks rather than an async function: the
   * common case (sent to everyone, the memory store) settles in one callback with no async frame,
   * whose registers are copied to the heap at every await.
   */
  const sendClaimed = (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    template: TemplateHandle | undefined,
    prior: number,
    key: string,
  ): Promise<Outcome> => {
    let sending: Promise<SendResult>;
    try {
      sending = service.send(sendInput(envelope, template, prior));
    } catch (error) {
      sending = Promise.reject(error); // the render failed: decided as a failed send
    }
    return sending.then(
      (result) => sent(message, at, envelope, prior, key, result),
      (error: unknown) => sendFailed(message, at, envelope, prior, key, error),
    );
  };

  /** The transport took the email: forward whom it refused, mark the key sent, report. */
  const sent = (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    prior: number,
    key: string,
    result: SendResult,
  ): Outcome | Promise<Outcome> => {
    const attempts = prior + (result.attempts ?? 1);
    if (result.deferred?.length || result.rejected.length)
      return sentToSome(message, at, envelope, key, result, attempts);
    // Sent: never released, even when marking fails (the lease runs out, reported).
    let marking: ReturnType<KeyClaims['markSent']>;
    try {
      marking = claims.markSent(key);
    } catch (error) {
      claims.done(key);
      throw error;
    }
    if (isPending(marking)) return markedLater(at, envelope, key, result, attempts, marking);
    return reportSent(at, envelope, key, result, attempts, marking);
  };

  /** {@link sent} with a store that answers the mark later (a shared store). */
  const markedLater = async (
    at: RecordPosition,
    envelope: EnvelopeV1,
    key: string,
    result: SendResult,
    attempts: number,
    marking: Promise<'marked' | 'lease-lost' | undefined>,
  ): Promise<Outcome> => {
    let marked: 'marked' | 'lease-lost' | undefined;
    try {
      marked = await marking;
    } catch (error) {
      claims.done(key);
      throw error;
    }
    return reportSent(at, envelope, key, result, attempts, marked);
  };

  /** The key is marked: a lost lease is reported as a possible duplicate, then the send. */
  const reportSent = (
    at: RecordPosition,
    envelope: EnvelopeV1,
    key: string,
    result: SendResult,
    attempts: number,
    marked: 'marked' | 'lease-lost' | undefined,
  ): Outcome => {
    try {
      if (marked === 'lease-lost') report.possibleDuplicate({ ...at, envelope, reason: 'lease-lost' });
      report.sent(at, envelope, result, attempts);
      return 'done';
    } finally {
      claims.done(key);
    }
  };

  /** {@link sent} when some recipients were refused or deferred. */
  const sentToSome = async (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    key: string,
    result: SendResult,
    attempts: number,
    /** How many of the copies were written already (an earlier try of this record). */
    written = 0,
  ): Promise<Outcome> => {
    let release = true;
    try {
      // Refused recipients are forwarded before the key is marked, so a failure to forward never
      // loses them: the record is fetched again. This worker then writes only the copies not yet
      // written (see UnforwardedSends), and its claim is kept, not released: another worker that
      // gets the record finds the lease held, and sends only once it runs out, as a possible
      // duplicate. So too when nobody accepted but a deferred recipient's copy is written: sent
      // again, the original would reach that recipient a second time, besides its copy.
      let done = written;
      try {
        await forwardRefused(message, at, envelope, result, attempts, done, (n) => {
          done = n;
        });
      } catch (error) {
        if (result.accepted.length > 0 || done > 0) {
          release = false;
          unforwarded.add(key, envelope.id, result, attempts, done);
        }
        throw error;
      }
      unforwarded.delete(key);
      // Nobody accepted and the copy just parked has these same recipients: its key is released.
      if (result.accepted.length > 0 || !result.deferred?.length) {
        release = false; // sent: never released, even when marking fails (the lease runs out, reported)
        const marking = claims.markSent(key);
        if ((isPending(marking) ? await marking : marking) === 'lease-lost')
          report.possibleDuplicate({ ...at, envelope, reason: 'lease-lost' });
      }
      // Nobody accepted (mailroom's transports throw then; a custom one may answer so): not sent,
      // only parked and dead-lettered, as those copies' events say.
      if (result.accepted.length > 0) report.sent(at, envelope, result, attempts);
      return 'done';
    } finally {
      try {
        if (release) await claims.release(key);
      } finally {
        claims.done(key);
      }
    }
  };

  /** The render or the send failed, so nothing was sent: decided, then the key is released. */
  const sendFailed = async (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    prior: number,
    key: string,
    error: unknown,
  ): Promise<Outcome> => {
    try {
      return await failed(message, at, envelope, prior, error);
    } finally {
      try {
        await claims.release(key);
      } finally {
        claims.done(key);
      }
    }
  };

  /** Another worker is sending this email now: parked on the retry topic until its lease ends, attempts unchanged. */
  const parkHeld = async (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    prior: number,
    claim: Extract<ClaimResult, { status: 'held' }>,
  ): Promise<Outcome> => {
    const until = new Date(Math.max(claim.until, Date.now()) + 250);
    const headers = {
      ...failureHeaders(message, at, undefined, prior),
      [HEADERS.errorCode]: 'held',
      [HEADERS.errorMessage]: "another worker holds this email's lease (it is sending it)",
      [HEADERS.notBefore]: String(until.getTime()),
    };
    await o.forward(o.retryTopic, message, headers);
    report.held({ ...at, envelope, owner: claim.owner, until });
    return 'done';
  };

  /**
   * What the service sends for an envelope: rendered here, checked by the send (see readEnvelope).
   * `template`: the envelope's, looked up (undefined without one).
   */
  const sendInput = (envelope: EnvelopeV1, template: TemplateHandle | undefined, prior: number) => {
    const fields = envelopeFields(envelope);
    if (template !== undefined) {
      // Absent in the envelope: the template's own (a security template stays security).
      const category = categoryOf(template, envelope.category);
      // Rendered as the category it is sent as: product and marketing mail with the footer's
      // unsubscribe links, which the send fills in with the same URL as List-Unsubscribe.
      const rendered = service.render(template, envelope.data ?? {}, {
        ...(envelope.replyTo === undefined ? {} : { replyTo: envelope.replyTo }),
        ...(envelope.locale === undefined ? {} : { locale: envelope.locale }),
        category,
      });
      fields.subject ??= rendered.subject;
      fields.html = rendered.html;
      fields.text = rendered.text;
      fields.category = category;
      markRenderedAsSent(fields, envelope.data);
    }
    // The in-process retry never takes the email past its attempts in all.
    const left = o.maxAttempts - prior;
    const retry =
      left >= o.inProcess.maxAttempts ? inProcess : { ...o.inProcess, maxAttempts: Math.max(1, left) };
    const input = fields as typeof fields & { subject: string; retry: RetryOptions; signal: AbortSignal };
    input.subject = fields.subject ?? '';
    input.retry = retry;
    input.signal = o.signal;
    // Held until due just before (handle → dueLater): quiet hours are not asked again by the send.
    if (quietHours) (input as { [ALREADY_DUE]?: boolean })[ALREADY_DUE] = true;
    return input;
  };

  /** A render or send that failed, decided: dead-letter, park, pause or hold. */
  const failed = (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    prior: number,
    error: unknown,
  ): Outcome | Promise<Outcome> => {
    const attempts = prior + (isEmailError(error) ? (error.attempts ?? 1) : 1);
    // The envelope's fields are checked by the send (see readEnvelope); the data by the render.
    if (isMessageError(error)) return deadLetter(message, at, envelope, 'invalid-envelope', error, attempts);
    if (isTemplateError(error)) return deadLetter(message, at, envelope, 'invalid-data', error, attempts);
    if (isEmailError(error)) {
      if (error.failure === 'aborted') return 'hold';
      if (error.failure === 'systemic') {
        report.systemic(error);
        return 'hold';
      }
      if (error.failure === 'permanent')
        return deadLetter(message, at, envelope, 'permanent', error, attempts);
    }
    // Transient, ambiguous, or not ours (a bug in a custom transport): later, up to maxAttempts.
    return later(message, at, envelope, error, attempts);
  };

  /**
   * A send the provider took for some recipients only: a copy narrowed to the deferred ones goes
   * to the retry topic (or the dead-letter topic once out of attempts), a copy narrowed to the
   * rejected ones to the dead-letter topic with the server's replies. Same idempotency key, so
   * the same Message-ID; those who accepted are never sent to again.
   */
  const forwardRefused = async (
    message: KafkaIncomingMessage,
    at: RecordPosition,
    envelope: EnvelopeV1,
    result: SendResult,
    attempts: number,
    /** Copies written by an earlier try, skipped (deferred ones first, as they are written). */
    skip = 0,
    /** Hears how many copies are written so far, after each. */
    wrote?: (count: number) => void,
  ): Promise<void> => {
    const deferred = result.deferred ?? [];
    let index = 0;
    // Each copy carries only its own recipients' refusals: a blind-copied address never shows in
    // another's record.
    for (const copy of narrowedCopies(envelope, deferred)) {
      if (index++ < skip) continue;
      const error = refusalError('deferred', result, refusalsOf(result, recipientsOf(copy)));
      const narrowed = { value: JSON.stringify(copy), headers: { [HEADERS.narrowed]: 'deferred' } };
      await later(message, at, copy, error, attempts, narrowed);
      wrote?.(index);
    }
    for (const copy of narrowedCopies(envelope, result.rejected)) {
      if (index++ < skip) continue;
      const refusals = refusalsOf(result, recipientsOf(copy));
      const error = refusalError('rejected', result, refusals);
      const headers = { [HEADERS.narrowed]: 'rejected', [HEADERS.refusals]: refusalsHeader(refusals) };
      await deadLetter(message, at, copy, 'recipients-rejected', error, attempts, {
        value: JSON.stringify(copy),
        headers,
      });
      wrote?.(index);
    }
  };

  /** The ids of the emails {@link UnforwardedSends} holds: sent, their refused recipients' copies not all written. */
  const unforwardedIds = (): string[] => unforwarded.ids();
  return Object.assign(handle, { unforwardedIds });
}

/**
 * Emails this worker sent to some recipients (or whose deferred recipients' copy it wrote) whose
 * other refused recipients' copies it could not write to the retry or dead-letter topic (that topic
 * refused the record, or Kafka was out of reach): the record is fetched again, and these say it was
 * sent and how many copies are written, so only the copies not yet written are written then. At most
 * {@link UnforwardedSends.MAX} (the oldest go first: a record that came back after that many others
 * failed to forward is sent again, its lease renewed by this worker, hence not reported).
 */
class UnforwardedSends {
  static readonly MAX = 10_000;
  readonly #sends = new Map<string, { id: string; result: SendResult; attempts: number; written: number }>();

  get(key: string): { result: SendResult; attempts: number; written: number } | undefined {
    return this.#sends.size === 0 ? undefined : this.#sends.get(key);
  }

  /** `id`: the envelope's. `written`: how many of its copies were written before one was refused (not written again). */
  add(key: string, id: string, result: SendResult, attempts: number, written: number): void {
    this.#sends.delete(key);
    this.#sends.set(key, { id, result, attempts, written });
    if (this.#sends.size > UnforwardedSends.MAX)
      this.#sends.delete(this.#sends.keys().next().value as string);
  }

  delete(key: string): void {
    if (this.#sends.size > 0) this.#sends.delete(key);
  }

  ids(): string[] {
    return [...this.#sends.values()].map((s) => s.id);
  }
}

/** The refusal of some recipients as an error, for the headers, the log line and the event. */
function refusalError(
  code: 'deferred' | 'rejected',
  result: SendResult,
  refusals: readonly RecipientRefusal[],
): EmailError {
  const status = refusals.find((r) => r.status !== undefined)?.status;
  return new EmailError(refusalSummary(refusals), {
    code,
    transport: result.transport,
    ...(status !== undefined ? { status } : {}),
  });
}

/** The failure headers; the original position and first failure time carry over from earlier rounds. */
function failureHeaders(
  message: KafkaIncomingMessage,
  at: RecordPosition,
  error: unknown,
  attempts: number,
): KafkaHeaders {
  const now = new Date().toISOString();
  return {
    [HEADERS.attempts]: String(attempts),
    [HEADERS.errorCode]: errorCode(error),
    [HEADERS.errorMessage]: errorMessage(error),
    ...originHeaders(message, at),
    [HEADERS.firstFailureAt]: headerText(message.headers, HEADERS.firstFailureAt) ?? now,
    [HEADERS.lastFailureAt]: now,
  };
}

/**
 * Where a record was first published: the headers it already carries (set at its first hop to a
 * retry or delay topic, kept across every later one), else where it is read now.
 */
function originHeaders(message: KafkaIncomingMessage, at: RecordPosition): KafkaHeaders {
  const carried = (name: string) => headerText(message.headers, name);
  return {
    [HEADERS.originalTopic]: carried(HEADERS.originalTopic) ?? at.topic,
    [HEADERS.originalPartition]: carried(HEADERS.originalPartition) ?? String(at.partition),
    [HEADERS.originalOffset]: carried(HEADERS.originalOffset) ?? at.offset,
  };
}

/**
 * A count the worker wrote on an earlier hop (attempts, rounds, delay hops): a whole number from 0
 * up, else 0. A header someone else wrote or mangled (`abc`, `-5`, `1e400`) never means more
 * attempts than the worker allows, nor a retry without its backoff.
 */
function countHeader(message: KafkaIncomingMessage, name: string): number {
  return wholeHeader(message, name, 9);
}

/**
 * The not-before time of a parked record, in ms since the epoch: 0 when it has none or it is not
 * a whole number of ms (`1e400`, `soon`), so a mangled header never holds its partition.
 */
export function notBeforeOf(message: KafkaIncomingMessage): number {
  return wholeHeader(message, HEADERS.notBefore, 15);
}

/** A header of the worker's own that is a whole number of at most `digits` digits, else 0. */
function wholeHeader(message: KafkaIncomingMessage, name: string, digits: number): number {
  const text = headerText(message.headers, name)?.trim();
  return text !== undefined && text.length <= digits && /^\d+$/.test(text) ? Number(text) : 0;
}

function errorCode(error: unknown): string {
  if (isEmailError(error)) return error.code;
  if (isConfigError(error)) return 'config';
  if (isIdempotencyStoreError(error)) return 'store';
  if (isTemplateError(error)) return 'template';
  if (isMessageError(error)) return 'invalid';
  if (isKafkaUnavailableError(error)) return 'kafka-unavailable';
  if (isKafkaTopicMissingError(error)) return 'topic-missing';
  if (isKafkaForwardError(error)) return 'forward-failed';
  return 'internal';
}

/**
 * Our errors' messages carry no secrets (a store's names its cause's, e.g. ECONNREFUSED; a Kafka
 * one its brokers, topics and the client's message, which has no credentials); of anything else
 * only the name.
 */
function errorMessage(error: unknown): string {
  const text =
    isMailroomError(error) ||
    isIdempotencyStoreError(error) ||
    isKafkaUnavailableError(error) ||
    isKafkaTopicMissingError(error) ||
    isKafkaForwardError(error)
      ? error.message
      : ((error as Error)?.name ?? 'Error');
  return oneLine(text, 500);
}

/** An error as a log field. */
export function describeFailure(error: unknown): Record<string, unknown> {
  // As the service's log lines: a server's reply may quote a refused address.
  return { code: errorCode(error), message: maskAddresses(errorMessage(error)) };
}
