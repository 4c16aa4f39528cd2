/**
 * `MAILROOM_TRANSPORT=smtp` and `=mailgun` from the environment alone: the built CLI sends the
 * verification email to a real SMTP server and to a Mailgun-speaking server, configured by
 * nothing but environment variables (NODE_EXTRA_CA_CERTS is Node's own way to trust a private CA).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MailgunPeer, startMailgunPeer } from '../helpers/mailgun-peer.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
const data = JSON.stringify({ username: 'Jane', verificationUrl: 'https://acme.example/verify?token=abc' });
let dir: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  dir = await mkdtemp(join(tmpdir(), 'mailroom-env-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs the CLI with only these mailroom variables set (none inherited from this process). */
async function send(env: Record<string, string>, cwd?: string) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|NODE_EXTRA_CA_CERTS)/.test(k),
    ),
  );
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [cli, 'send', 'verification', '--to', 'jane@example.com', '--data', data],
      { env: { ...inherited, APP_NAME: 'Acme', ...env }, encoding: 'utf8', ...(cwd ? { cwd } : {}) },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('MAILROOM_TRANSPORT=smtp', () => {
  let peer: SmtpPeer;
  let env: Record<string, string>;
  beforeAll(async () => {
    peer = await startSmtpPeer({ users: { mailer: 's3cret-pass' } });
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, peer.cert);
    env = {
      MAILROOM_TRANSPORT: 'smtp',
      SMTP_HOST: peer.host,
      SMTP_PORT: String(peer.port),
      SMTP_USER: 'mailer',
      SMTP_PASSWORD: 's3cret-pass',
      SMTP_FROM_EMAIL: 'no-reply@acme.example',
      SMTP_FROM_NAME: 'Acme Accounts',
      NODE_EXTRA_CA_CERTS: ca,
    };
  });
  afterAll(() => peer.close());

  it('delivers over STARTTLS with AUTH, configured by the environment alone', async () => {
    const { code, stdout, stderr } = await send(env);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Sent "verification" to jane@example.com via smtp \(<.+@acme\.example>\)/);
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]).toMatchObject({ secure: true, user: 'mailer' });
    const got = await fromMime(peer.messages[0]!.raw);
    expect(got.fromName).toBe('Acme Accounts');
    expect(got.subject).toBe('Verify your email address for Acme');
    expect(got.text).toContain('https://acme.example/verify?token=abc');
  });

  it('delivers under NODE_ENV=production with no MAILROOM_TRANSPORT: the one provider configured', async () => {
    const { MAILROOM_TRANSPORT: _, ...withoutChoice } = env;
    const before = peer.messages.length;
    const cwd = await mkdtemp(join(dir, 'prod-'));
    const { code, stdout, stderr } = await send({ ...withoutChoice, NODE_ENV: 'production' }, cwd);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/via smtp/);
    expect(peer.messages).toHaveLength(before + 1);
    expect(existsSync(join(cwd, '.mailroom'))).toBe(false);
  });

  it('fails with one clear line and exit 1 on a wrong password, never printing it', async () => {
    const { code, stdout, stderr } = await send({ ...env, SMTP_PASSWORD: 'wrong-pass-123' });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^mailroom: SMTP 535 at 127\.0\.0\.1:\d+: the server refused our credentials/);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toContain('wrong-pass-123');
  });
});

describe('MAILROOM_TRANSPORT=mailgun', () => {
  let peer: MailgunPeer;
  let env: Record<string, string>;
  beforeAll(async () => {
    peer = await startMailgunPeer({ apiKey: 'key-live-0123456789', domains: ['mg.acme.example'] });
    env = {
      MAILROOM_TRANSPORT: 'mailgun',
      MAILGUN_API_KEY: 'key-live-0123456789',
      MAILGUN_DOMAIN: 'mg.acme.example',
      MAILGUN_FROM_ADDRESS: 'Acme <no-reply@mg.acme.example>',
      MAILGUN_BASE_URL: peer.url,
    };
  });
  afterAll(() => peer.close());

  it('delivers through the Messages API, configured by the environment alone', async () => {
    const { code, stdout, stderr } = await send(env);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Sent "verification" to jane@example.com via mailgun/);
    expect(peer.messages).toHaveLength(1);
    const fields = peer.messages[0]!.fields;
    expect(fields.from).toEqual(['Acme <no-reply@mg.acme.example>']);
    expect(fields.to).toEqual(['jane@example.com']);
    expect(fields.subject).toEqual(['Verify your email address for Acme']);
    expect(fields.html?.[0]).toContain('href="https://acme.example/verify?token=abc"');
  });

  it('fails with exit 1 on a wrong key, never printing either key', async () => {
    const { code, stderr } = await send({ ...env, MAILGUN_API_KEY: 'key-wrong-987654' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^mailroom: Mailgun 401/);
    expect(stderr).not.toMatch(/key-wrong-987654|key-live-0123456789/);
  });
});

describe('a deployment that configured no transport, or misspelt one', () => {
  it('refuses to capture silently under NODE_ENV=production: exit 1, nothing written', async () => {
    const cwd = await mkdtemp(join(dir, 'nothing-'));
    const { code, stdout, stderr } = await send({ NODE_ENV: 'production' }, cwd);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^mailroom: MAILROOM_TRANSPORT: is required under NODE_ENV=production/);
    expect(existsSync(join(cwd, '.mailroom'))).toBe(false);
  });

  it.each([
    [
      { MAIL_TRANSPORT: 'smtp' },
      /MAIL_TRANSPORT: is not a variable mailroom reads; did you mean MAILROOM_TRANSPORT\?/,
    ],
    [
      { MAILROOM_TRANSPORT: 'smpt' },
      /"smpt" is not one of sandbox, memory, smtp, mailgun, postmark, resend, sendgrid, sendmail, ses; did you mean smtp\?/,
    ],
    [
      // One-click links whose opt-outs no send would read: refused before anything is sent.
      {
        MAILROOM_TRANSPORT: 'sandbox',
        MAILROOM_UNSUBSCRIBE_URL: 'https://acme.example/unsubscribe',
        MAILROOM_UNSUBSCRIBE_SECRETS: 'cli-unsubscribe-secret-cli-unsubscribe-secret',
      },
      /preferences: is required with unsubscribe: .*MAILROOM_PREFERENCES_URL/,
    ],
  ])('names the mistake in %o and sends nothing', async (env, message) => {
    const cwd = await mkdtemp(join(dir, 'typo-'));
    const { code, stderr } = await send(env, cwd);
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
    expect(existsSync(join(cwd, '.mailroom'))).toBe(false);
  });
});
