/**
 * A worker in its own process, for the kill-and-restart scenario. Every delivery is appended to a
 * ledger file (one idempotency key per line) before the transport returns, so a SIGKILL loses
 * nothing the test needs to count.
 * With a Redis URL, the worker shares a `redisIdempotencyStore` (lease `leaseMs`) and appends its
 * store events to `<ledgerPath>.events` as `<event> <key> <previous owner>` lines; and the provider
 * has each email before it answers (the ledger line comes first, then the delay), so a SIGKILL
 * mid-send leaves emails that went out but were never marked sent.
 * argv: brokers topic groupId ledgerPath sendDelayMs concurrency [redisUrl leaseMs]
 * The Kafka client is the test run's (clients.ts: MAILROOM_TEST_KAFKA_CLIENT, inherited).
 */
import { appendFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { EmailService, type Transport } from '../../src/index.js';
import { createEmailWorker, redisIdempotencyStore } from '../../src/kafka/index.js';
import { clientUnderTest } from './clients.js';

const [
  brokers = '',
  topic = '',
  groupId = '',
  ledgerPath = '',
  delay = '0',
  concurrency = '5',
  redisUrl,
  leaseMs = '3000',
] = process.argv.slice(2);
const transport: Transport = {
  name: 'ledger',
  async send(message) {
    if (redisUrl) appendFileSync(ledgerPath, `${message.idempotencyKey}\n`);
    await new Promise((resolve) => setTimeout(resolve, Number(delay)));
    if (!redisUrl) appendFileSync(ledgerPath, `${message.idempotencyKey}\n`);
    return {
      messageId: message.messageId,
      accepted: message.to.map((a) => a.address),
      rejected: [],
      transport: 'ledger',
    };
  },
};
const worker = createEmailWorker({
  // kafkajs, or the Confluent client in that run: MAILROOM_TEST_KAFKA_CLIENT reaches this process too.
  kafka: clientUnderTest(brokers.split(','), 'child'),
  service: new EmailService({ transport, from: 'Acme <no-reply@acme.example>', retry: false }),
  topic,
  groupId,
  concurrency: Number(concurrency),
  consumer: { sessionTimeout: 6_000, heartbeatInterval: 500, rebalanceTimeout: 6_000, maxWaitTimeInMs: 200 },
  handleSignals: true,
  ...(redisUrl
    ? { idempotencyStore: redisIdempotencyStore({ client: new Redis(redisUrl), leaseMs: Number(leaseMs) }) }
    : {}),
});
if (redisUrl) {
  const note = (line: string) => appendFileSync(`${ledgerPath}.events`, `${line}\n`);
  worker.on('possible-duplicate', (e) =>
    note(`possible-duplicate ${e.envelope.idempotencyKey} ${e.previousOwner ?? e.reason}`),
  );
  worker.on('held', (e) => note(`held ${e.envelope.idempotencyKey} ${e.owner}`));
  worker.on('duplicate', (e) => note(`duplicate ${e.envelope.idempotencyKey} -`));
}
await worker.start();
process.stdout.write('started\n');
