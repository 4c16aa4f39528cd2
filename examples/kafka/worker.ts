/**
 * The email worker: consumes what server.ts publishes, renders and sends it through the transport
 * the environment names. With no transport it refuses to start: a worker commits what it sends,
 * so capturing (the sandbox folder .mailroom/outbox) must be asked for by name.
 *
 *   KAFKA_BROKERS=localhost:9092 MAILROOM_TRANSPORT=sandbox npx tsx examples/kafka/worker.ts
 *   KAFKA_BROKERS=kafka-1:9092 MAILROOM_TRANSPORT=mailgun MAILGUN_API_KEY=… MAILGUN_DOMAIN=mg.acme.example \
 *     MAILGUN_FROM_ADDRESS=no-reply@mg.acme.example APP_NAME=Acme npx tsx examples/kafka/worker.ts
 *
 * HEALTH_PORT=9464 also serves /livez, /readyz and Prometheus /metrics on 127.0.0.1 (0 picks a
 * free port; the URL is printed), for a supervisor's probes and a scraper.
 *
 * SIGTERM or SIGINT stops fetching, lets the sends in flight finish, commits, leaves the group and
 * closes the transport (and the health port); the process then ends on its own, with code 0.
 */
import { kafkaConfigFromEnv, serveWorkerHealth, type WorkerHealthServer } from 'mailroom-js/kafka';
import { createMailWorker, type MailWorker } from './mail.js';

let mailWorker: MailWorker;
let health: WorkerHealthServer | undefined;
try {
  mailWorker = createMailWorker(process.env, { handleSignals: true });
  // Before start(): probes answer 503 while the worker joins its group, 200 once it holds partitions.
  if (process.env.HEALTH_PORT !== undefined) {
    health = await serveWorkerHealth(mailWorker.worker, {
      port: Number(process.env.HEALTH_PORT),
      metrics: true,
    });
    console.log(`worker: health on ${health.url}`);
  }
  await mailWorker.start();
} catch (err) {
  console.error(`worker: ${err instanceof Error ? err.message : String(err)}`);
  await health?.close();
  process.exit(1);
}
const closeHealth = () => health?.close();
void mailWorker.worker.untilClosed().then(closeHealth, closeHealth);

const { topic, groupId } = kafkaConfigFromEnv(process.env);
console.log(`worker: consuming ${topic} as ${groupId}, sending via ${mailWorker.service.transport.name}`);
