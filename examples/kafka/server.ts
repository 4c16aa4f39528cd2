/**
 * Runs the sign-up app with its mail queued on Kafka. Start the worker (worker.ts) to have the
 * emails sent; without one they wait on the topic.
 *
 *   KAFKA_BROKERS=localhost:9092 npx tsx examples/kafka/server.ts    # PORT=3000 by default
 *
 * SIGTERM or SIGINT stops taking requests, lets those in hand finish, then disconnects from Kafka.
 */
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { createQueuedMail, type QueuedMail } from './mail.js';

let queued: QueuedMail;
try {
  queued = createQueuedMail(process.env);
  // Connect now: a wrong KAFKA_BROKERS fails the deploy instead of the first sign-up.
  await queued.producer.connect();
} catch (err) {
  // A malformed variable is reported by name, e.g. "KAFKA_BROKERS: is required (host:port,host:port)".
  console.error(`server: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

const requested = Number(process.env.PORT ?? 3000);
const server = createApp({
  mail: queued.mail,
  baseUrl: process.env.PUBLIC_URL ?? `http://localhost:${requested}`,
}).listen(requested, (error?: Error) => {
  if (error) {
    console.error(`server: ${error.message}`);
    process.exit(1);
  }
  const url = `http://localhost:${(server.address() as AddressInfo).port}`;
  console.log(`Listening on ${url} (mail is published to ${queued.producer.topic})`);
  console.log(
    `Try: curl -X POST ${url}/signup -H 'content-type: application/json' -d '{"email":"jane@example.com","name":"Jane"}'`,
  );
});

const shutdown = () => {
  // Closing the server first: a request in hand may still be publishing its email.
  server.close(() => {
    queued.close().then(
      () => console.log('server: closed'),
      (err: unknown) => {
        console.error(`server: ${err instanceof Error ? err.message : String(err)}`);
        process.exitCode = 1;
      },
    );
  });
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
