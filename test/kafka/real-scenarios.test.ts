/**
 * The group scenarios of the mock suite (rebalance.test.ts, resilience.test.ts) on a three-node
 * Apache Kafka cluster: workers joining and leaving under load, a close under load, two workers
 * sharing partitions, more workers than partitions; send later (send-later.ts). The same functions (scenarios.ts) run on both.
 */
import { describe, it } from 'vitest';
import {
  closeUnderLoad,
  moreWorkersThanPartitions,
  suppressedEmailsAreCommitted,
  twoWorkersShareTheGroup,
  useScenarioCluster,
  workersJoinAndLeaveUnderLoad,
} from './scenarios.js';
import { dueRecordWaitsWithoutBlocking, restartWhileRecordsWait } from './send-later.js';

describe('mailroom-js/kafka worker groups on a three-node real Kafka cluster', { timeout: 120_000 }, () => {
  const ctx = useScenarioCluster('real');

  it('loses nothing while a second and a third worker join and leave under load', () =>
    workersJoinAndLeaveUnderLoad(ctx));

  it('shuts down gracefully under load: in-flight sends finish and commit, the next worker repeats none', () =>
    closeUnderLoad(ctx));

  it('shares partitions between two workers in one group, each email sent once', () =>
    twoWorkersShareTheGroup(ctx));

  it('starts more workers than partitions; an idle one takes over when the others leave', () =>
    moreWorkersThanPartitions(ctx));

  it('commits a suppressed email without sending it and counts it; security mail from the app still goes', () =>
    suppressedEmailsAreCommitted(ctx));

  it('sends a record once due, never before, while the records behind it on its partition go at once', () =>
    dueRecordWaitsWithoutBlocking(ctx));

  it('loses nothing when a worker is restarted while records wait on a delay topic', () =>
    restartWhileRecordsWait(ctx));
});
