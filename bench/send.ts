/**
 * Send bench: messages per second to a loopback SMTP server (default nodemailer, nodemailer with a
 * hand-configured pool, mailroom) and to a loopback Mailgun API (mailgun.js, mailroom, a bare
 * node:http request as the floor), the same message and the same number of sends in flight for everyone.
 * Prints figures and whether the targets are met; asserts nothing, except that every message sent
 * reached the server.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Mailgun from 'mailgun.js';
import nodemailer from 'nodemailer';
import { fmt, median } from './peers/figures.js';
import type { PeerStats, PeersAddress, PeersStats } from './peers/send-peers.js';

const CONCURRENCY = 10;
const ROUNDS = 6; // a multiple of the number of contestants: each runs first, middle and last equally often
// Untimed sends on each new client before its timed ones: they open every connection a pool keeps
// (5 for SMTP; fetch and Node's agent about one per send in flight), or reopen any the server
// closed while the client sat idle.
const WARMUP = 2 * CONCURRENCY;
const TARGET_VS_DEFAULT_NODEMAILER = 1.5; // at least this many times faster
const TARGET_OVERHEAD_VS_POOLED = 0.1; // at most this much slower than nodemailer pooled by hand
const TARGET_VS_MAILGUN_JS = 1.3; // at least this many times faster
const POOL = { maxConnections: 5, maxMessages: 100 }; // mailroom's defaults, given to nodemailer by hand

export const MAILGUN_API_KEY = 'key-bench-0123456789';
export const MAILGUN_DOMAIN = 'mg.acme.example';
export const FROM = 'Acme <no-reply@acme.example>';
const TO = 'ada@example.com';
export const SUBJECT = 'Your weekly summary';

// About 2 KB of plain ASCII between the two parts, like a short notification.
const items = Array.from({ length: 8 }, (_, i) => ({
  title: `Report ${i + 1}: activity in project ${String.fromCharCode(65 + i)}`,
  url: `https://acme.example/reports/${1000 + i}`,
}));
export const TEXT = [
  'Hello Ada,',
  '',
  'Here is what happened in your projects this week:',
  '',
  ...items.map((item) => `- ${item.title}\n  ${item.url}`),
  '',
  'You get this email because you follow these projects. Change that at https://acme.example/settings',
].join('\n');
export const HTML = [
  '<!doctype html><html><body style="font-family: sans-serif; color: #1f2937">',
  '<p>Hello Ada,</p><p>Here is what happened in your projects this week:</p><ul>',
  ...items.map((item) => `<li><a href="${item.url}" style="color: #2563eb">${item.title}</a></li>`),
  '</ul><p style="font-size: 12px; color: #6b7280">You get this email because you follow these projects.',
  ' <a href="https://acme.example/settings">Change that</a>.</p></body></html>',
].join('\n');
const BODY_BYTES = TEXT.length + HTML.length;

/** A contestant's client; a new one for each share of a round, so that every share starts alike. */
interface Client {
  send(): Promise<unknown>;
  close(): Promise<void> | void;
}
interface Contestant {
  name: string;
  peer: 'smtp' | 'mailgun';
  /** Timed sends per round, so that a round takes about a second. */
  messages: number;
  /** At most this many timed sends on one client; a round opens a new client for each share. */
  perClient?: number;
  open(): Client;
}

export interface Peers {
  address: PeersAddress;
  /** What each server saw since the previous call. */
  take(): Promise<PeersStats>;
  close(): Promise<void>;
}

