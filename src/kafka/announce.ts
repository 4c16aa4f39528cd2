/**
 * Internal: what the worker tells about itself — its counts, its events and its log lines — in
 * one place, so runtime.ts reads as what the worker does and this file as what it says.
 */
import type { EmailError } from '../errors.js';
import { type Logger, logsAt } from '../log.js';
import type { SuppressedRecipient } from '../transport.js';
import type { FinishedOffsets } from './commit.js';
import type { EnvelopeV1 } from './envelope.js';
import { kafkaErrorFields } from './failures.js';
import type { IdempotencyStoreError } from './idempotency.js';
import { isoTime } from './iso-time.js';
import { describeFailure, type RecordPosition, type RecordReports } from './records.js';
import type { EmailWorkerEvents, EmailWorkerStats } from './worker.js';

export class Announcer {
  readonly stats: EmailWorkerStats = {
    sent: 0,
    retried: 0,
    deadLettered: 0,
    duplicates: 0,
    possibleDuplicates: 0,
    suppressed: 0,
    held: 0,
    delayed: 0,
    commitsRefused: 0,
    restarts: 0,
    forwardFailures: 0,
  };
  /** Copied on subscribe and unsubscribe, so emit (once per email) walks an array: no iterator per call. */
  readonly #listeners = new Map<keyof EmailWorkerEvents, ReadonlyArray<(event: never) => void>>();

  constructor(
    readonly log: Logger | undefined,
    readonly groupId: string,
  ) {}

  on<E extends keyof EmailWorkerEvents>(event: E, listener: (event: EmailWorkerEvents[E]) => void) {
    const entry = listener as (event: never) => void;
    const current = this.#listeners.get(event) ?? [];
    // As a set: a function subscribed twice is called once.
    if (!current.includes(entry)) this.#listeners.set(event, [...current, entry]);
    return () => {
      const rest = (this.#listeners.get(event) ?? []).filter((l) => l !== entry);
      if (rest.length > 0) this.#listeners.set(event, rest);
      else this.#listeners.delete(event);
    };
  }

  emit<E extends keyof EmailWorkerEvents>(event: E, payload: EmailWorkerEvents[E]): void {
    const listeners = this.#listeners.get(event);
    if (listeners === undefined) return;
    for (let i = 0; i < listeners.length; i++) {
      try {
        (listeners[i] as (event: EmailWorkerEvents[E]) => void)(payload);
      } catch {
        // A broken listener must not change what happens to an email.
      }
    }
  }

  /** Every `to` recipient is on the suppression list: nothing was sent, the record is done. */
  #suppressed(at: RecordPosition, envelope: EnvelopeV1, suppressed: readonly SuppressedRecipient[]): void {
    this.stats.suppressed++;
    const { topic, partition, offset } = at;
    this.log?.info(
      {
        event: 'worker.suppressed',
        id: envelope.id,
        topic,
        partition,
        offset,
        category: envelope.category ?? 'transactional',
        reasons: [...new Set(suppressed.map((s) => s.reason))],
      },
      'email suppressed: nothing sent',
    );
    this.emit('suppressed', { topic, partition, offset, envelope, suppressed });
  }

