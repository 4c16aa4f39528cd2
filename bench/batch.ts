/**
 * Batch bench (issue 13 §7): 10 000 recipients of one email through the local Mailgun peer (in a
 * process of its own), three ways: `sendBatch` using Mailgun's batch sending (recipient variables,
 * 1 000 recipients a request), `sendBatch` with `batching: false` (one request per recipient), and
 * a loop of single `send()` calls, 10 in flight for each. Prints recipients per second side by side
 * and the ratios; asserts nothing, except that every recipient's email reached the server.
 */

import { fmt, median } from './peers/figures.js';
import {
  FROM,
  HTML,
  MAILGUN_API_KEY,
  MAILGUN_DOMAIN,
  type Peers,
  SUBJECT,
  startPeers,
  TEXT,
} from './send.js';

const RECIPIENTS = 10_000;
const CONCURRENCY = 10;
const ROUNDS = 3; // a multiple of the number of contestants, so each runs first, middle and last once

interface Contestant {
  name: string;
  /** Sends to every recipient; resolves once all are decided. */
  run(recipients: readonly string[]): Promise<unknown>;
}

const recipients = Array.from({ length: RECIPIENTS }, (_, i) => `user-${i}@example.com`);

async function contestants(url: string) {
  // The built package, as users get it (`npm run bench` builds first).
  const dist = '../dist/index.js';
  const { EmailService, mailgunTransport }: typeof import('../src/index.js') = await import(dist);
  const transport = mailgunTransport({ apiKey: MAILGUN_API_KEY, domain: MAILGUN_DOMAIN, baseUrl: url });
  const mail = new EmailService({ transport, from: FROM, retry: false });
  const message = (to: string) => ({ to, subject: SUBJECT, text: TEXT, html: HTML });
  const all: Contestant[] = [
    {
      name: 'sendBatch, batched',
      run: (to) => mail.sendBatch(to.map(message), { concurrency: CONCURRENCY }).then(allSent),
    },
    {
      name: 'sendBatch, batching: false',
      run: (to) =>
        mail.sendBatch(to.map(message), { concurrency: CONCURRENCY, batching: false }).then(allSent),
    },
    {
      name: 'loop of send()',
      async run(to) {
        let next = 0;
        const lane = async () => {
          while (next < to.length) await mail.send(message(to[next++]!));
        };
        await Promise.all(Array.from({ length: CONCURRENCY }, lane));
      },
    },
  ];
  return { all, close: () => mail.close() };
}

function allSent(result: { sent: number; total: number; outcomes: readonly { status: string }[] }) {
  if (result.sent !== result.total) {
    const failed = result.outcomes.find((o) => o.status !== 'sent');
    throw new Error(`batch bench: ${result.total - result.sent} not sent (${JSON.stringify(failed)})`);
  }
}

/** One run of a contestant: wall ms, this process's CPU µs, and the requests the server saw. */
async function once(c: Contestant, peers: Peers) {
  await peers.take();
  const start = performance.now();
  const cpu = process.cpuUsage();
  await c.run(recipients);
  const used = process.cpuUsage(cpu);
  const ms = performance.now() - start;
  const seen = (await peers.take()).mailgun;
  if (seen.recipients !== RECIPIENTS || seen.last?.subject !== SUBJECT) {
    throw new Error(
      `batch bench: ${c.name}: the server got ${seen.recipients} of ${RECIPIENTS} emails (last subject ${JSON.stringify(seen.last?.subject)})`,
    );
  }
  return { ms, cpuUs: used.user + used.system, requests: seen.messages };
}

export async function run(): Promise<void> {
  const peers = await startPeers();
  const { all, close } = await contestants(peers.address.mailgun.url);
  try {
    const samples = new Map(all.map((c) => [c, [] as { ms: number; cpuUs: number; requests: number }[]]));
    // Round 0 warms the JIT and the connections and is not counted; the order rotates each round.
    for (let r = 0; r <= ROUNDS; r++) {
      for (const c of [...all.slice(r % all.length), ...all.slice(0, r % all.length)]) {
        const sample = await once(c, peers);
        if (r > 0) samples.get(c)!.push(sample);
      }
    }
    console.log(
      `\nbatch, Mailgun API: one ${fmt((TEXT.length + HTML.length) / 1024)} KB text + HTML email to ` +
        `${fmt(RECIPIENTS, 0)} recipients over HTTP to 127.0.0.1,\n${CONCURRENCY} requests in flight, ` +
        `median of ${ROUNDS} rounds\n`,
    );
    console.log(
      `${'contestant'.padEnd(30)}${'emails/s'.padStart(10)}${'wall'.padStart(10)}${'requests'.padStart(10)}${'client CPU/email'.padStart(18)}`,
    );
    const perSecond = new Map<string, number>();
    for (const [c, runs] of samples) {
      const ms = median(runs.map((s) => s.ms));
      perSecond.set(c.name, RECIPIENTS / (ms / 1000));
      console.log(
        `${c.name.padEnd(30)}${fmt(RECIPIENTS / (ms / 1000), 0).padStart(10)}${`${fmt(ms, 0)} ms`.padStart(10)}` +
          `${fmt(median(runs.map((s) => s.requests)), 0).padStart(10)}` +
          `${`${fmt(median(runs.map((s) => s.cpuUs)) / RECIPIENTS, 1)} µs`.padStart(18)}`,
      );
    }
    const batched = perSecond.get('sendBatch, batched')!;
    console.log(
      `\nbatched vs loop of send()          ${fmt(batched / perSecond.get('loop of send()')!)}× faster` +
        `\nbatched vs sendBatch, batching off ${fmt(batched / perSecond.get('sendBatch, batching: false')!)}× faster\n`,
    );
  } finally {
    await close();
    await peers.close();
  }
}