/** Starts bench/peers/send-peers.ts in a child process, so that the servers' CPU is not ours. */
export async function startPeers(): Promise<Peers> {
  const script = fileURLToPath(new URL('./peers/send-peers.ts', import.meta.url));
  // From the repository root, where `--import tsx` resolves.
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, MAILGUN_API_KEY, MAILGUN_DOMAIN], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting: { resolve(line: string): void; reject(error: Error): void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.resolve(line));
  child.once('exit', (code, signal) => {
    const error = new Error(`send bench: the peers process exited (${signal ?? code})`);
    for (const w of waiting.splice(0)) w.reject(error);
  });
  const next = <T>() =>
    new Promise<string>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error('send bench: the peers process is gone'));
      } else waiting.push({ resolve, reject });
    }).then((line) => JSON.parse(line) as T);

  const address = await next<PeersAddress>();
  return {
    address,
    take() {
      const answer = next<PeersStats>();
      child.stdin.write('take\n');
      return answer;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

async function smtpContestants({ host, port }: PeersAddress['smtp']): Promise<Contestant[]> {
  // The built package, as users get it (`npm run bench` builds first). A specifier that is not a
  // literal keeps the typecheck from needing dist/; the types come from the source.
  const dist = '../dist/index.js';
  const { EmailService, smtpTransport }: typeof import('../src/index.js') = await import(dist);
  const mail = { from: FROM, to: TO, subject: SUBJECT, text: TEXT, html: HTML };

  const nodemailerClient = (transporter: ReturnType<typeof nodemailer.createTransport>): Client => ({
    send: () => transporter.sendMail(mail),
    close: () => transporter.close(),
  });

  // A pool's client sends fewer messages than its connections may carry (the warm-up included), so
  // that no connection is replaced while timed: a replacement stalls its share of the sends for a
  // greeting, and where it falls in a round would decide the result more than the client does.
  const perPool = 400;
  if (WARMUP + perPool > 0.9 * POOL.maxConnections * POOL.maxMessages) {
    throw new Error('send bench: the pools would replace connections while timed');
  }
  return [
    {
      name: 'default nodemailer',
      peer: 'smtp',
      messages: 40,
      open: () => nodemailerClient(nodemailer.createTransport({ host, port, ignoreTLS: true })),
    },
    {
      name: 'pooled nodemailer',
      peer: 'smtp',
      messages: 3 * perPool,
      perClient: perPool,
      open: () =>
        nodemailerClient(nodemailer.createTransport({ host, port, ignoreTLS: true, pool: true, ...POOL })),
    },
    {
      name: 'mailroom',
      peer: 'smtp',
      messages: 3 * perPool,
      perClient: perPool,
      open() {
        const service = new EmailService({
          transport: smtpTransport({ host, port, tls: 'none' }),
          from: FROM,
          retry: false,
        });
        return {
          send: () => service.send({ to: TO, subject: SUBJECT, text: TEXT, html: HTML }),
          close: () => service.close(),
        };
      },
    },
  ];
}

async function mailgunContestants({ url }: PeersAddress['mailgun']): Promise<Contestant[]> {
  const dist = '../dist/index.js';
  const { EmailService, mailgunTransport }: typeof import('../src/index.js') = await import(dist);

  // Floor: the request every client has to make, built by hand in the cheapest encoding Mailgun
  // takes and sent with node:http over keep-alive connections; no validation, no Message-ID, no
  // timeout. A fresh agent per client, like the others, so every contestant opens its own.
  const endpoint = new URL(`/v3/${MAILGUN_DOMAIN}/messages`, url);
  const authorization = `Basic ${Buffer.from(`api:${MAILGUN_API_KEY}`).toString('base64')}`;
  const floor = (agent: http.Agent) => () =>
    new Promise<void>((resolve, reject) => {
      const body = new URLSearchParams({
        from: FROM,
        to: TO,
        subject: SUBJECT,
        text: TEXT,
        html: HTML,
      }).toString();
      const headers = {
        authorization,
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': String(Buffer.byteLength(body)),
      };
      const request = http.request(endpoint, { method: 'POST', agent, headers }, (response) => {
        let answer = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          answer += chunk;
        });
        response.on('end', () =>
          response.statusCode === 200
            ? resolve()
            : reject(new Error(`HTTP ${response.statusCode}: ${answer}`)),
        );
      });
      request.on('error', reject);
      request.end(body);
    });

  const common = { peer: 'mailgun', messages: 800 } as const;
  return [
    {
      ...common,
      name: 'mailgun.js',
      open() {
        const mg = new Mailgun(FormData).client({ username: 'api', key: MAILGUN_API_KEY, url });
        const message = { from: FROM, to: [TO], subject: SUBJECT, text: TEXT, html: HTML };
        return { send: () => mg.messages.create(MAILGUN_DOMAIN, message), close() {} };
      },
    },
    {
      ...common,
      name: 'mailroom',
      open() {
        const service = new EmailService({
          transport: mailgunTransport({ apiKey: MAILGUN_API_KEY, domain: MAILGUN_DOMAIN, baseUrl: url }),
          from: FROM,
          retry: false,
        });
        return {
          send: () => service.send({ to: TO, subject: SUBJECT, text: TEXT, html: HTML }),
          close: () => service.close(),
        };
      },
    },
    {
      ...common,
      name: 'floor (bare node:http)',
      open() {
        const agent = new http.Agent({ keepAlive: true });
        return { send: floor(agent), close: () => agent.destroy() };
      },
    },
  ];
}

