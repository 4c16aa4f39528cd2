/**
 * Deferred and refused recipients through the worker: a send the provider took for some
 * recipients only leaves a copy narrowed to the deferred ones on the retry topic and a copy
 * narrowed to the refused ones on the dead-letter topic, so no recipient is only a log line.
 * The transport here scripts per-recipient replies; it is not what is under test.
 */
import { describe, expect, it } from 'vitest';
import type { EmailMessage, RecipientRefusal, Transport } from '../../src/index.js';
import {
  FAST_RETRY,
  freshWorker,
  HEADERS,
  readTopic,
  serviceFor,
  useKafka,
  waitFor,
  workerFor,
} from './harness.js';

const ctx = useKafka();

/**
 * Accepts every recipient except: `grey…` ones are deferred (450) the first `greyTimes` times
 * each is tried, `gone…` ones are refused for good (550). Counts what each address accepted.
 */
function perRecipientTransport(greyTimes: number) {
  const acceptedBy = new Map<string, number>();
  const tries = new Map<string, number>();
  const sends: EmailMessage[] = [];
  const transport: Transport & { acceptedBy: Map<string, number>; sends: EmailMessage[] } = {
    name: 'per-recipient',
    acceptedBy,
    sends,
    async send(message) {
      sends.push(message);
      const all = [...message.to, ...message.cc, ...message.bcc].map((a) => a.address);
      const accepted: string[] = [];
      const rejected: string[] = [];
      const deferred: string[] = [];
      const refusals: RecipientRefusal[] = [];
      for (const address of all) {
        const n = (tries.get(address) ?? 0) + 1;
        tries.set(address, n);
        if (address.startsWith('gone')) {
          rejected.push(address);
          refusals.push({
            address,
            failure: 'permanent',
            status: 550,
            response: '550 5.1.1 mailbox unavailable',
          });
        } else if (address.startsWith('grey') && n <= greyTimes) {
          deferred.push(address);
          refusals.push({
            address,
            failure: 'transient',
            status: 450,
            response: '450 4.2.0 greylisted, try later',
          });
        } else {
          accepted.push(address);
          acceptedBy.set(address, (acceptedBy.get(address) ?? 0) + 1);
        }
      }
      return {
        messageId: message.messageId,
        accepted,
        rejected,
        deferred,
        refusals,
        transport: 'per-recipient',
      };
    },
  };
  return transport;
}

async function setup(greyTimes: number) {
  const { topics, transport, producer, worker } = await freshWorker(ctx, {
    transport: perRecipientTransport(greyTimes),
    retry: FAST_RETRY,
  });
  return { topics, transport, producer, worker };
}

