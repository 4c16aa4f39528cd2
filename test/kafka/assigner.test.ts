/**
 * The worker's partition assigner against kafkajs's own: the same partitions for the same members,
 * byte-identical subscription metadata, and every member named, an idle one with no partitions.
 * (The group-level proof, workers on the mock and on real Kafka, is moreWorkersThanPartitions in
 * scenarios.ts.)
 */
import { AssignerProtocol, PartitionAssigners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { everyMemberRoundRobin } from '../../src/kafka/assigner.js';

const partitions: Record<string, number> = { mail: 6, 'mail.retry': 2 };
const cluster = {
  findTopicPartitionMetadata: (topic: string) =>
    Array.from({ length: partitions[topic] ?? 0 }, (_, partitionId) => ({ partitionId })),
};
const members = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ memberId: `member-${i}`, memberMetadata: Buffer.alloc(0) }));

function decoded(list: Array<{ memberId: string; memberAssignment: Buffer }>) {
  return Object.fromEntries(
    list.map(({ memberId, memberAssignment }) => [
      memberId,
      AssignerProtocol.MemberAssignment.decode(memberAssignment)?.assignment,
    ]),
  );
}

describe('mailroom-js/kafka partition assigner', () => {
  const ours = everyMemberRoundRobin({ cluster });
  // kafkajs's factory is typed for its full Cluster; the assigner reads only partition metadata.
  const theirs = PartitionAssigners.roundRobin({ cluster } as never);

  it("takes the name and version of kafkajs's round robin, so both can share a group", () => {
    expect([ours.name, ours.version]).toEqual([theirs.name, theirs.version]);
    const topics = ['mail', 'mail.retry'];
    expect(ours.protocol({ topics })).toEqual(theirs.protocol({ topics }));
  });

  for (const count of [1, 3, 8]) {
    it(`assigns as kafkajs does with ${count} member(s) for 8 partitions`, async () => {
      const group = { members: members(count), topics: ['mail', 'mail.retry'] };
      expect(decoded(await ours.assign(group))).toEqual(decoded(await theirs.assign(group)));
    });
  }

  it('names every member when there are more members than partitions, the idle ones with none', async () => {
    const group = { members: members(3), topics: ['mail.retry'] };
    // kafkajs leaves member-2 out: a coordinator waiting for its assignment never completes the sync.
    expect(Object.keys(decoded(await theirs.assign(group)))).toEqual(['member-0', 'member-1']);
    expect(decoded(await ours.assign(group))).toEqual({
      'member-0': { 'mail.retry': [0] },
      'member-1': { 'mail.retry': [1] },
      'member-2': {},
    });
  });
});