/** Sends `n` messages, CONCURRENCY at a time; returns the wall milliseconds and this process's CPU microseconds. */
async function time(c: Contestant, client: Client, n: number): Promise<{ ms: number; cpuUs: number }> {
  let started = 0;
  const lane = async () => {
    while (started < n) {
      started++;
      await client.send();
    }
  };
  const start = performance.now();
  const cpu = process.cpuUsage();
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  } catch (error) {
    throw new Error(`send bench: ${c.name}: ${error instanceof Error ? error.message : error}`);
  }
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - start, cpuUs: used.user + used.system };
}

/** Aborts when the server did not get every message, or got something else, so lost mail is never timed. */
function check(c: Contestant, seen: PeerStats, sent: number): void {
  const problems = [
    seen.messages !== sent && `the server received ${seen.messages} of ${sent} messages`,
    seen.last?.subject !== SUBJECT && `the last message's subject is ${JSON.stringify(seen.last?.subject)}`,
    (seen.last?.bytes ?? 0) < BODY_BYTES && `the last message is ${seen.last?.bytes} bytes`,
  ].filter(Boolean);
  if (problems.length) throw new Error(`send bench: ${c.name}: ${problems.join('; ')}`);
}

/** Time from TCP connect to the server's 220 greeting (ms). */
function greetingDelay({ host, port }: PeersAddress['smtp']): Promise<number> {
  return new Promise((resolve, reject) => {
    let connected = 0;
    const socket = connect(port, host, () => {
      connected = performance.now();
    });
    socket.once('data', () => {
      resolve(performance.now() - connected);
      socket.end('QUIT\r\n');
    });
    socket.once('error', reject);
  });
}

const met = (ok: boolean) => (ok ? 'met' : 'NOT MET');
const line = (label: string, figure: string, rest: string) =>
  console.log(`${label.padEnd(30)}${figure.padStart(10)}  ${rest}`);

interface Result {
  perSecond: number;
  /** The client's own CPU time per message (µs): what it costs, whoever is the bottleneck. */
  cpuPerMessage: number;
  /** The slowest and fastest round: this machine's noise, to weigh the ratios by. */
  range: [number, number];
  /** Connections the server accepted per round, during the warm-up and during the timed sends. */
  warmupConnections: number;
  timedConnections: number;
}

