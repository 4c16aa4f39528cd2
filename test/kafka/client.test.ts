/** Unit tests of the client mapping: partitioning and the two clients' settings. */
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  CommitNotStoredError,
  confirmCommitted,
  confluentClientConfig,
  createConsumer,
  createProducer,
  flavorOf,
  murmur2,
} from '../../src/kafka/client.js';
import { Committer, RETRY_REFUSED_MS, RETRY_REFUSED_TIMES } from '../../src/kafka/commit.js';

describe('keyed partitioning', () => {
  it("matches kafkajs's default partitioner (the Java client's murmur2) for every key and partition count", () => {
    const reference = Partitioners.DefaultPartitioner();
    for (const key of [
      '',
      'a',
      'ab',
      'abc',
      'abcd',
      'abcde',
      'jane@example.com',
      'user-42@example.com',
      'ünï@例え.jp',
    ]) {
      for (const count of [1, 3, 6, 7, 12]) {
        const partitionMetadata = Array.from({ length: count }, (_, i) => ({ partitionId: i, leader: 1 }));
        const expected = reference({ topic: 't', partitionMetadata, message: { key, value: 'x' } } as never);
        expect((murmur2(Buffer.from(key)) & 0x7fffffff) % count, `${key} / ${count}`).toBe(expected);
      }
    }
  });
});

