/**
 * The email worker: consumes what server.ts publishes, renders and sends it through the transport
 * the environment names (the sandbox folder .mailroom/outbox when none is set).
 *
 *   KAFKA_BROKERS=localhost:9092 npx tsx examples/kafka/worker.ts
 *   KAFKA_BROKERS=kafka-1:9092 MAILROOM_TRANSPORT=mailgun MAILGUN_API_KEY=… MAILGUN_DOMAIN=mg.acme.example \
 *     MAILGUN_FROM_ADDRESS=no-reply@mg.acme.example npx tsx examples/kafka/worker.ts
 *
 * SIGTERM or SIGINT stops fetching, lets the sends in flight finish, commits, leaves the group and
 * closes the transport; the process then ends on its own, with code 0.
 */
import { kafkaConfigFromEnv } from 'mailroom-js/kafka';
import { createMailWorker, type MailWorker } from './mail.js';

let mailWorker: MailWorker;
try {
  mailWorker = createMailWorker(process.env, { handleSignals: true });
  await mailWorker.start();
} catch (err) {
  console.error(`worker: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

const { topic, groupId } = kafkaConfigFromEnv(process.env);
console.log(`worker: consuming ${topic} as ${groupId}, sending via ${mailWorker.service.transport.name}`);
