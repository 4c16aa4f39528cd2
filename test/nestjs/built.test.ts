/**
 * The built package in a real Nest application, once as ESM and once as CommonJS: fixture apps
 * (test/fixtures/nestjs-app-{esm,cjs}) run by plain node, resolving `mailroom-js/nestjs` through the
 * package's `exports`, mail configured from SMTP_* variables, sending to a real SMTP server.
 * Needs a fresh `dist/` (`npm run build`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';
import { repo } from '../package/run.js';

const FIXTURES = {
  esm: join(repo, 'test', 'fixtures', 'nestjs-app-esm', 'main.mjs'),
  cjs: join(repo, 'test', 'fixtures', 'nestjs-app-cjs', 'main.cjs'),
} as const;

interface App {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the port once the app listens, or rejects with its output when it exits first. */
  port: Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
let peer: SmtpPeer | undefined;

/** Starts a fixture app with a clean environment plus `vars`. */
function startApp(format: keyof typeof FIXTURES, vars: Record<string, string>): App {
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1', ...vars };
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(APP_NAME|NODE_OPTIONS|NODE_PATH|FORCE_COLOR)$|^(MAILROOM|SMTP|MAILGUN)_/.test(key)) continue;
    env[key] ??= value;
  }
  const child = spawn(process.execPath, [FIXTURES[format]], {
    cwd: repo,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    out += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const port = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`app exited (${code ?? signal}) before listening:\n${out}`)),
    );
  });
  return { child, output: () => out, port, exited };
}

const smtpVars = (p: SmtpPeer, extra: Record<string, string> = {}) => ({
  MAILROOM_TRANSPORT: 'smtp',
  SMTP_HOST: p.host,
  SMTP_PORT: String(p.port),
  SMTP_TLS: 'none',
  SMTP_FROM_EMAIL: 'no-reply@acme.example',
  APP_NAME: 'Acme',
  ...extra,
});

beforeAll(() => {
  if (!existsSync(join(repo, 'dist', 'nestjs', 'index.cjs'))) {
    throw new Error('dist/ is missing or stale (no dist/nestjs): run `npm run build` first.');
  }
});

afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill();
  await peer?.close();
  peer = undefined;
});

describe.each(['esm', 'cjs'] as const)('the %s build in a Nest app', (format) => {
  it('a POST /signup is delivered to the SMTP server; SIGTERM closes the transport', async () => {
    peer = await startSmtpPeer({ starttls: false });
    const app = startApp(format, smtpVars(peer));
    const port = await app.port;
    const response = await request(`http://127.0.0.1:${port}`)
      .post('/signup')
      .send({ email: 'jane@example.com', name: 'Jane' })
      .expect(202);
    expect(response.body.build).toBe(format);
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]!.envelope.rcptTo).toEqual(['jane@example.com']);
    const email = await fromMime(peer.messages[0]!.raw);
    expect(email.text).toContain('https://acme.example/verify?token=jane%40example.com');
    expect(email.messageId).toBe(response.body.messageId);
    app.child.kill('SIGTERM');
    await app.exited;
    expect(app.output()).toContain('transport closed');
  });

  it('a wrong SMTP password fails start-up with the EmailError (auth)', async () => {
    peer = await startSmtpPeer({ starttls: false, users: { app: 'right' } });
    const app = startApp(format, smtpVars(peer, { SMTP_USER: 'app', SMTP_PASSWORD: 'wrong' }));
    await expect(app.port).rejects.toThrow(/startup failed: EmailError auth mailroom=true/);
    expect((await app.exited).code).toBe(1);
    expect(peer.messages).toHaveLength(0);
  });
});