/** One round of a contestant: each share of its sends on a new client, warmed up untimed. */
async function round(c: Contestant, peers: Peers) {
  const opened = { warmup: 0, timed: 0 };
  let ms = 0;
  let cpuUs = 0;
  for (let done = 0; done < c.messages; ) {
    const share = Math.min(c.perClient ?? c.messages, c.messages - done);
    const client = c.open();
    try {
      await time(c, client, WARMUP);
      const warm = (await peers.take())[c.peer];
      check(c, warm, WARMUP);
      const timing = await time(c, client, share);
      ms += timing.ms;
      cpuUs += timing.cpuUs;
      const timed = (await peers.take())[c.peer];
      check(c, timed, share);
      opened.warmup += warm.connections;
      opened.timed += timed.connections;
      done += share;
    } finally {
      await client.close();
    }
  }
  return { perSecond: c.messages / (ms / 1000), cpuPerMessage: cpuUs / c.messages, opened };
}

/** Times every contestant in rounds that take turns. */
async function measure(all: Contestant[], peers: Peers): Promise<Map<string, Result>> {
  await peers.take(); // forget whatever came before
  const samples = new Map<Contestant, number[]>(all.map((c) => [c, []]));
  const cpu = new Map<Contestant, number[]>(all.map((c) => [c, []]));
  const opened = new Map<Contestant, { warmup: number; timed: number }>(
    all.map((c) => [c, { warmup: 0, timed: 0 }]),
  );
  // Round 0 is not counted: it is where the JIT compiles the send paths. Rounds take turns, so
  // that drift in the machine's speed hits every contestant alike, and the order rotates, so that
  // no contestant always inherits the same predecessor's garbage and closing connections.
  for (let r = 0; r <= ROUNDS; r++) {
    for (const c of [...all.slice(r % all.length), ...all.slice(0, r % all.length)]) {
      const result = await round(c, peers);
      if (r === 0) continue;
      samples.get(c)!.push(result.perSecond);
      cpu.get(c)!.push(result.cpuPerMessage);
      opened.get(c)!.warmup += result.opened.warmup;
      opened.get(c)!.timed += result.opened.timed;
    }
  }
  return new Map(
    all.map((c) => [
      c.name,
      {
        perSecond: median(samples.get(c)!),
        cpuPerMessage: median(cpu.get(c)!),
        range: [Math.min(...samples.get(c)!), Math.max(...samples.get(c)!)],
        warmupConnections: opened.get(c)!.warmup / ROUNDS,
        timedConnections: opened.get(c)!.timed / ROUNDS,
      },
    ]),
  );
}

function table(results: Map<string, Result>): void {
  const columns = (range: string, warmup: string, timed: string, cpu: string) =>
    `${range.padStart(13)}${warmup.padStart(9)}${timed.padStart(7)}${cpu.padStart(16)}`;
  const count = (n: number) => fmt(n, Number.isInteger(n) ? 0 : 1);
  console.log(`${''.padEnd(56)}connections per round`);
  line('contestant', 'msgs/s', columns('rounds', 'warm-up', 'timed', 'client CPU/msg'));
  for (const [name, r] of results) {
    const range = `${fmt(r.range[0], 0)}–${fmt(r.range[1], 0)}`;
    line(
      name,
      fmt(r.perSecond),
      columns(range, count(r.warmupConnections), count(r.timedConnections), `${fmt(r.cpuPerMessage, 0)} µs`),
    );
  }
  console.log();
}

