/**
 * Runs the demo script the way `npm run demo` does, in a child process with a clean mail
 * configuration, and checks the sandbox folder it wrote to.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';

// The repo root: tsx finds tsconfig.json there, whose `paths` make `mailroom-js` the source.
const root = fileURLToPath(new URL('../..', import.meta.url));
let dir: string | undefined;

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs the script with no mail settings from this shell, only the sandbox folder. */
function runDemo(sandboxDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME$)/.test(name)),
  );
  env.MAILROOM_SANDBOX_DIR = sandboxDir;
  const args = ['--import', 'tsx', 'examples/node-script/send-all.ts'];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: root, env, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

it('writes every built-in email to the sandbox folder', { timeout: 40_000 }, async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailroom-demo-'));

  const { code, stdout, stderr } = await runDemo(dir);

  expect(code, stderr).toBe(0);
  expect(stdout).toContain(dir);
  const files = await readdir(dir);
  for (const ext of ['.eml', '.html', '.txt', '.json']) {
    expect(files.filter((f) => extname(f) === ext)).toHaveLength(8);
  }
  expect(files).toHaveLength(32); // and no half-written .tmp files
  const summaries = await Promise.all(
    files
      .filter((f) => f.endsWith('.json'))
      .map(async (f) => JSON.parse(await readFile(join(dir!, f), 'utf8'))),
  );
  expect(summaries.map((s) => s.subject).sort()).toEqual([
    'New sign-in to your Acme account',
    'Reminder: Finish setting up your profile',
    'Reset your Acme password',
    'Scheduled maintenance of Acme',
    'Shared workspaces are here',
    'Verify your email address for Acme',
    'Welcome to Acme, Jane!',
    'Your Acme order A-1042 is confirmed',
  ]);
  expect(
    summaries.every((s) => s.to[0] === 'jane@example.com' && s.from === 'Acme <no-reply@example.com>'),
  ).toBe(true);
});
