/**
 * Internal: the partition assigner the worker gives kafkajs. kafkajs's own `RoundRobinAssigner`
 * leaves a member that gets no partition out of the leader's SyncGroup request. Apache Kafka fills
 * such a member in with an empty assignment, but a coordinator that waits for an assignment for
 * every member (librdkafka's mock cluster) never completes the sync: it times out, rebalances, and
 * the group never settles, so with more workers than partitions no worker's `start()` returned.
 * This one assigns exactly as kafkajs's does (same name and version, so a group may mix both during
 * a rolling deploy) and names every member, an idle one with no partitions.
 */

/** What kafkajs hands a partition assigner factory: the part used here. */
interface AssignerCluster {
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number }>;
}

/** A kafkajs `PartitionAssigner` (typed structurally: kafkajs is an optional peer). */
export type PartitionAssignerFactory = (context: { cluster: AssignerCluster }) => {
  name: string;
  version: number;
  assign(group: {
    members: Array<{ memberId: string }>;
    topics: string[];
  }): Promise<Array<{ memberId: string; memberAssignment: Buffer }>>;
  protocol(subscription: { topics: string[] }): { name: string; metadata: Buffer };
};

const NAME = 'RoundRobinAssigner';
const VERSION = 0;

/** Round robin over the members sorted by id, every member listed (an idle one with no partitions). */
export const everyMemberRoundRobin: PartitionAssignerFactory = ({ cluster }) => ({
  name: NAME,
  version: VERSION,
  async assign({ members, topics }) {
    const memberIds = members.map((m) => m.memberId).sort();
    const assignment = new Map<string, Map<string, number[]>>(memberIds.map((id) => [id, new Map()]));
    let next = 0;
    for (const topic of topics) {
      for (const { partitionId } of cluster.findTopicPartitionMetadata(topic)) {
        const member = assignment.get(memberIds[next++ % memberIds.length] as string);
        member?.set(topic, [...(member.get(topic) ?? []), partitionId]);
      }
    }
    return memberIds.map((memberId) => ({
      memberId,
      memberAssignment: encodeAssignment(assignment.get(memberId) ?? new Map()),
    }));
  },
  protocol({ topics }) {
    return { name: NAME, metadata: encodeMetadata(topics) };
  },
});

// Kafka's consumer protocol, version 0: int16 version, an array, then user data (int32-length bytes).

/** Subscription metadata: the version, the topics, no user data. */
export function encodeMetadata(topics: readonly string[]): Buffer {
  return Buffer.concat([int16(VERSION), int32(topics.length), ...topics.map(string), int32(0)]);
}

/** An assignment: the version, each topic with its partitions, no user data. */
export function encodeAssignment(assignment: ReadonlyMap<string, readonly number[]>): Buffer {
  const topics = [...assignment].flatMap(([topic, partitions]) => [
    string(topic),
    int32(partitions.length),
    ...partitions.map(int32),
  ]);
  return Buffer.concat([int16(VERSION), int32(assignment.size), ...topics, int32(0)]);
}

function int16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeInt16BE(value);
  return buffer;
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function string(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([int16(bytes.length), bytes]);
}
