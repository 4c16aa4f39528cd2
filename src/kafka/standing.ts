/**
 * Internal: where a worker stands (live, ready, and why not), read from its runtime. What
 * `/livez`, `/readyz` and the `mailroom_worker_ready` gauge all answer from.
 */
import { isEmailError } from '../errors.js';
import { describeFailure } from './records.js';
import type { WorkerRuntime } from './runtime.js';

/** Where a worker stands: what `/livez` and `/readyz` answer, as JSON. */
export interface WorkerHealth {
  /** The worker runs (or is about to): false once it is closing or closed, after `close()` or a fatal failure. */
  live: boolean;
  /** It has joined its group, holds at least one partition, and is not paused. */
  ready: boolean;
  /** Why it is not ready, in words; absent when ready. */
  reason?: string;
  /** `new` (not started), `starting`, `running`, `restarting` (replacing a crashed consumer), `closing`, `closed`. */
  state: string;
  groupId: string;
  /** Partitions held, per topic (`{ "notifications.email": [0, 1] }`); null until the group assigns them. */
  assignment: Record<string, number[]> | null;
  /** Set while a systemic failure pauses consumption: its code, failure class, message and when it resumes (ISO 8601). */
  paused: { code: string; failure: string | undefined; message: string; resumeAt: string } | null;
  /**
   * Partitions waiting because a record of theirs could not be written to the retry, delay or
   * dead-letter topic (too large for it, no WRITE on it: `error.message` says which): each fetches
   * it again at `resumeAt` (ISO 8601). The other partitions go on, so the worker stays ready.
   */
  waiting: Array<{
    topic: string;
    partition: number;
    failuresInARow: number;
    resumeAt: string;
    error: { code: string; message: string };
  }>;
}

/** How many partitions an assignment holds, across its topics. */
export function heldPartitions(assignment: Record<string, number[]> | undefined): number {
  return Object.values(assignment ?? {}).reduce((sum, partitions) => sum + partitions.length, 0);
}

export function healthOf(runtime: WorkerRuntime): WorkerHealth {
  const { state, assignment, paused, waiting } = runtime.snapshot();
  const { groupId, topic, retryTopic } = runtime.settings;
  const live = state !== 'closing' && state !== 'closed';
  const error = paused?.error;
  const pausedBody: WorkerHealth['paused'] = paused
    ? {
        ...failureBody(error),
        failure: isEmailError(error) ? error.failure : undefined,
        resumeAt: paused.resumeAt.toISOString(),
      }
    : null;
  const reason =
    state === 'new'
      ? 'not started'
      : state === 'starting'
        ? 'connecting to Kafka'
        : state === 'restarting'
          ? 'replacing a Kafka consumer that crashed'
          : !live
            ? 'closed'
            : pausedBody
              ? isEmailError(error)
                ? `paused on a systemic delivery failure (${pausedBody.code}) until ${pausedBody.resumeAt}`
                : `paused: the idempotency store did not answer (${pausedBody.code}) until ${pausedBody.resumeAt}`
              : assignment === undefined
                ? `joining group ${groupId}: no partitions assigned yet`
                : heldPartitions(assignment) === 0
                  ? `holds no partition of ${topic} or ${retryTopic} (more workers in group ${groupId} than partitions?)`
                  : undefined;
  return {
    live,
    ready: reason === undefined,
    ...(reason === undefined ? {} : { reason }),
    state,
    groupId,
    assignment: assignment ?? null,
    paused: pausedBody,
    waiting: waiting.map((w) => ({
      topic: w.topic,
      partition: w.partition,
      failuresInARow: w.failuresInARow,
      resumeAt: w.resumeAt.toISOString(),
      error: failureBody(w.error),
    })),
  };
}

/** An error as the health body shows it: its code and message, as the log lines' `error` field. */
function failureBody(error: unknown): { code: string; message: string } {
  const described = error === undefined ? undefined : describeFailure(error);
  return { code: String(described?.code ?? 'unknown'), message: String(described?.message ?? '') };
}