describe('recipients refused while others accepted', { timeout: 60_000 }, () => {
  it('parks the deferred ones and dead-letters the refused ones, each a narrowed copy; nobody gets it twice', async () => {
    const { topics, transport, producer, worker } = await setup(1);
    const receipt = await producer.publish({
      subject: 'Invoice',
      text: 'Attached',
      to: ['jane@example.com', 'grey-1@example.com', 'gone-1@example.com'],
      cc: ['grey-2@example.com', 'bob@example.com'],
      idempotencyKey: 'invoice:7',
    });
    await worker.start();
    await waitFor(() => transport.sends.length === 2, 'the original and the narrowed retry');
    await waitFor(() => worker.stats.sent === 2, 'both sends reported');

    // Each recipient who could receive it did, exactly once; the refused one never did.
    expect(Object.fromEntries(transport.acceptedBy)).toEqual({
      'jane@example.com': 1,
      'bob@example.com': 1,
      'grey-1@example.com': 1,
      'grey-2@example.com': 1,
    });
    const [original, retry] = transport.sends;
    // The narrowed copy reached only the deferred recipients, To and Cc in their places, same Message-ID.
    expect(retry?.to.map((a) => a.address)).toEqual(['grey-1@example.com']);
    expect(retry?.cc.map((a) => a.address)).toEqual(['grey-2@example.com']);
    expect(retry?.messageId).toBe(original?.messageId);
    expect(worker.stats).toMatchObject({ sent: 2, retried: 1, deadLettered: 1, duplicates: 0 });

    const [parked] = await readTopic(ctx.kafka, topics.retryTopic, 1);
    expect(parked?.headers).toMatchObject({
      [HEADERS.narrowed]: 'deferred',
      [HEADERS.errorCode]: 'deferred',
      [HEADERS.originalTopic]: topics.topic,
      [HEADERS.originalOffset]: receipt.offset,
    });
    expect(parked?.headers[HEADERS.errorMessage]).toContain('450 4.2.0 greylisted');
    const parkedEnvelope = JSON.parse(parked?.value ?? '{}');
    expect(parkedEnvelope).toMatchObject({ idempotencyKey: 'invoice:7', to: ['grey-1@example.com'] });

    const [dead] = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
    expect(dead?.headers).toMatchObject({
      [HEADERS.reason]: 'recipients-rejected',
      [HEADERS.narrowed]: 'rejected',
      [HEADERS.errorCode]: 'rejected',
    });
    expect(JSON.parse(dead?.headers[HEADERS.refusals] ?? '[]')).toEqual([
      {
        address: 'gone-1@example.com',
        failure: 'permanent',
        status: 550,
        response: '550 5.1.1 mailbox unavailable',
      },
    ]);
    const deadEnvelope = JSON.parse(dead?.value ?? '{}');
    expect(deadEnvelope.to).toEqual(['gone-1@example.com']);
    expect(deadEnvelope.cc).toBeUndefined();
  });

  it('delivers 400 recipients of which 200 are deferred: every one once, none lost', async () => {
    const { transport, producer, worker } = await setup(1);
    const to = Array.from({ length: 400 }, (_, i) => `${i % 2 ? 'grey' : 'user'}-${i}@example.com`);
    // 40 emails of 10 recipients each: the batch a newsletter-sized send becomes.
    for (let i = 0; i < 40; i++) {
      await producer.publish({
        subject: `Notice ${i}`,
        text: 'Hello',
        to: to.slice(i * 10, i * 10 + 10),
        idempotencyKey: `notice:${i}`,
      });
    }
    await worker.start();
    await waitFor(() => transport.acceptedBy.size === 400, 'all 400 recipients', 40_000);
    expect([...transport.acceptedBy.values()].every((n) => n === 1)).toBe(true);
    expect(worker.stats).toMatchObject({ sent: 80, retried: 40, deadLettered: 0 });
  });

  it('does not skip a narrowed copy as a duplicate of its original, nor one narrowed again to the same recipients', async () => {
    // Deferred twice: the first narrowed copy is deferred again and narrowed again (same recipients).
    const { transport, producer, worker } = await setup(2);
    await producer.publish({
      subject: 'Hello',
      text: 'Hi',
      to: ['ann@example.com', 'grey-9@example.com'],
      idempotencyKey: 'hello:1',
    });
    await worker.start();
    await waitFor(
      () => transport.acceptedBy.has('grey-9@example.com'),
      'the deferred recipient, at last',
      40_000,
    );
    expect(Object.fromEntries(transport.acceptedBy)).toEqual({
      'ann@example.com': 1,
      'grey-9@example.com': 1,
    });
    expect(transport.sends).toHaveLength(3);
    expect(worker.stats).toMatchObject({ retried: 2, duplicates: 0 });
  });

  it('dead-letters each blind-copied refused recipient alone, with only its own refusal, and logs no address', async () => {
    const { topics, transport, producer } = await setup(0);
    const lines: string[] = [];
    const log = (fields: object) => lines.push(JSON.stringify(fields));
    const worker = workerFor(ctx, {
      service: serviceFor(transport),
      ...topics,
      retry: FAST_RETRY,
      logger: { info: log, warn: log, error: log },
    });
    await producer.publish({
      subject: 'Board minutes',
      text: 'Attached',
      to: ['jane@example.com'],
      bcc: ['gone-a@example.com', 'gone-b@example.com'],
      idempotencyKey: 'minutes:3',
    });
    await worker.start();
    await waitFor(() => worker.stats.deadLettered === 2, 'a dead letter per blind-copied recipient');
    const dead = await readTopic(ctx.kafka, topics.deadLetterTopic, 2);
    const own = dead.map((record) => {
      const envelope = JSON.parse(record.value ?? '{}');
      const refusals = JSON.parse(record.headers[HEADERS.refusals] ?? '[]') as { address: string }[];
      return [
        envelope.to,
        envelope.bcc,
        refusals.map((r) => r.address),
        record.headers[HEADERS.errorMessage],
      ];
    });
    expect(own.sort()).toEqual([
      [['gone-a@example.com'], undefined, ['gone-a@example.com'], expect.not.stringContaining('gone-b')],
      [['gone-b@example.com'], undefined, ['gone-b@example.com'], expect.not.stringContaining('gone-a')],
    ]);
    expect(lines.join('\n')).not.toMatch(/gone-[ab]@example\.com/);
  });
});
