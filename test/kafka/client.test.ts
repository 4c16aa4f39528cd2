/** Unit tests of the client mapping: partitioning and the two clients' settings. */
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  CommitNotStoredError,
  confirmCommitted,
  createConsumer,
  createProducer,
  flavorOf,
  murmur2,
} from '../../src/kafka/client.js';
import { Committer } from '../../src/kafka/commit.js';

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

  it('makes the committer count a commit the group did not store as refused, and go on', async () => {
    let storing = false;
    const c = consumer(() => storing);
    const refused: unknown[] = [];
    const committer = new Committer(
      c as never,
      (error) => refused.push(error),
      (offsets) => confirmCommitted(c as never, offsets),
    );
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

  it('with retryRefused, commits refused offsets again until the group stores them, unless the partition was revoked', async () => {
    let refusalsLeft = 2;
    const c = consumer(() => refusalsLeft-- <= 0);
    const committer = new Committer(
      c as never,
      () => {},
      (offsets) => confirmCommitted(c as never, offsets),
      true,
    );
    committer.mark(committer.keyOf('mail', 0), 'mail', 0, '4');
    await committer.flush();
    expect(committer.refusals).toBe(2);
    expect(c.group.get('mail/0')).toBe('5');

    // Revoked while it waits to try again: nothing more is committed for that partition.
    refusalsLeft = 1;
    committer.mark(committer.keyOf('mail', 1), 'mail', 1, '8');
    await new Promise((resolve) => setTimeout(resolve, 20));
    committer.forget({ mail: [1] });
    await committer.flush();
    expect(c.group.has('mail/1')).toBe(false);
  });
});