describe('client settings', () => {
  /** `controller`: the id the cluster names as its controller (brokers are 1-3; 0 is the mock's). */
  const recorder = (withLogger: boolean, controller = 1) => {
    const calls: { producer: unknown[]; consumer: unknown[] } = { producer: [], consumer: [] };
    const kafka = {
      producer: (config?: object) => {
        calls.producer.push(config);
        return { connect: async () => {}, disconnect: async () => {} } as never;
      },
      admin: () => ({
        connect: async () => {},
        disconnect: async () => {},
        describeCluster: async () => ({ brokers: [1, 2, 3].map((nodeId) => ({ nodeId })), controller }),
        listTopics: async () => [],
      }),
      consumer: (config: object) => {
        calls.consumer.push(config);
        return {} as never;
      },
      ...(withLogger ? { logger: () => ({}) } : {}),
    };
    return { kafka, calls };
  };

  it('tells kafkajs (it has logger()) from the Confluent KafkaJS API', () => {
    expect(flavorOf(recorder(true).kafka)).toBe('kafkajs');
    expect(flavorOf(recorder(false).kafka)).toBe('confluent');
    expect(flavorOf(recorder(true).kafka, 'confluent')).toBe('confluent');
  });

  it('puts acks, idempotence, fromBeginning and autoCommit where each client reads them', async () => {
    const kafkajs = recorder(true);
    await createProducer(kafkajs.kafka, 'kafkajs').connect();
    createConsumer(kafkajs.kafka, 'kafkajs', 'g', {});
    expect(kafkajs.calls.producer[0]).toMatchObject({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    expect(kafkajs.calls.consumer[0]).toMatchObject({ groupId: 'g', allowAutoTopicCreation: false });

    const confluent = recorder(false);
    createProducer(confluent.kafka, 'confluent');
    createConsumer(confluent.kafka, 'confluent', 'g', { sessionTimeout: 10_000 });
    expect(confluent.calls.producer[0]).toEqual({
      kafkaJS: { idempotent: true, acks: -1, allowAutoTopicCreation: false },
      // librdkafka's property beside the KafkaJS block: 30 s, not its 5 minutes.
      'message.timeout.ms': 30_000,
    });
    expect(confluent.calls.consumer[0]).toMatchObject({
      kafkaJS: { groupId: 'g', fromBeginning: true, autoCommit: false, sessionTimeout: 10_000 },
    });
    // Confluent's client refuses KafkaJS keys outside the kafkaJS block.
    expect(Object.keys(confluent.calls.consumer[0] as object)).toEqual(['kafkaJS']);
  });

  it('turns kafkajs idempotence off only where the controller is none of the brokers (the mock)', async () => {
    const mock = recorder(true, 0);
    await createProducer(mock.kafka, 'kafkajs').connect();
    expect(mock.calls.producer[0]).toMatchObject({ maxInFlightRequests: 1 });
    expect(mock.calls.producer[0]).not.toHaveProperty('idempotent');
  });
});

describe("the Confluent client's options", () => {
  const base = { brokers: ['k:1'], clientId: 'mailroom' };

  it('moves PEM text from ssl to librdkafka properties, and leaves ssl true in kafkaJS', () => {
    const ssl = { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', passphrase: 'pw' };
    expect(confluentClientConfig({ ...base, ssl }, { logLevel: 2 })).toEqual({
      kafkaJS: { ...base, ssl: true, logLevel: 2 },
      'ssl.ca.pem': 'CA PEM',
      'ssl.certificate.pem': 'CERT PEM',
      'ssl.key.pem': 'KEY PEM',
      'ssl.key.password': 'pw',
    });
    expect(confluentClientConfig({ ...base, ssl: { ca: 'CA PEM' } })).toEqual({
      kafkaJS: { ...base, ssl: true },
      'ssl.ca.pem': 'CA PEM',
    });
  });

  it('passes ssl true, and no ssl, as they are', () => {
    const sasl = { mechanism: 'plain', username: 'u', password: 'x' } as const;
    expect(confluentClientConfig({ ...base, ssl: true, sasl })).toEqual({
      kafkaJS: { ...base, ssl: true, sasl },
    });
    expect(confluentClientConfig(base)).toEqual({ kafkaJS: base });
  });
});

describe("the Confluent client's commits, read back", () => {
  /** A consumer whose group stores only what `stores` lets through (commitAsync: it always resolves). */
  const consumer = (stores: (partition: number) => boolean) => {
    const group = new Map<string, string>();
    return {
      group,
      commitOffsets: async (offsets: Array<{ topic: string; partition: number; offset: string }>) => {
        for (const o of offsets) if (stores(o.partition)) group.set(`${o.topic}/${o.partition}`, o.offset);
      },
      committed: async (partitions: Array<{ topic: string; partition: number }>) =>
        partitions.map((p) => ({ ...p, offset: group.get(`${p.topic}/${p.partition}`) ?? '-1' })),
    };
  };

  /** A committer as the Confluent client's worker has it: commits confirmed, refused ones tried again. */
  const retryingCommitter = (c: ReturnType<typeof consumer>) =>
    new Committer(c as never, {
      confirm: (offsets) => confirmCommitted(c as never, offsets),
      retryRefused: true,
    });

  it('confirms what the group stored, or beyond it, and names the partitions it did not', async () => {
    const c = consumer((partition) => partition !== 1);
    const offsets = [
      { topic: 'mail', partition: 0, offset: '5' },
      { topic: 'mail', partition: 1, offset: '7' },
    ];
    await c.commitOffsets(offsets);
    const error = await confirmCommitted(c as never, offsets).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommitNotStoredError);
    expect(error).toMatchObject({ partitions: [{ topic: 'mail', partition: 1, offset: '7' }] });
    expect((error as Error).message).toContain('mail[1]');
    c.group.set('mail/1', '9'); // another member committed further since
    await expect(confirmCommitted(c as never, offsets)).resolves.toBeUndefined();
  });

  it('counts an offset the Confluent client reads back as null (none stored, or 0) as not stored', async () => {
    // Its committed() maps a falsy offset to null; a commit always asks for 1 or more.
    const c = {
      committed: async (partitions: Array<{ topic: string; partition: number }>) =>
        partitions.map((p) => ({ ...p, offset: null })),
    };
    const error = await confirmCommitted(c as never, [{ topic: 'mail', partition: 3, offset: '1' }]).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CommitNotStoredError);
    expect(error).toMatchObject({ partitions: [{ topic: 'mail', partition: 3, offset: '1' }] });
  });

  it('with retryRefused, holds new records after a commit that failed, tries it again, and says the failure once', async () => {
    let failuresLeft = 1;
    const c = consumer(() => true);
    const commit = c.commitOffsets;
    c.commitOffsets = async (offsets) => {
      if (failuresLeft-- > 0) throw new Error('coordinator unreachable');
      return commit(offsets);
    };
    const failed: Array<[string, boolean]> = [];
    const committer = new Committer(c as never, {
      onFailed: (error, _offsets, retrying) => failed.push([(error as Error).message, retrying]),
      confirm: (offsets) => confirmCommitted(c as never, offsets),
      retryRefused: true,
    });
    committer.mark(committer.keyOf('mail', 0), 'mail', 0, '4');
    await expect(committer.flush()).rejects.toThrow('coordinator unreachable');
    expect(failed).toEqual([['coordinator unreachable', true]]);
    const held = committer.held;
    expect(held).toBeInstanceOf(Promise);
    await held;
    await committer.flush();
    expect(c.group.get('mail/0')).toBe('5');
    expect(committer.refusals).toBe(0);
    expect(failed).toHaveLength(1);
  });

  it('makes the committer count a commit the group did not store as refused, and go on', async () => {
    let storing = false;
    const c = consumer(() => storing);
    const refused: unknown[] = [];
    const committer = new Committer(c as never, {
      onRefused: (error) => refused.push(error),
      confirm: (offsets) => confirmCommitted(c as never, offsets),
    });
    const key = committer.keyOf('mail', 0);
    committer.mark(key, 'mail', 0, '4');
    await committer.flush();
    expect(committer.refusals).toBe(1);
    expect(refused[0]).toBeInstanceOf(CommitNotStoredError);
    storing = true;
    committer.mark(key, 'mail', 0, '6');
    await committer.flush();
    expect(committer.refusals).toBe(1);
    expect(c.group.get('mail/0')).toBe('7');
  });

  it('with retryRefused, commits refused offsets again until the group stores them, holding new records meanwhile', async () => {
    let refusalsLeft = 2;
    const c = consumer(() => refusalsLeft-- <= 0);
    const committer = retryingCommitter(c);
    expect(committer.held).toBeUndefined();
    committer.mark(committer.keyOf('mail', 0), 'mail', 0, '4');
    // flush() waits for the first answer, not for the retries: a batch is not kept from returning.
    await committer.flush();
    expect(committer.refusals).toBe(1);
    expect(c.group.has('mail/0')).toBe(false);
    const held = committer.held;
    expect(held).toBeInstanceOf(Promise);
    // An offset marked while the retry waits goes with the retry, not in a request of its own.
    committer.mark(committer.keyOf('mail', 0), 'mail', 0, '5');
    await held;
    await committer.flush();
    expect(committer.refusals).toBe(2);
    expect(c.group.get('mail/0')).toBe('6');
    expect(committer.held).toBeUndefined();
  });

  it('with retryRefused, ends the hold and commits nothing more of a partition revoked while it waits', async () => {
    const c = consumer((partition) => partition !== 1);
    const committer = retryingCommitter(c);
    committer.mark(committer.keyOf('mail', 1), 'mail', 1, '8');
    await committer.flush();
    const held = committer.held;
    expect(held).toBeInstanceOf(Promise);
    committer.forget({ mail: [1] });
    await held;
    expect(committer.held).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, RETRY_REFUSED_MS * 2));
    expect(c.group.has('mail/1')).toBe(false);
    expect(committer.refusals).toBe(1);
  });

  it('with retryRefused, ends the hold when the retries run out, and on a new assignment', async () => {
    const c = consumer(() => false);
    const committer = retryingCommitter(c);
    committer.mark(committer.keyOf('mail', 0), 'mail', 0, '1');
    await committer.flush();
    await committer.held; // every retry refused: the hold ends by itself after the last
    expect(committer.refusals).toBe(RETRY_REFUSED_TIMES + 1);
    expect(committer.held).toBeUndefined();
    // A group change starts a new count: the next refusal holds again, until the next assignment.
    // This mark comes while the loop that ended the hold is still finishing: it is committed (and
    // refused) at once, not left waiting for another mark.
    committer.assigned();
    committer.mark(committer.keyOf('mail', 0), 'mail', 0, '2');
    await committer.flush();
    expect(committer.refusals).toBe(RETRY_REFUSED_TIMES + 2);
    const held = committer.held;
    expect(held).toBeInstanceOf(Promise);
    committer.assigned();
    await held;
    committer.drop();
  });
});
