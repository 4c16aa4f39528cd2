/**
 * Runs the Nest fixture apps (test/fixtures/nestjs-app-{esm,cjs}) as child processes: each prints
 * `listening <port>` once it serves POST /signup, `startup failed: …` and exits 1 when start-up
 * fails, and `transport closed` when SIGTERM has closed the app.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { SmtpPeer } from '../helpers/smtp-peer.js';
import { repo } from '../package/run.js';

export const FIXTURES = {
  esm: join(repo, 'test', 'fixtures', 'nestjs-app-esm', 'main.mjs'),
  cjs: join(repo, 'test', 'fixtures', 'nestjs-app-cjs', 'main.cjs'),
} as const;

export interface App {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the port once the app listens, or rejects with its output when it exits first. */
  port: Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];

/** Starts `file` with node in `cwd`, with a clean environment plus `vars`. */
export function startApp(file: string, cwd: string, vars: Record<string, string>): App {
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1', ...vars };
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(APP_NAME|NODE_OPTIONS|NODE_PATH|FORCE_COLOR)$|^(MAILROOM|SMTP|MAILGUN)_/.test(key)) continue;
    env[key] ??= value;
  }
  const child = spawn(process.execPath, [file], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Ends every app still running (in afterEach). */
export function stopApps(): void {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill();
}

/** The variables that point the fixture's mail at an SMTP peer. */
export const smtpVars = (p: SmtpPeer, extra: Record<string, string> = {}) => ({
  MAILROOM_TRANSPORT: 'smtp',
  SMTP_HOST: p.host,
  SMTP_PORT: String(p.port),
  SMTP_TLS: 'none',
  SMTP_FROM_EMAIL: 'no-reply@acme.example',
  APP_NAME: 'Acme',
  ...extra,
});
