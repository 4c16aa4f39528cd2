/**
 * A worker in its own process, for the kill-and-restart scenario. Every delivery is appended to a
 * ledger file (one idempotency key per line) before the transport returns, so a SIGKILL loses
 * nothing the test needs to count.
 * argv: brokers topic groupId ledgerPath sendDelayMs concurrency
 */
import { appendFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { EmailService, type Transport } from '../../src/index.js';
import { createEmailWorker } from '../../src/kafka/index.js';

const [brokers = '', topic = '', groupId = '', ledgerPath = '', delay = '0', concurrency = '5'] =
  process.argv.slice(2);
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const transport: Transport = {
  name: 'ledger',
  async send(message) {
    await new Promise((resolve) => setTimeout(resolve, Number(delay)));
    appendFileSync(ledgerPath, `${message.idempotencyKey}\n`);
    return {
      messageId: message.messageId,
      accepted: message.to.map((a) => a.address),
      rejected: [],
      transport: 'ledger',
    };
  },
};
const worker = createEmailWorker({
  kafka: new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING, clientId: 'child' }),
  service: new EmailService({ transport, from: 'Acme <no-reply@acme.example>', retry: false }),
  topic,
  groupId,
  concurrency: Number(concurrency),
  consumer: { sessionTimeout: 6_000, heartbeatInterval: 500, rebalanceTimeout: 6_000, maxWaitTimeInMs: 200 },
  handleSignals: true,
});
await worker.start();
process.stdout.write('started\n');
