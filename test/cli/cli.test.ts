import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The CLI is tested as built (`npm test` builds first), the way a user runs it.
const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
let outbox: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  outbox = await mkdtemp(join(tmpdir(), 'mailroom-cli-'));
});
afterAll(() => rm(outbox, { recursive: true, force: true }));

function run(...args: string[]) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME)/.test(k)),
  );
  const r = spawnSync(process.execPath, [cli, ...args], {
    env: { ...env, MAILROOM_SANDBOX_DIR: outbox, APP_NAME: 'Acme' },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const data = JSON.stringify({ username: 'Jane', verificationUrl: 'https://acme.example/verify?token=abc' });

describe('mailroom render', () => {
  it('prints subject, html and text as JSON', () => {
    const { code, stdout } = run('render', 'verification', '--data', data);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.subject).toBe('Verify your email address for Acme');
    expect(out.html).toContain('href="https://acme.example/verify?token=abc"');
    expect(out.text).toContain('https://acme.example/verify?token=abc');
  });

  it.each([
    ['html', /^<!DOCTYPE html>/],
    ['text', /^Acme\n\nHi Jane,/],
  ])('prints only the %s with --format', (format, pattern) => {
    const { code, stdout } = run('render', 'verification', '--data', data, '--format', format);
    expect(code).toBe(0);
    expect(stdout).toMatch(pattern);
  });

  it('lists the templates', () => {
    expect(run('templates').stdout.trim().split('\n')).toEqual(['password-reset', 'verification', 'welcome']);
  });
});

describe('mailroom send', () => {
  it('sends through the sandbox by default and prints where the files went', async () => {
    const { code, stdout } = run(
      'send',
      'welcome',
      '--to',
      'jane@example.com',
      '--data',
      '{"username":"Jane"}',
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Sent "welcome" to jane@example.com via sandbox \(<.+>\)/);
    const eml = stdout.match(/eml\s+(\S+\.eml)/)?.[1] ?? '';
    expect(eml.startsWith(outbox)).toBe(true);
    expect(await readFile(eml, 'utf8')).toMatch(/^Subject: Welcome to Acme, Jane!/m);
  });
});

describe('bad arguments', () => {
  it.each([
    [['frob'], 2, /unknown command "frob"/],
    [[], 2, /no command given/],
    [['render'], 2, /needs a template name/],
    [['render', 'verification', '--data', '{nope'], 2, /--data is not valid JSON/],
    [['render', 'verification', '--data', '[1]'], 2, /--data must be a JSON object/],
    [['render', 'verification', '--format', 'pdf'], 2, /--format must be json, html or text/],
    [['render', 'verification', '--bogus'], 2, /Unknown option '--bogus'/],
    [['render', '../../etc/passwd'], 1, /not a valid template name/],
    [['render', 'nope'], 1, /no template of that name/],
    [['render', 'verification', '--data', '{"username":"J"}'], 1, /verificationUrl: is required/],
    [['send', 'verification', '--data', data], 2, /needs --to/],
    [['send', 'verification', '--to', 'x@y', '--data', data], 1, /to\[0\]: "y" is not a valid domain/],
    [
      [
        'send',
        'verification',
        '--to',
        'a@example.com',
        '--data',
        '{"username":"J","verificationUrl":"javascript:alert(1)"}',
      ],
      1,
      /must be an http\(s\) URL/,
    ],
  ])('%j: one line on stderr, exit %i, no stack trace', async (args, status, pattern) => {
    const before = await readdir(outbox);
    const { code, stderr, stdout } = run(...(args as string[]));
    expect(code).toBe(status);
    expect(stdout).toBe('');
    expect(stderr.split('\n')[0]).toMatch(/^mailroom: /);
    expect(stderr).toMatch(pattern);
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(await readdir(outbox)).toEqual(before);
  });

  it('prints its version and help', () => {
    expect(run('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(run('--help').stdout).toContain('mailroom render <template>');
  });
});
