/**
 * `MAILROOM_HOLD=true` with the built CLI: `mailroom send` holds, `mailroom release` sends through
 * a real SMTP server (configured by the environment alone), once even when two processes release
 * the same email at the same moment; a refused release stays held; `mailroom discard` sets aside.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { holdTransport } from '../../src/transports/hold.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
let dir: string;
let outbox: string;
let peer: SmtpPeer;
let env: Record<string, string>;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  dir = await mkdtemp(join(tmpdir(), 'mailroom-cli-hold-'));
  outbox = join(dir, 'outbox');
  peer = await startSmtpPeer();
  const ca = join(dir, 'ca.pem');
  await writeFile(ca, peer.cert);
  env = {
    APP_NAME: 'Acme',
    MAILROOM_HOLD: 'true',
    MAILROOM_SANDBOX_DIR: outbox,
    SMTP_HOST: peer.host,
    SMTP_PORT: String(peer.port),
    SMTP_FROM_EMAIL: 'no-reply@acme.example',
    NODE_EXTRA_CA_CERTS: ca,
  };
});
afterAll(async () => {
  await peer?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  peer.messages.length = 0;
});

/** Runs the built CLI with only these mailroom variables set (none inherited from this process). */
async function mailroom(args: string[], extra: Record<string, string | undefined> = {}) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|NODE_EXTRA_CA_CERTS)/.test(k),
    ),
  );
  const merged = Object.fromEntries(
    Object.entries({ ...inherited, ...env, ...extra }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
      env: merged,
      encoding: 'utf8',
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Holds a welcome email for `to` with `mailroom send`; returns its id, read from what it printed. */
async function hold(to: string): Promise<string> {
  const { code, stdout, stderr } = await mailroom([
    'send',
    'welcome',
    '--to',
    to,
    '--data',
    JSON.stringify({ username: 'Jane', actionUrl: 'https://acme.example/start' }),
  ]);
  expect(stderr).toMatch(/^mailroom: the hold kept an email for review/);
  expect(code).toBe(0);
  const id = /mailroom release (\S+)/.exec(stdout)?.[1];
  expect(stdout).toMatch(
    new RegExp(`^Held "welcome" for ${to}, not delivered yet: release it with mailroom release`),
  );
  return id!;
}

describe('mailroom release and discard', () => {
  it('holds on send, then releases through SMTP once, even from two processes at the same time', async () => {
    const id = await hold('jane@example.com');
    expect(peer.transactions).toBe(0);
    const [a, b] = await Promise.all([mailroom(['release', id]), mailroom(['release', id])]);
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]?.envelope.rcptTo).toEqual(['jane@example.com']);
    expect((await fromMime(peer.messages[0]!.raw)).subject).toBe('Welcome to Acme, Jane!');
    const lines = [a.stdout, b.stdout].sort();
    const released = lines.filter((l) => l.startsWith(`Released ${id} to jane@example.com via smtp (<`));
    expect(released).toHaveLength(1);
    // The other process either saw the claim (busy: exit 1) or came after (already released: exit 0).
    expect(lines.find((l) => !released.includes(l))).toMatch(/already released, not sent again|under way/);

    const again = await mailroom(['release', id]);
    expect([again.code, again.stdout]).toEqual([0, `${id}: already released, not sent again\n`]);
    expect(peer.messages).toHaveLength(1);
  });

  it('a release the server defers (451) exits 1 and stays held; --all --to then sends it there', async () => {
    const id = await hold('bob@example.com');
    peer.failNext({ reply: 451, at: 'data', message: 'Try again later' });
    const failed = await mailroom(['release', id]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(new RegExp(`^${id}: not released, still held: SMTP 451 .*Try again later`));
    expect(peer.messages).toHaveLength(0);

    const all = await mailroom(['release', '--all', '--to', 'qa@acme.example']);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain(`Released ${id} to qa@acme.example via smtp`);
    expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([['qa@acme.example']]);
    // What the file says after both processes are gone.
    const record = await holdTransport({
      transport: memoryTransport(),
      dir: outbox,
      onFirstWrite: false,
    }).get(id);
    expect(record?.status).toBe('released');
    expect(record?.history.map((h) => [h.to, h.error?.status ?? h.result?.transport])).toEqual([
      [['bob@example.com'], 451],
      [['qa@acme.example'], 'smtp'],
    ]);
  });

  it('a release run with other variables than the send (no staging rule here) is refused, not sent another way', async () => {
    const staged = { MAILROOM_STAGING_ALLOW: '@example.com' };
    const { stdout } = await mailroom(
      ['send', 'welcome', '--to', 'kim@example.com', '--data', JSON.stringify({ username: 'Kim' })],
      staged,
    );
    const id = /mailroom release (\S+)/.exec(stdout)?.[1] ?? '';
    const elsewhere = await mailroom(['release', id]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stdout).toMatch(
      new RegExp(
        `^${id}: not released, still held: it was held to go through smtp .*staged .*this release would go through smtp`,
      ),
    );
    expect(peer.messages).toHaveLength(0);
    const here = await mailroom(['release', id], staged);
    expect([here.code, peer.messages.map((m) => m.envelope.rcptTo)]).toEqual([0, [['kim@example.com']]]);
  });

  it('discards: a discarded email is not released', async () => {
    const id = await hold('carol@example.com');
    expect(await mailroom(['discard', id])).toMatchObject({ code: 0, stdout: `Discarded ${id}\n` });
    const release = await mailroom(['release', id]);
    expect([release.code, release.stdout]).toEqual([1, `${id}: discarded, not sent\n`]);
    expect(peer.messages).toHaveLength(0);
  });

  it('refuses hostile ids and a typed address with a line break, naming them', async () => {
    const id = await hold('dana@example.com');
    const before = peer.transactions;
    const hostile = await mailroom(['release', id, '../x']);
    expect(hostile.code).toBe(1);
    expect(hostile.stderr).toMatch(/^mailroom: ids\[1\]: "\.\.\/x" is not a held email's id/);
    const crlf = await mailroom(['release', id, '--to', 'qa@acme.example\r\nBcc: all@evil.example']);
    expect(crlf.code).toBe(1);
    expect(crlf.stderr).toMatch(/^mailroom: --to: control characters and line breaks are not allowed/);
    expect(peer.transactions).toBe(before);
    expect(peer.messages).toHaveLength(0);
    await mailroom(['discard', id]);
  });

  it('says how to turn the hold on, and how to call it', async () => {
    const off = await mailroom(['release', '--all'], { MAILROOM_HOLD: undefined });
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(
      /^mailroom: MAILROOM_HOLD: is not set, so nothing is held \(mail goes to smtp\)/,
    );
    const neither = await mailroom(['release']);
    expect([neither.code, neither.stderr.split('\n')[0]]).toEqual([
      2,
      'mailroom: release needs the ids of held emails, or --all',
    ]);
    const both = await mailroom(['discard', 'x', '--all']);
    expect(both.code).toBe(2);
    const sandbox = await mailroom(['release', '--all'], { SMTP_HOST: undefined, SMTP_PORT: undefined });
    expect(sandbox.stderr).toMatch(
      /^mailroom: MAILROOM_HOLD: holds mail until it is released through a transport that delivers/,
    );
    const help = await mailroom(['release', '--help']);
    expect(help.stdout).toMatch(/^mailroom release <id…> \| --all \[--to <address>\]/);
  });
});

describe('mailroom preview with the hold', () => {
  /** A POST to the preview at `port` as a browser on `host` would send it (same origin, JSON). */
  const post = (port: number, host: string, path: string, body: object, token?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers: Record<string, string> = {
        host,
        origin: `http://${host}`,
        'content-type': 'application/json',
        ...(token ? { 'x-mailroom-token': token } : {}),
      };
      const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject).end(JSON.stringify(body));
    });

  it('lists held emails and releases one through SMTP; off loopback only with --token', async () => {
    const id = await hold('erin@example.com');
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(
        ([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|NODE_EXTRA_CA_CERTS)/.test(k),
      ),
    );
    const child = spawn(
      process.execPath,
      [cli, 'preview', '--port', '0', '--allowed-hosts', 'qa.lan', '--token', 'cli-token-1234'],
      { env: { ...inherited, ...env, NODE_ENV: 'development' } },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      let stdout = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (chunk) => {
          stdout += chunk;
          const found = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout);
          if (found) resolve(Number(found[1]));
        });
        child.once('exit', (code) => reject(new Error(`preview exited ${code}`)));
      });
      const listed = (await (await fetch(`http://127.0.0.1:${port}/api/hold`)).json()) as {
        enabled: boolean;
        sendsThrough: string;
        emails: { id: string; status: string }[];
      };
      expect(listed.enabled).toBe(true);
      expect(listed.sendsThrough).toMatch(/^hold .*released through smtp 127\.0\.0\.1:/);
      expect(listed.emails.find((e) => e.id === id)?.status).toBe('held');

      const lan = `qa.lan:${port}`;
      expect((await post(port, lan, '/api/hold/release', { ids: [id] })).status).toBe(403);
      expect(peer.messages).toHaveLength(0);
      const released = await post(port, lan, '/api/hold/release', { ids: [id] }, 'cli-token-1234');
      expect(released.status).toBe(200);
      expect(JSON.parse(released.body).results[0]).toMatchObject({ id, outcome: 'released' });
      expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([['erin@example.com']]);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
