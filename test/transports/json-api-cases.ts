/**
 * What the JSON-API provider tests (Postmark, Resend, SendGrid) share: the contract run against
 * their local peer, and a harness of peers closed after each test, a service with quick retries
 * that keeps its log lines, an email and a way to catch a send's failure.
 */
import { afterEach } from 'vitest';
import type { EmailError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import type { Transport } from '../../src/transport.js';
import type { JsonApiFault } from '../helpers/json-api-peer.js';
import type { ReceivedEmail } from '../helpers/received.js';
import { type Fault, transportContract } from './contract.js';

/** What the shared code needs of a provider's peer. */
interface Peer {
  received(): ReceivedEmail[] | Promise<ReceivedEmail[]>;
  failNext(fault: JsonApiFault, times?: number): void;
  readonly requests: readonly unknown[];
  close(): Promise<void>;
}

/** Runs the transport contract against the provider's peer; `client(peer, extra)` makes its transport. */
export function jsonApiContract<P extends Peer, O>(
  name: string,
  label: string,
  startPeer: () => Promise<P>,
  client: (peer: P, extra?: Partial<O>) => Transport,
  faults: Record<Fault, JsonApiFault>,
  wrongCredentials: Partial<O>,
): void {
  transportContract(
    name,
    async () => {
      const peer = await startPeer();
      return {
        transport: client(peer),
        received: async () => peer.received(),
        faults: {
          inject: (fault, times) => peer.failNext(faults[fault], times),
          attempts: () => peer.requests.length,
          badCredentials: () => client(peer, wrongCredentials),
          impatient: (ms) => client(peer, { timeoutMs: ms } as unknown as Partial<O>),
        },
        close: () => peer.close(),
      };
    },
    {
      skip: {
        deferred: `${label} accepts or refuses a message as a whole; it retries recipients it cannot reach yet itself`,
      },
    },
  );
}

/** Call inside a `describe`: peers started by `start` are closed after each test. */
export function jsonApiHarness<P extends Peer, A extends unknown[]>(startPeer: (...args: A) => Promise<P>) {
  const peers: P[] = [];
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((peer) => peer.close()));
  });
  return {
    start: async (...args: A) => {
      const peer = await startPeer(...args);
      peers.push(peer);
      return peer;
    },
    /** A service on `transport` with quick retries, its log lines pushed to `logs`. */
    service: (transport: Transport, logs: unknown[] = []) =>
      new EmailService({
        transport,
        from: 'Acme <no-reply@acme.example>',
        retry: { maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 50 },
        logger: {
          info: (o) => logs.push(o),
          warn: (o) => logs.push(o),
          error: (o) => logs.push(o),
          debug: (o) => logs.push(o),
        },
      }),
    hello: { to: 'jane@example.com', subject: 'Hello', text: 'Hi Jane', html: '<p>Hi Jane</p>' },
    /** The error a send rejects with; throws if it resolved. */
    failure: (promise: Promise<unknown>) =>
      promise.then(
        () => {
          throw new Error('expected the send to fail');
        },
        (error: unknown) => error as EmailError,
      ),
  };
}