async function smtp(peers: Peers): Promise<void> {
  const { smtp: address } = peers.address;
  const delays = [];
  for (let i = 0; i < 3; i++) delays.push(await greetingDelay(address));
  const delay = median(delays) / 1000;
  const results = await measure(await smtpContestants(address), peers);

  console.log(
    `\nsend, SMTP: a ${fmt(BODY_BYTES / 1024)} KB text + HTML message over plain text to 127.0.0.1, ` +
      `${CONCURRENCY} in flight, median of ${ROUNDS} rounds\n`,
  );
  table(results);
  const mailroom = results.get('mailroom')!.perSecond;
  const defaultNodemailer = results.get('default nodemailer')!.perSecond;
  // A long-lived pool replaces each connection after maxMessages, and each replacement idles one
  // connection of maxConnections for a greeting: about one greeting of the whole pool's time per
  // maxConnections × maxMessages sends, all at once or spread out.
  const lifetime = POOL.maxConnections * POOL.maxMessages;
  const mailroomLongRun = lifetime / (lifetime / mailroom + delay);
  console.log(
    `smtp-server holds every new connection ${fmt(delay * 1000, 0)} ms before greeting it: a fixed ` +
      '100 ms timer that catches\nclients talking too soon. Default nodemailer pays it on every message ' +
      `(${CONCURRENCY} in flight cannot beat ${fmt(CONCURRENCY / delay, 0)} msgs/s);\n` +
      'the pools once per connection, here in the untimed warm-ups. A long-lived pool also replaces ' +
      `its\nconnections every ${POOL.maxMessages} messages, about one greeting's stall per ${lifetime} ` +
      `messages: that brings mailroom to ${fmt(mailroomLongRun)} msgs/s.\n`,
  );

  const vsDefault = mailroomLongRun / defaultNodemailer;
  const overhead = results.get('pooled nodemailer')!.perSecond / mailroom - 1;
  line(
    'mailroom vs default nodemailer',
    `${fmt(vsDefault)}×`,
    `faster     target ≥ ${TARGET_VS_DEFAULT_NODEMAILER}×: ${met(vsDefault >= TARGET_VS_DEFAULT_NODEMAILER)}` +
      ` (with replacements; ${fmt(mailroom / defaultNodemailer)}× warm)`,
  );
  line(
    'mailroom vs pooled nodemailer',
    `${overhead > 0 ? '+' : ''}${fmt(overhead * 100)}%`,
    `overhead   target ≤ ${TARGET_OVERHEAD_VS_POOLED * 100}%: ${met(overhead <= TARGET_OVERHEAD_VS_POOLED)}`,
  );
  const cpuOverhead =
    results.get('mailroom')!.cpuPerMessage / results.get('pooled nodemailer')!.cpuPerMessage - 1;
  line(
    '  in client CPU per message',
    `${cpuOverhead > 0 ? '+' : ''}${fmt(cpuOverhead * 100)}%`,
    'overhead (steadier than msgs/s here)',
  );
  console.log();
}

async function mailgun(peers: Peers): Promise<void> {
  const results = await measure(await mailgunContestants(peers.address.mailgun), peers);

  console.log(
    `\nsend, Mailgun API: the same message over HTTP to 127.0.0.1, ${CONCURRENCY} in flight, ` +
      `median of ${ROUNDS} rounds\n`,
  );
  table(results);
  console.log(
    'Connections are kept alive. mailroom and the floor use node:http with a keep-alive agent of their own\n' +
      "per client (10 in flight, 10 connections, opened in the warm-up); mailgun.js uses axios over Node's\n" +
      'global agent, whose connections outlive a client, so its warm-ups open none after the first.\n',
  );

  const mailroom = results.get('mailroom')!.perSecond;
  const vsMailgunJs = mailroom / results.get('mailgun.js')!.perSecond;
  line(
    'mailroom vs mailgun.js',
    `${fmt(vsMailgunJs)}×`,
    `faster     target ≥ ${TARGET_VS_MAILGUN_JS}×: ${met(vsMailgunJs >= TARGET_VS_MAILGUN_JS)}`,
  );
  const cpuVsMailgunJs = results.get('mailgun.js')!.cpuPerMessage / results.get('mailroom')!.cpuPerMessage;
  line(
    '  in client CPU per message',
    `${fmt(cpuVsMailgunJs)}×`,
    'less (what it costs, whoever is the bottleneck)',
  );
  line(
    'mailroom / floor',
    `${fmt(results.get('floor (bare node:http)')!.perSecond / mailroom, 2)}×`,
    'the floor',
  );
  console.log();
}

export async function run(): Promise<void> {
  const peers = await startPeers();
  try {
    await smtp(peers);
    await mailgun(peers);
  } finally {
    await peers.close();
  }
}