  /** What the record handler reports, as counts, log lines and events; `systemic` pauses. */
  recordReports(systemic: (error: EmailError | IdempotencyStoreError) => void): RecordReports {
    const { stats } = this;
    return {
      sent: (at, envelope, result, attempts) => {
        if (result.accepted.length === 0 && result.suppressed?.length) {
          this.#suppressed(at, envelope, result.suppressed);
          return;
        }
        stats.sent++;
        // Once per email: nothing is built for a logger that drops info lines and nobody listening.
        const log = logsAt(this.log, 'info') ? this.log : undefined;
        const listening = this.#listeners.has('sent');
        if (log === undefined && !listening) return;
        const latencyMs = Date.now() - isoTime(envelope.createdAt);
        const { topic, partition, offset } = at;
        log?.info(
          { event: 'worker.sent', id: envelope.id, topic, partition, offset, attempts, latencyMs },
          'email sent',
        );
        if (listening) this.emit('sent', { topic, partition, offset, envelope, result, attempts, latencyMs });
      },
      retried: (event) => {
        stats.retried++;
        const { envelope, error, ...fields } = event;
        this.log?.warn(
          { event: 'worker.retried', id: envelope.id, ...fields, error: describeFailure(error) },
          'email parked on the retry topic',
        );
        this.emit('retried', event);
      },
      deadLettered: (event) => {
        stats.deadLettered++;
        const { envelope, error, ...fields } = event;
        this.log?.error(
          { event: 'worker.dead_lettered', id: envelope?.id, ...fields, error: describeFailure(error) },
          'email dead-lettered',
        );
        this.emit('dead-lettered', event);
      },
      duplicate: (event) => {
        stats.duplicates++;
        if (logsAt(this.log, 'info')) {
          const { envelope, ...at } = event;
          this.log.info({ event: 'worker.duplicate', id: envelope.id, ...at }, 'already sent: skipped');
        }
        this.emit('duplicate', event);
      },
      delayed: (event) => {
        stats.delayed++;
        if (logsAt(this.log, 'info')) {
          const { envelope, dueAt, notBefore, ...at } = event;
          this.log.info(
            {
              event: 'worker.delayed',
              id: envelope.id,
              ...at,
              dueAt: dueAt.toISOString(),
              notBefore: notBefore.toISOString(),
            },
            `not yet due: moved to ${event.delayTopic}`,
          );
        }
        this.emit('delayed', event);
      },
      held: (event) => {
        stats.held++;
        const { envelope, ...fields } = event;
        this.log?.info(
          { event: 'worker.held', id: envelope.id, ...fields },
          'another worker is sending this email: parked until its lease ends',
        );
        this.emit('held', event);
      },
      possibleDuplicate: (event) => {
        stats.possibleDuplicates++;
        const { envelope, ...fields } = event;
        this.log?.warn(
          { event: 'worker.possible_duplicate', id: envelope.id, ...fields },
          fields.reason === 'lease-expired'
            ? `took over the lease of ${fields.previousOwner}, which ran out before it marked the email sent: it may have sent it, so this send may be a duplicate`
            : "this worker's lease ran out before the email was marked sent: another worker may have sent it too",
        );
        this.emit('possible-duplicate', event);
      },
      storeFailed: (error) => {
        this.log?.error(
          {
            event: 'worker.store_failed',
            operation: error.operation,
            code: error.code,
            message: error.message,
          },
          error.operation === 'markSent'
            ? 'the email was sent but the idempotency store could not mark it: its lease runs out, and a redelivery is reported as a possible duplicate'
            : 'the idempotency store could not release a key: it is free again when its lease runs out',
        );
        this.emit('error', { error });
      },
      systemic,
    };
  }

  /** kafkajs's GROUP_JOIN payload: the member and its partitions, as `topic[0,1,2]`. */
  joined(payload: Record<string, unknown>): void {
    const assignment = (payload.memberAssignment ?? {}) as Record<string, number[]>;
    const parts = Object.entries(assignment)
      .filter(([, partitions]) => partitions.length > 0)
      .map(([topic, partitions]) => `${topic}[${[...partitions].sort((a, b) => a - b).join(',')}]`);
    this.log?.info(
      {
        event: 'worker.joined',
        groupId: this.groupId,
        memberId: payload.memberId,
        isLeader: payload.isLeader,
        assigned: assignment,
      },
      parts.length > 0
        ? `joined group ${this.groupId}; assigned partitions ${parts.join(' ')}`
        : `joined group ${this.groupId} with no partitions assigned (more workers than partitions?)`,
    );
  }

  /** A commit that failed for another reason than a rebalance: those records may be sent again. */
  commitFailed(error: unknown, offsets: FinishedOffsets, retrying: boolean): void {
    this.log?.error(
      {
        event: 'worker.commit_failed',
        groupId: this.groupId,
        error: describeFailure(error),
        kafka: kafkaErrorFields(error),
        offsets: offsets.map((o) => `${o.topic}[${o.partition}]@${o.offset}`),
        retrying,
      },
      retrying
        ? 'could not commit offsets: new records wait while the commit is tried again'
        : 'could not commit offsets: those records are fetched again (this worker skips what it sent; another worker would send it again)',
    );
  }

  commitRefused(error: unknown, offsets: FinishedOffsets): void {
    this.stats.commitsRefused++;
    this.log?.warn(
      {
        event: 'worker.commit_refused',
        groupId: this.groupId,
        kafka: kafkaErrorFields(error),
        offsets: offsets.map((o) => `${o.topic}[${o.partition}]@${o.offset}`),
      },
      'the group is rebalancing: commit refused; those records go to the partition owner again (already-sent ones are counted as duplicates, not re-sent by this worker)',
    );
  }
}
