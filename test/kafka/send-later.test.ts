/** Send later on the mock cluster: the scenarios of send-later.ts (they run on real Kafka too). */
import { describe, it } from 'vitest';
import { useScenarioCluster } from './scenarios.js';
import {
  dueRecordWaitsWithoutBlocking,
  quietHoursFailureIsRetried,
  quietHoursHoldProductMail,
  restartWhileRecordsWait,
  withoutDelayTopicsNotDueIsDeadLettered,
} from './send-later.js';

describe('mailroom-js/kafka send later on the mock cluster', { timeout: 120_000 }, () => {
  const ctx = useScenarioCluster('mock');

  it('sends a record once due, never before, while the records behind it on its partition go at once; a far one waits on the 1-hour tier', () =>
    dueRecordWaitsWithoutBlocking(ctx));

  it('loses nothing when a worker is restarted while records wait on a delay topic', () =>
    restartWhileRecordsWait(ctx));

  it('holds product mail through quiet hours on the delay path; security mail goes at once', () =>
    quietHoursHoldProductMail(ctx));

  it('tries a record again when the quiet-hours hook fails, and dead-letters it as max-attempts if the hook keeps failing', () =>
    quietHoursFailureIsRetried(ctx));

  it('dead-letters a record not yet due as not-due when the worker has no delay topics', () =>
    withoutDelayTopicsNotDueIsDeadLettered(ctx));
});
