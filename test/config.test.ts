import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configFromEnv } from '../src/config.js';
import { isConfigError } from '../src/errors.js';
import { EmailService } from '../src/service.js';

function configError(env: Record<string, string>) {
  try {
    configFromEnv(env);
  } catch (err) {
    if (isConfigError(err)) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configFromEnv', () => {
  it('defaults to the sandbox with a placeholder sender when nothing is set', () => {
    const options = configFromEnv({});
    expect(options.transport.name).toBe('sandbox');
    expect((options.transport as { dir?: string }).dir).toBe(join(process.cwd(), '.mailroom/outbox'));
    expect(options.from).toEqual({ address: 'no-reply@example.com' });
    expect(options.appName).toBeUndefined();
    const service = new EmailService(options);
    expect(service.app.name).toBe('Mailroom');
    expect(service.app.senderName).toBe('Mailroom');
  });

  it('reads the app name, sender, reply-to, sandbox folder and brand', () => {
    const options = configFromEnv({
      APP_NAME: 'Acme',
      SMTP_FROM_EMAIL: 'hello@acme.example',
      SMTP_FROM_NAME: 'Acme Team',
      MAILROOM_REPLY_TO: 'support@acme.example',
      MAILROOM_SANDBOX_DIR: '/tmp/acme-outbox',
      MAILROOM_PRIMARY_COLOR: '#FF5A00',
      MAILROOM_LOGO_URL: 'https://acme.example/logo.png',
    });
    expect(options.from).toEqual({ name: 'Acme Team', address: 'hello@acme.example' });
    expect(options.replyTo).toEqual({ address: 'support@acme.example' });
    expect((options.transport as { dir?: string }).dir).toBe('/tmp/acme-outbox');
    expect(options.brand).toEqual({
      logoUrl: 'https://acme.example/logo.png',
      colors: { primary: '#FF5A00' },
    });
    const service = new EmailService(options);
    expect(service.app.name).toBe('Acme');
  });

  it('names the sender after the app, also when the app name is set in code', () => {
    expect(new EmailService(configFromEnv({ APP_NAME: 'Acme' })).app.senderName).toBe('Acme');
    const service = new EmailService({ ...configFromEnv({}), appName: 'Zed' });
    expect(service.app).toMatchObject({ name: 'Zed', senderName: 'Zed' });
  });

  it('treats empty variables as unset', () => {
    expect(configFromEnv({ MAILROOM_TRANSPORT: '', APP_NAME: '  ' }).transport.name).toBe('sandbox');
  });

  it('selects the memory transport', () => {
    expect(configFromEnv({ MAILROOM_TRANSPORT: 'memory' }).transport.name).toBe('memory');
  });

  it('builds SMTP and Mailgun transports, each with its own sender', async () => {
    const smtp = configFromEnv({
      MAILROOM_TRANSPORT: 'smtp',
      SMTP_HOST: 'smtp.acme.example',
      SMTP_USER: 'u',
      SMTP_PASSWORD: 'p',
      SMTP_FROM_EMAIL: 'no-reply@acme.example',
      MAILGUN_FROM_ADDRESS: 'no-reply@mg.acme.example',
    });
    expect(smtp.transport.name).toBe('smtp');
    expect(smtp.from).toEqual({ address: 'no-reply@acme.example' });
    await smtp.transport.close?.();
    const mailgun = configFromEnv({
      MAILROOM_TRANSPORT: 'mailgun',
      MAILGUN_API_KEY: 'key-1',
      MAILGUN_DOMAIN: 'mg.acme.example',
      MAILGUN_REGION: 'eu',
      SMTP_FROM_EMAIL: 'no-reply@acme.example',
      MAILGUN_FROM_ADDRESS: 'Acme Accounts <no-reply@mg.acme.example>',
    });
    expect(mailgun.transport.name).toBe('mailgun');
    expect(mailgun.from).toEqual({ name: 'Acme Accounts', address: 'no-reply@mg.acme.example' });
  });

  it.each([
    [
      'MAILROOM_TRANSPORT',
      { MAILROOM_TRANSPORT: 'carrier-pigeon' },
      /must be one of sandbox, memory, smtp, mailgun/,
    ],
    ['SMTP_FROM_EMAIL', { MAILROOM_TRANSPORT: 'smtp' }, /is required with MAILROOM_TRANSPORT=smtp/],
    ['SMTP_HOST', { MAILROOM_TRANSPORT: 'smtp', SMTP_FROM_EMAIL: 'a@acme.example' }, /is required/],
    [
      'SMTP_TLS',
      { MAILROOM_TRANSPORT: 'smtp', SMTP_FROM_EMAIL: 'a@acme.example', SMTP_TLS: 'yes' },
      /starttls/,
    ],
    [
      'SMTP_PASSWORD',
      {
        MAILROOM_TRANSPORT: 'smtp',
        SMTP_FROM_EMAIL: 'a@acme.example',
        SMTP_HOST: 'h.example',
        SMTP_USER: 'u',
      },
      /go together/,
    ],
    [
      'SMTP_TLS',
      {
        MAILROOM_TRANSPORT: 'smtp',
        SMTP_FROM_EMAIL: 'a@acme.example',
        SMTP_HOST: 'smtp.acme.example',
        SMTP_TLS: 'none',
        SMTP_USER: 'u',
        SMTP_PASSWORD: 'p',
      },
      /never sent in plain text/,
    ],
    [
      'MAILGUN_FROM_ADDRESS',
      { MAILROOM_TRANSPORT: 'mailgun' },
      /is required with MAILROOM_TRANSPORT=mailgun/,
    ],
    [
      'MAILGUN_API_KEY',
      { MAILROOM_TRANSPORT: 'mailgun', MAILGUN_FROM_ADDRESS: 'a@mg.acme.example' },
      /is required/,
    ],
    [
      'MAILGUN_DOMAIN',
      { MAILROOM_TRANSPORT: 'mailgun', MAILGUN_FROM_ADDRESS: 'a@mg.acme.example', MAILGUN_API_KEY: 'k' },
      /is required/,
    ],
    [
      'MAILGUN_REGION',
      { MAILROOM_TRANSPORT: 'mailgun', MAILGUN_FROM_ADDRESS: 'a@x.example', MAILGUN_REGION: 'asia' },
      /us or eu/,
    ],
    [
      'MAILGUN_BASE_URL',
      { MAILROOM_TRANSPORT: 'mailgun', MAILGUN_FROM_ADDRESS: 'a@x.example', MAILGUN_BASE_URL: 'ftp://x' },
      /http\(s\) URL/,
    ],
    ['SMTP_PORT', { SMTP_PORT: 'twenty-five' }, /port number/],
    ['SMTP_PORT', { SMTP_PORT: '70000' }, /port number/],
    ['SMTP_FROM_EMAIL', { SMTP_FROM_EMAIL: 'not-an-address' }, /not an email address/],
    ['SMTP_FROM_EMAIL', { SMTP_FROM_EMAIL: 'a@example.com\r\nBcc: x@example.com' }, /line breaks/],
    ['SMTP_FROM_NAME', { SMTP_FROM_NAME: 'Acme\u0000' }, /control characters/],
    ['MAILGUN_DOMAIN', { MAILGUN_DOMAIN: 'not a domain' }, /domain name/],
    ['MAILGUN_FROM_ADDRESS', { MAILGUN_FROM_ADDRESS: 'x' }, /not an email address/],
    ['MAILROOM_PRIMARY_COLOR', { MAILROOM_PRIMARY_COLOR: 'red' }, /#1A2B3C/],
    ['MAILROOM_LOGO_URL', { MAILROOM_LOGO_URL: 'javascript:alert(1)' }, /http\(s\) URL/],
    ['MAILROOM_STAGING_REDIRECT', { MAILROOM_STAGING_REDIRECT: 'nobody' }, /not an email address/],
  ])('names %s when it is malformed', (option, env, pattern) => {
    const err = configError(env as Record<string, string>);
    expect(err.option).toBe(option);
    expect(err.message).toMatch(pattern);
    expect(err.message.startsWith(`${option}: `)).toBe(true);
  });

  it('never puts a secret in an error', () => {
    const err = configError({
      SMTP_PASSWORD: 'hunter2-secret',
      MAILGUN_API_KEY: 'key-abc123',
      SMTP_PORT: 'x',
    });
    expect(JSON.stringify({ ...err, message: err.message })).not.toMatch(/hunter2|key-abc123/);
  });

  it('wraps the transport for staging: allowlist, redirect and subject prefix', async () => {
    const options = configFromEnv({
      MAILROOM_TRANSPORT: 'memory',
      MAILROOM_STAGING_ALLOW: '@acme.example, qa@example.com',
      MAILROOM_STAGING_REDIRECT: 'qa-inbox@acme.example',
      MAILROOM_STAGING_SUBJECT_PREFIX: '[QA]',
    });
    const service = new EmailService(options);
    const result = await service.sendWelcomeEmail({ to: 'customer@example.org', username: 'C' });
    expect(result.accepted).toEqual(['qa-inbox@acme.example']);
  });
});

describe('the default service without configure()', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    vi.unstubAllEnvs();
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it('is built from the environment on first use and captures mail in the sandbox', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-default-'));
    dirs.push(dir);
    vi.stubEnv('MAILROOM_TRANSPORT', '');
    vi.stubEnv('MAILROOM_SANDBOX_DIR', dir);
    vi.stubEnv('APP_NAME', 'Lazy App');
    vi.resetModules();
    const { sendWelcomeEmail } = await import('../src/default.js');
    const result = await sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
    expect(result.transport).toBe('sandbox');
    expect((await readdir(dir)).filter((f) => f.endsWith('.eml'))).toHaveLength(1);
  });
});

describe('.env.example', () => {
  it('lists every variable mailroom reads, and loads cleanly', async () => {
    const { readFile } = await import('node:fs/promises');
    const { ENV_VARIABLES } = await import('../src/config.js');
    const text = await readFile(new URL('../.env.example', import.meta.url), 'utf8');
    const env = Object.fromEntries(
      text
        .split('\n')
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(Object.keys(env).sort()).toEqual(Object.keys(ENV_VARIABLES).sort());
    expect(configFromEnv(env).transport.name).toBe('sandbox');
  });
});

describe('README', () => {
  it('documents every environment variable', async () => {
    const { readFile } = await import('node:fs/promises');
    const { ENV_VARIABLES } = await import('../src/config.js');
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const name of Object.keys(ENV_VARIABLES)) expect(readme).toContain(`\`${name}\``);
  });
});
