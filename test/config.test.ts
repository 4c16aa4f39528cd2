import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configFromEnv } from '../src/config.js';
import { isConfigError } from '../src/errors.js';
import { isProduction } from '../src/index.js';
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

  it('reads the footer: company, postal address, support page or address', () => {
    const env = {
      APP_NAME: 'Acme',
      MAILROOM_COMPANY: 'Acme Inc.',
      MAILROOM_POSTAL_ADDRESS: '1 Market Street, San Francisco',
      MAILROOM_SUPPORT_URL: 'https://acme.example/help',
      MAILROOM_SUPPORT_EMAIL: 'help@acme.example',
    };
    expect(configFromEnv(env).brand).toEqual({
      company: 'Acme Inc.',
      address: '1 Market Street, San Francisco',
      supportUrl: 'https://acme.example/help',
      supportEmail: 'help@acme.example',
    });
    const service = new EmailService(configFromEnv({ ...env, MAILROOM_SUPPORT_URL: '' }));
    const { html } = service.render('welcome', { username: 'Jane' });
    expect(html).toContain('Acme Inc.');
    expect(html).toContain('1 Market Street, San Francisco');
    expect(html).toContain('mailto:help@acme.example');
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
      APP_NAME: 'Acme',
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
      /"carrier-pigeon" is not one of sandbox, memory, smtp, mailgun, postmark, resend, sendgrid, sendmail, ses$/,
    ],
    ['SMTP_HOST', { MAILROOM_TRANSPORT: 'smtp' }, /is required with MAILROOM_TRANSPORT=smtp$/],
    ['SMTP_FROM_EMAIL', { MAILROOM_TRANSPORT: 'smtp', SMTP_HOST: 'smtp.acme.example' }, /is required/],
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
    ['MAILGUN_API_KEY', { MAILROOM_TRANSPORT: 'mailgun' }, /is required with MAILROOM_TRANSPORT=mailgun$/],
    [
      'MAILGUN_FROM_ADDRESS',
      { MAILROOM_TRANSPORT: 'mailgun', MAILGUN_API_KEY: 'k', MAILGUN_DOMAIN: 'mg.acme.example' },
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
      /"asia" is not one of us, eu$/,
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
    ['APP_NAME', { APP_NAME: 'Acme\r\nBcc: evil@x.example' }, /control characters and line breaks .*U\+000D/],
    ['APP_NAME', { APP_NAME: 'Acme\u2028Bcc: evil@x.example' }, /U\+2028/],
    ['MAILGUN_FROM_NAME', { MAILGUN_FROM_NAME: 'Acme\u0085x' }, /U\+0085/],
    ['MAILROOM_STAGING_SUBJECT_PREFIX', { MAILROOM_STAGING_SUBJECT_PREFIX: '[QA]\nBcc: x' }, /U\+000A/],
    ['MAILGUN_DOMAIN', { MAILGUN_DOMAIN: 'not a domain' }, /domain name/],
    ['MAILGUN_FROM_ADDRESS', { MAILGUN_FROM_ADDRESS: 'x' }, /not an email address/],
    ['MAILROOM_PRIMARY_COLOR', { MAILROOM_PRIMARY_COLOR: 'red' }, /#1A2B3C/],
    ['MAILROOM_LOGO_URL', { MAILROOM_LOGO_URL: 'javascript:alert(1)' }, /http\(s\) URL/],
    ['MAILROOM_SUPPORT_URL', { MAILROOM_SUPPORT_URL: 'javascript:alert(1)' }, /http\(s\) URL/],
    ['MAILROOM_SUPPORT_EMAIL', { MAILROOM_SUPPORT_EMAIL: 'help' }, /not an email address/],
    ['MAILROOM_COMPANY', { MAILROOM_COMPANY: 'Acme\r\nBcc: x@example.com' }, /U\+000D/],
    ['MAILROOM_POSTAL_ADDRESS', { MAILROOM_POSTAL_ADDRESS: '1 Main St\n<b>' }, /U\+000A/],
    ['MAILROOM_STAGING_REDIRECT', { MAILROOM_STAGING_REDIRECT: 'nobody' }, /not an email address/],
    [
      'MAILROOM_STAGING_ALLOW',
      { MAILROOM_STAGING_ALLOW: '@acme.example, acme.example' },
      /entry 1 "acme\.example"/,
    ],
    ['MAILROOM_STAGING_ALLOW', { MAILROOM_STAGING_ALLOW: ',' }, /.+/],
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

describe.each([
  ['MAILROOM_SUPPRESSIONS_URL', 'suppressions', '"mailroom_suppressions"', 'MAILROOM_SUPPRESSION_URL'],
  ['MAILROOM_PREFERENCES_URL', 'preferences', '"mailroom_preferences"', 'MAILROOM_PREFERENCE_URL'],
] as const)('%s', (variable, option, table, lookalike) => {
  it('gives the service the PostgreSQL store it names, and none when unset', async () => {
    const options = configFromEnv({
      MAILROOM_TRANSPORT: 'memory',
      [variable]: 'postgres://app:pw@db.internal:5432/app?sslmode=require',
    });
    const store = options[option] as { table?: string; close?: () => Promise<void> };
    expect(store.table).toBe(table);
    await store.close?.();
    expect(configFromEnv({ MAILROOM_TRANSPORT: 'memory' })[option]).toBeUndefined();
    expect(configFromEnv({ MAILROOM_TRANSPORT: 'memory', [variable]: ' ' })[option]).toBeUndefined();
  });

  it('refuses anything but a postgres:// URL, naming the variable and never repeating it', () => {
    for (const value of ['mysql://app:hunter2@db/app', 'hunter2', 'redis://:hunter2@cache:6379']) {
      const err = configError({ MAILROOM_TRANSPORT: 'memory', [variable]: value });
      expect(err.option).toBe(variable);
      expect(JSON.stringify({ ...err, message: err.message })).not.toContain('hunter2');
    }
  });

  it('refuses a look-alike of it', () => {
    expect(configError({ MAILROOM_TRANSPORT: 'memory', [lookalike]: 'postgres://db/app' }).message).toContain(
      `did you mean ${variable}?`,
    );
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

describe('a safeguard set but blank', () => {
  // A deployment template whose value went missing (MAILROOM_STAGING_ALLOW=${QA_ALLOW}) must not
  // read as "no staging", "no hold", "no sandbox" or "unsigned".
  const smtp = {
    APP_NAME: 'Acme',
    SMTP_HOST: 'smtp.acme.example',
    SMTP_USER: 'mailer',
    SMTP_PASSWORD: 'p',
    SMTP_FROM_EMAIL: 'no-reply@acme.example',
  };
  it.each([
    ['MAILROOM_STAGING_ALLOW', /staging off: mail would reach every recipient/],
    ['MAILROOM_STAGING_REDIRECT', /staging off/],
    ['MAILROOM_HOLD', /hold nothing: mail would be sent at once/],
    ['SENDGRID_SANDBOX_MODE', /SendGrid's sandbox off/],
    ['SMTP_DKIM_DOMAIN', /unsigned/],
    ['SMTP_DKIM_SELECTOR', /unsigned/],
    ['SMTP_DKIM_PRIVATE_KEY', /unsigned/],
    ['SMTP_DKIM_PRIVATE_KEY_FILE', /unsigned/],
  ])('%s is refused, naming it and what it would do', (name, consequence) => {
    for (const blank of ['', '  ']) {
      const error = configError({ ...smtp, [name]: blank });
      expect(error.option).toBe(name);
      expect(error.message).toMatch(/is set but blank/);
      expect(error.message).toMatch(consequence);
    }
    // Unset, the same environment is fine: the variable is optional, only its blank is refused.
    expect(configFromEnv(smtp).transport.name).toBe('smtp');
  });

  it('leaves other blank variables as unset', () => {
    expect(configFromEnv({ ...smtp, MAILROOM_TRANSPORT: '', SMTP_PORT: ' ' }).transport.name).toBe('smtp');
  });
});

describe('.env.example', () => {
  it('lists every variable mailroom reads, and loads cleanly', async () => {
    const { readFile } = await import('node:fs/promises');
    const { ENV_VARIABLES } = await import('../src/config.js');
    const text = await readFile(new URL('../.env.example', import.meta.url), 'utf8');
    const lines = text.split('\n');
    const env = Object.fromEntries(
      lines
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    // Safeguards (staging, DKIM) are listed commented out: set but blank, they are refused.
    const commented = lines.filter((line) => /^# [A-Z_]+=$/.test(line)).map((line) => line.slice(2, -1));
    expect([...Object.keys(env), ...commented].sort()).toEqual(Object.keys(ENV_VARIABLES).sort());
    for (const name of commented) expect(configError({ ...env, [name]: ' ' }).option).toBe(name);
    expect(configFromEnv(env).transport.name).toBe('sandbox');
    // Copied to production as it is: nothing is quietly captured.
    expect(configError({ ...env, NODE_ENV: 'production' }).option).toBe('MAILROOM_TRANSPORT');
    // The SMTP block filled in: that is where mail goes, in production too.
    const filled = {
      ...env,
      NODE_ENV: 'production',
      SMTP_HOST: 'smtp.acme.example',
      SMTP_USER: 'mailer',
      SMTP_PASSWORD: 'p',
    };
    const smtp = configFromEnv(filled);
    expect(smtp.transport.name).toBe('smtp');
    await smtp.transport.close?.();
    // Half filled in (the password without the server) names what is missing.
    const { SMTP_HOST: _, ...noHost } = filled;
    expect(configError(noHost).option).toBe('SMTP_HOST');
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

describe('which transport the environment chooses', () => {
  const smtpEnv = {
    SMTP_HOST: 'smtp.acme.example',
    SMTP_USER: 'mailer',
    SMTP_PASSWORD: 'hunter2-secret',
    SMTP_FROM_EMAIL: 'no-reply@acme.example',
    APP_NAME: 'Acme',
  };
  const mailgunEnv = {
    MAILGUN_API_KEY: 'key-abc123',
    MAILGUN_DOMAIN: 'mg.acme.example',
    MAILGUN_FROM_ADDRESS: 'no-reply@mg.acme.example',
    APP_NAME: 'Acme',
  };
  const built: { transport: { close?: () => Promise<void> } }[] = [];
  const choose = (env: Record<string, string>) => {
    const options = configFromEnv(env);
    built.push(options);
    return options.transport.name;
  };
  afterEach(async () => {
    await Promise.all(built.splice(0).map((o) => o.transport.close?.()));
  });

  it('uses SMTP when only SMTP is configured, also under NODE_ENV=production (never the sandbox)', () => {
    expect(choose({ ...smtpEnv, NODE_ENV: 'production' })).toBe('smtp');
    expect(choose(smtpEnv)).toBe('smtp');
  });

  it('uses Mailgun when only Mailgun is configured', () => {
    expect(choose({ ...mailgunEnv, NODE_ENV: 'production' })).toBe('mailgun');
  });

  it('asks which when both SMTP and Mailgun are configured, naming a variable of each', () => {
    const err = configError({ ...smtpEnv, ...mailgunEnv });
    expect(err.option).toBe('MAILROOM_TRANSPORT');
    expect(err.message).toMatch(/both SMTP \(SMTP_HOST\) and Mailgun \(MAILGUN_API_KEY\)/);
    expect(choose({ ...smtpEnv, ...mailgunEnv, MAILROOM_TRANSPORT: 'mailgun' })).toBe('mailgun');
  });

  it('treats a partly configured provider as meant, and names what is missing', () => {
    const err = configError({ SMTP_USER: 'mailer', SMTP_PASSWORD: 'p', SMTP_FROM_EMAIL: 'a@acme.example' });
    expect(err.message).toBe(
      'SMTP_HOST: is required because SMTP_USER is set, so mail goes through smtp (set MAILROOM_TRANSPORT=sandbox to capture it instead)',
    );
    // The server before the sender: what is missing first is where mail would go.
    expect(configError({ SMTP_PORT: '587' }).option).toBe('SMTP_HOST');
    const mailgun = configError({ MAILGUN_DOMAIN: 'mg.acme.example' });
    expect(mailgun.option).toBe('MAILGUN_API_KEY');
    expect(mailgun.message).toMatch(/because MAILGUN_DOMAIN is set/);
  });

  it('refuses to fall back to the sandbox under NODE_ENV=production', () => {
    const err = configError({ NODE_ENV: 'production', APP_NAME: 'Acme' });
    expect(err.option).toBe('MAILROOM_TRANSPORT');
    expect(err.message).toMatch(/NODE_ENV=production.*MAILROOM_TRANSPORT=sandbox to capture on purpose/);
  });

  it.each(['Production', 'PRODUCTION', 'prod', '"production"', " 'production' "])(
    'treats NODE_ENV=%s as production: no silent sandbox',
    (value) => {
      expect(configError({ NODE_ENV: value }).option).toBe('MAILROOM_TRANSPORT');
    },
  );

  // A value mailroom does not know is held to production's rules, and the error says why: a
  // deployment that spells production its own way never captures its mail in silence.
  it.each(['live', 'prd', 'PRODUCTION-EU', ' "Live" '])(
    'holds NODE_ENV=%s to production: no silent sandbox, and says why',
    (value) => {
      const err = configError({ NODE_ENV: value });
      expect(err.option).toBe('MAILROOM_TRANSPORT');
      expect(err.message).toMatch(/mailroom does not know as development, test or staging/);
      expect(err.message).toContain(`NODE_ENV=${value.trim().replaceAll('"', '')} (`);
      expect(configError({ ...smtpEnv, NODE_ENV: value, MAILROOM_TRANSPORT: 'sandbox' }).message).toMatch(
        /is sandbox, but SMTP_HOST is set: under NODE_ENV=/,
      );
      expect(choose({ NODE_ENV: value, MAILROOM_TRANSPORT: 'sandbox' })).toBe('sandbox');
    },
  );

  it.each(['development', 'Dev', 'test', 'testing', 'staging', 'qa', 'uat', 'ci', 'local', '', '  '])(
    'falls back to the sandbox under NODE_ENV=%j (known not to be production)',
    (value) => {
      expect(choose({ NODE_ENV: value })).toBe('sandbox');
    },
  );

  // The rule apps guard a preview mount with: the one every refusal above follows.
  it('exports isProduction, reading NODE_ENV by default', () => {
    const saved = process.env.NODE_ENV;
    try {
      for (const [value, production] of [
        ['live', true],
        ['Production', true],
        ['staging', false],
        ['test', false],
      ] as const) {
        process.env.NODE_ENV = value;
        expect(isProduction(), value).toBe(production);
        expect(isProduction(value), value).toBe(production);
      }
      delete process.env.NODE_ENV;
      expect(isProduction()).toBe(false);
      expect(isProduction('prd')).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = saved;
    }
  });

  it('refuses a named sandbox beside a configured provider in production (the .env template left as is)', () => {
    const err = configError({ ...smtpEnv, NODE_ENV: 'production', MAILROOM_TRANSPORT: 'sandbox' });
    expect(err.option).toBe('MAILROOM_TRANSPORT');
    expect(err.message).toMatch(/is sandbox, but SMTP_HOST is set: under NODE_ENV=production/);
    expect(configError({ ...mailgunEnv, NODE_ENV: 'prod', MAILROOM_TRANSPORT: 'memory' }).message).toMatch(
      /is memory, but MAILGUN_API_KEY is set/,
    );
    // Outside production a developer may capture while keeping the provider's settings around.
    expect(choose({ ...smtpEnv, MAILROOM_TRANSPORT: 'sandbox' })).toBe('sandbox');
  });

  it('captures in production only when the sandbox or memory is asked for by name', () => {
    expect(choose({ NODE_ENV: 'production', MAILROOM_TRANSPORT: 'sandbox' })).toBe('sandbox');
    expect(choose({ NODE_ENV: 'production', MAILROOM_TRANSPORT: 'memory' })).toBe('memory');
    expect(choose({ NODE_ENV: 'development' })).toBe('sandbox');
  });

  it.each([
    ['SMTP', 'smtp'],
    ['smpt', 'smtp'],
    ['Mailgun', 'mailgun'],
    ['sandbx', 'sandbox'],
  ])('repeats MAILROOM_TRANSPORT=%s and suggests %s', (value, suggestion) => {
    const err = configError({ ...smtpEnv, MAILROOM_TRANSPORT: value });
    expect(err.option).toBe('MAILROOM_TRANSPORT');
    expect(err.message).toBe(
      `MAILROOM_TRANSPORT: "${value}" is not one of sandbox, memory, smtp, mailgun, postmark, resend, sendgrid, sendmail, ses; did you mean ${suggestion}?`,
    );
  });

  it('suggests a value for the other variables with fixed values', () => {
    expect(configError({ ...smtpEnv, SMTP_TLS: 'STARTTLS' }).message).toMatch(/did you mean starttls\?$/);
    expect(configError({ ...mailgunEnv, MAILGUN_REGION: 'EU' }).message).toMatch(/did you mean eu\?$/);
  });

  it.each([
    ['MAIL_TRANSPORT', 'smtp', 'MAILROOM_TRANSPORT'],
    ['MAILROOM_TRANSPRT', 'smtp', 'MAILROOM_TRANSPORT'],
    ['EMAIL_HOST', 'smtp.acme.example', 'SMTP_HOST'],
    ['MAIL_HOST', 'smtp.acme.example', 'SMTP_HOST'],
    ['SMTP_PASS', 'p', 'SMTP_PASSWORD'],
    ['SMTP_USERNAME', 'u', 'SMTP_USER'],
    ['SMTP_HOTS', 'smtp.acme.example', 'SMTP_HOST'],
    ['MAILGUN_KEY', 'k', 'MAILGUN_API_KEY'],
    ['MAILGUN_FROM', 'a@mg.acme.example', 'MAILGUN_FROM_ADDRESS'],
    ['MAILGUN_API_TOKEN', 'k', 'MAILGUN_API_KEY'],
    ['SMTP_PWD', 'p', 'SMTP_PASSWORD'],
    ['DKIM_DOMAIN', 'acme.example', 'SMTP_DKIM_DOMAIN'],
    ['DKIM_SELECTOR', 'mail', 'SMTP_DKIM_SELECTOR'],
    ['DKIM_PRIVATE_KEY', '-----BEGIN PRIVATE KEY-----', 'SMTP_DKIM_PRIVATE_KEY'],
    ['DKIM_PRIVATE_KEY_FILE', '/etc/dkim.pem', 'SMTP_DKIM_PRIVATE_KEY_FILE'],
  ])('refuses the look-alike %s instead of falling through to the sandbox', (name, value, suggestion) => {
    const err = configError({ [name]: value });
    expect(err.option).toBe(name);
    expect(err.message).toBe(`${name}: is not a variable mailroom reads; did you mean ${suggestion}?`);
  });

  it.each(['SMTP_URL', 'MAIL_URL', 'EMAIL_URL', 'MAILER_DSN'])(
    'refuses the connection URL %s, naming the variables to set instead',
    (name) => {
      const err = configError({ [name]: 'smtps://mailer:hunter2-secret@smtp.acme.example' });
      expect(err.message).toBe(
        `${name}: is not a variable mailroom reads; mailroom reads no connection URL: set SMTP_HOST, SMTP_PORT, SMTP_TLS, SMTP_USER and SMTP_PASSWORD`,
      );
    },
  );

  it('refuses an unknown MAILROOM_ variable, and leaves other software’s variables alone', () => {
    expect(configError({ MAILROOM_OUTBOX: '/tmp/x' }).message).toMatch(/is not a variable mailroom reads/);
    expect(choose({ MAILGUN_WEBHOOK_SIGNING_KEY: 'w', HOST: 'x', PORT: '3000', DATABASE_URL: 'x' })).toBe(
      'sandbox',
    );
    // Another component's MAIL_HOST next to mailroom's own SMTP_HOST is not a typo.
    expect(choose({ ...smtpEnv, MAIL_HOST: 'other.example' })).toBe('smtp');
  });

  it.each([
    ['SENDGRID_SANDBOX', 'did you mean SENDGRID_SANDBOX_MODE?'],
    ['SENDGRID_SANDBOX_ENABLED', 'did you mean SENDGRID_SANDBOX_MODE?'],
    ['STAGING_ALLOW', 'did you mean MAILROOM_STAGING_ALLOW?'],
    ['STAGING_REDIRECT', 'did you mean MAILROOM_STAGING_REDIRECT?'],
    ['MAILGUN_TEST_MODE', 'mailroom reads no Mailgun test-mode variable, so mail would be delivered'],
    ['MAILGUN_TESTMODE', 'mailroom reads no Mailgun test-mode variable, so mail would be delivered'],
  ])('refuses %s, a safety switch that, misspelt, would let mail be delivered for real', (name, said) => {
    const err = configError({ ...smtpEnv, [name]: 'true' });
    expect([err.option, err.message]).toEqual([name, expect.stringContaining(said)]);
  });

  it('never repeats a secret when refusing a look-alike', () => {
    const err = configError({ SMTP_PASS: 'hunter2-secret' });
    expect(err.message).not.toContain('hunter2');
  });
});

describe('the brand name with a real transport', () => {
  it('requires APP_NAME (or a sender name) with smtp and mailgun, never shipping "Mailroom"', async () => {
    const err = configError({
      MAILROOM_TRANSPORT: 'smtp',
      SMTP_HOST: 'smtp.acme.example',
      SMTP_FROM_EMAIL: 'no-reply@acme.example',
    });
    expect(err.option).toBe('APP_NAME');
    expect(err.message).toMatch(/SMTP_FROM_NAME/);
    const named = configFromEnv({
      SMTP_HOST: 'smtp.acme.example',
      SMTP_FROM_EMAIL: 'Acme <no-reply@acme.example>',
    });
    expect(new EmailService(named).app.name).toBe('Acme');
    await named.transport.close?.();
  });

  it('takes the Mailgun sender name from MAILGUN_FROM_NAME, not from SMTP_FROM_NAME', () => {
    const base = {
      MAILGUN_API_KEY: 'k',
      MAILGUN_DOMAIN: 'mg.acme.example',
      MAILGUN_FROM_ADDRESS: 'a@mg.acme.example',
    };
    expect(configFromEnv({ ...base, MAILGUN_FROM_NAME: 'Acme Accounts' }).from).toEqual({
      name: 'Acme Accounts',
      address: 'a@mg.acme.example',
    });
    const err = configError({ ...base, SMTP_FROM_NAME: 'Acme' });
    expect(err.option).toBe('APP_NAME');
    expect(err.message).toMatch(/MAILGUN_FROM_NAME/);
  });
});

describe('MAILROOM_HOLD', () => {
  const smtp = { SMTP_HOST: 'smtp.acme.example', SMTP_FROM_EMAIL: 'no-reply@acme.example', APP_NAME: 'Acme' };

  it('holds mail in the sandbox folder, releasing through the transport chosen as usual, staging included', () => {
    const { transport } = configFromEnv({
      ...smtp,
      MAILROOM_HOLD: 'true',
      MAILROOM_SANDBOX_DIR: '/tmp/held',
      MAILROOM_STAGING_ALLOW: '@acme.example',
      MAILROOM_PREVIEW_TOKEN: 'a-token-of-some-length',
    });
    expect(transport.name).toBe('hold');
    expect(transport.captures).toBe(true);
    expect((transport as { dir?: string }).dir).toBe('/tmp/held');
    expect(transport.describe?.()).toMatch(
      /^hold \/tmp\/held, released through smtp .*staged \(allowed: @acme\.example/,
    );
    expect(configFromEnv({ ...smtp, MAILROOM_HOLD: '1' }).transport.name).toBe('hold');
    expect(configFromEnv({ ...smtp, MAILROOM_HOLD: 'false' }).transport.name).toBe('smtp');
  });

  it('takes a hold built in code, in production too, and does not wrap it twice', async () => {
    const { configFromEnvWith } = await import('../src/config.js');
    const { holdTransport } = await import('../src/transports/hold.js');
    const { memoryTransport } = await import('../src/transports/memory.js');
    const { smtpTransport } = await import('../src/transports/smtp.js');
    const smtp = smtpTransport({ host: 'smtp.acme.example' });
    const hold = holdTransport({ transport: smtp, dir: '/tmp/held', onFirstWrite: false });
    const code = { source: 'mailroom.config.ts', transport: hold, from: true, appName: true };
    expect(configFromEnvWith(code, { NODE_ENV: 'production' }).transport).toBe(hold);
    expect(configFromEnvWith(code, { MAILROOM_HOLD: 'true' }).transport).toBe(hold);
    // A hold that releases into memory loses every release: refused in production.
    const lost = holdTransport({ transport: memoryTransport(), dir: '/tmp/held', onFirstWrite: false });
    expect(() => configFromEnvWith({ ...code, transport: lost }, { NODE_ENV: 'production' })).toThrow(
      /sets a hold that releases through memory, which keeps mail instead of delivering it/,
    );
    await smtp.close();
  });

  it('refuses a hold with nothing that delivers behind it, and a value it does not know', () => {
    const sandbox = configError({ MAILROOM_HOLD: 'true' });
    expect(sandbox.option).toBe('MAILROOM_HOLD');
    expect(sandbox.message).toMatch(/mail goes to sandbox: configure smtp or mailgun/);
    expect(configError({ ...smtp, MAILROOM_HOLD: 'memory', MAILROOM_TRANSPORT: 'memory' }).option).toBe(
      'MAILROOM_HOLD',
    );
    const yes = configError({ ...smtp, MAILROOM_HOLD: 'yes' });
    expect([yes.option, yes.message]).toEqual([
      'MAILROOM_HOLD',
      'MAILROOM_HOLD: "yes" is not one of true, false, 1, 0',
    ]);
  });
});

describe('Postmark, Resend and SendGrid from the environment', () => {
  const postmark = {
    POSTMARK_SERVER_TOKEN: 'pm-secret-token',
    POSTMARK_FROM_ADDRESS: 'Acme <no-reply@acme.example>',
  };
  const resend = {
    RESEND_API_KEY: 're_secret_key',
    RESEND_FROM_ADDRESS: 'no-reply@acme.example',
    APP_NAME: 'Acme',
  };
  const sendgrid = {
    SENDGRID_API_KEY: 'SG.secret-key',
    SENDGRID_FROM_ADDRESS: 'no-reply@acme.example',
    SENDGRID_FROM_NAME: 'Acme Mail',
  };
  const built: { transport: { close?: () => Promise<void> } }[] = [];
  const build = (env: Record<string, string>) => {
    const options = configFromEnv(env);
    built.push(options);
    return options;
  };
  afterEach(async () => {
    await Promise.all(built.splice(0).map((o) => o.transport.close?.()));
  });

  it.each([
    ['postmark', postmark, { name: 'Acme', address: 'no-reply@acme.example' }],
    ['resend', resend, { address: 'no-reply@acme.example' }],
    ['sendgrid', sendgrid, { name: 'Acme Mail', address: 'no-reply@acme.example' }],
  ])('uses %s when only it is configured, in production too, with its own sender', (name, env, from) => {
    const options = build({ ...env, NODE_ENV: 'production' });
    expect(options.transport.name).toBe(name);
    expect(options.from).toEqual(from);
    expect(build({ ...env, MAILROOM_TRANSPORT: name }).transport.name).toBe(name);
  });

  it('passes POSTMARK_MESSAGE_STREAM to the transport and refuses a malformed one by name', () => {
    expect(build({ ...postmark, POSTMARK_MESSAGE_STREAM: 'broadcast' }).transport.describe?.()).toBe(
      'postmark https://api.postmarkapp.com (stream broadcast)',
    );
    const err = configError({ ...postmark, POSTMARK_MESSAGE_STREAM: 'two words' });
    expect(err.option).toBe('POSTMARK_MESSAGE_STREAM');
  });

  it.each([
    [
      'POSTMARK_SERVER_TOKEN',
      { MAILROOM_TRANSPORT: 'postmark' },
      /is required with MAILROOM_TRANSPORT=postmark$/,
    ],
    [
      'POSTMARK_SERVER_TOKEN',
      { POSTMARK_MESSAGE_STREAM: 'outbound' },
      /because POSTMARK_MESSAGE_STREAM is set/,
    ],
    [
      'POSTMARK_FROM_ADDRESS',
      { POSTMARK_SERVER_TOKEN: 't' },
      /is required because POSTMARK_SERVER_TOKEN is set/,
    ],
    ['RESEND_API_KEY', { MAILROOM_TRANSPORT: 'resend' }, /is required with MAILROOM_TRANSPORT=resend$/],
    ['RESEND_FROM_ADDRESS', { RESEND_API_KEY: 're_x' }, /is required because RESEND_API_KEY is set/],
    ['SENDGRID_API_KEY', { MAILROOM_TRANSPORT: 'sendgrid' }, /is required with MAILROOM_TRANSPORT=sendgrid$/],
    ['SENDGRID_FROM_ADDRESS', { SENDGRID_API_KEY: 'SG.x' }, /is required because SENDGRID_API_KEY is set/],
    ['RESEND_FROM_ADDRESS', { RESEND_FROM_ADDRESS: 'nobody' }, /not an email address/],
    ['SENDGRID_FROM_NAME', { SENDGRID_FROM_NAME: 'Acme\r\nBcc: x' }, /U\+000D/],
    [
      'SENDGRID_API_KEY',
      { SENDGRID_API_KEY: 'SG.a b', SENDGRID_FROM_ADDRESS: 'a@acme.example', APP_NAME: 'A' },
      /spaces/,
    ],
  ])('names %s when it is missing or malformed', (option, env, pattern) => {
    const err = configError(env as Record<string, string>);
    expect([err.option, err.message.startsWith(`${option}: `)]).toEqual([option, true]);
    expect(err.message).toMatch(pattern);
  });

  it('asks which when two or more providers are configured, naming a variable of each', () => {
    const two = configError({ ...postmark, ...resend });
    expect(two.option).toBe('MAILROOM_TRANSPORT');
    expect(two.message).toBe(
      'MAILROOM_TRANSPORT: is required: both Postmark (POSTMARK_SERVER_TOKEN) and Resend (RESEND_API_KEY) are configured; set MAILROOM_TRANSPORT=postmark or resend',
    );
    const three = configError({ SMTP_HOST: 'smtp.acme.example', ...resend, ...sendgrid });
    expect(three.message).toMatch(
      /SMTP \(SMTP_HOST\), Resend \(RESEND_API_KEY\) and SendGrid \(SENDGRID_API_KEY\) are all configured; set MAILROOM_TRANSPORT=smtp or resend or sendgrid$/,
    );
    expect(build({ ...postmark, ...resend, MAILROOM_TRANSPORT: 'resend' }).transport.name).toBe('resend');
  });

  it('requires APP_NAME or the provider’s own sender name', () => {
    const err = configError({
      RESEND_API_KEY: 're_x',
      RESEND_FROM_ADDRESS: 'a@acme.example',
      SMTP_FROM_NAME: 'Acme',
    });
    expect(err.option).toBe('APP_NAME');
    expect(err.message).toMatch(/through resend.*\(RESEND_FROM_NAME\)$/);
  });

  it('refuses a captured sandbox beside one of them in production, and names them all when none is set', () => {
    expect(
      configError({ ...sendgrid, NODE_ENV: 'production', MAILROOM_TRANSPORT: 'sandbox' }).message,
    ).toMatch(/is sandbox, but SENDGRID_API_KEY is set/);
    expect(configError({ NODE_ENV: 'production' }).message).toMatch(
      /Configure smtp or mailgun or postmark or resend or sendgrid or sendmail or ses, or set MAILROOM_TRANSPORT=sandbox/,
    );
  });

  it('refuses a test mode that delivers nothing under production (SendGrid sandbox mode, Postmark test token), and says so outside it', () => {
    const sandboxed = configError({ ...sendgrid, NODE_ENV: 'production', SENDGRID_SANDBOX_MODE: 'true' });
    expect([sandboxed.option, sandboxed.message]).toEqual([
      'SENDGRID_SANDBOX_MODE',
      expect.stringMatching(
        /puts SendGrid in its test mode, which delivers nothing: under NODE_ENV=production/,
      ),
    ]);
    const token = { ...postmark, POSTMARK_SERVER_TOKEN: 'POSTMARK_API_TEST' };
    expect(configError({ ...token, NODE_ENV: 'production' }).option).toBe('POSTMARK_SERVER_TOKEN');
    // Outside production they are a choice, and the start-up line and `captures` say nothing is delivered.
    const testing = build({ ...sendgrid, SENDGRID_SANDBOX_MODE: '1' })
      .transport as import('../src/transport.js').Transport;
    expect([testing.captures, testing.describe?.()]).toEqual([
      true,
      expect.stringMatching(/sandbox mode: nothing delivered/),
    ]);
    const postmarkTest = build(token).transport as import('../src/transport.js').Transport;
    expect(postmarkTest.captures).toBe(true);
    expect((build(postmark).transport as import('../src/transport.js').Transport).captures).toBeUndefined();
  });

  it('refuses, under production, a provider from code in its test mode, even when MAILROOM_TRANSPORT names the provider', async () => {
    const { configFromEnvWith } = await import('../src/config.js');
    const { mailgunTransport } = await import('../src/transports/mailgun.js');
    const { postmarkTransport } = await import('../src/transports/postmark.js');
    for (const transport of [
      mailgunTransport({ apiKey: 'key', domain: 'mg.acme.example', testMode: true }),
      postmarkTransport({ serverToken: 'POSTMARK_API_TEST' }),
    ]) {
      const code = { source: 'mailroom.config.ts', transport, from: true, appName: true };
      for (const env of [
        { NODE_ENV: 'production' },
        { NODE_ENV: 'production', MAILROOM_TRANSPORT: transport.name },
      ]) {
        expect(() => configFromEnvWith(code, env), `${transport.name} ${JSON.stringify(env)}`).toThrow(
          /in its test mode, which delivers nothing: under NODE_ENV=production/,
        );
      }
      // Outside production a test mode is a choice.
      expect(configFromEnvWith(code, {}).transport).toBe(transport);
    }
  });

  it('refuses, under production, a transport from code that keeps some mail (a failover to memory)', async () => {
    const { configFromEnvWith } = await import('../src/config.js');
    const { failoverTransport } = await import('../src/transports/failover.js');
    const { memoryTransport } = await import('../src/transports/memory.js');
    const { sendgridTransport } = await import('../src/transports/sendgrid.js');
    const transport = failoverTransport([sendgridTransport({ apiKey: 'SG.key' }), memoryTransport()]);
    expect([transport.captures, transport.capturesSome]).toEqual([false, true]);
    const code = { source: 'mailroom.config.ts', transport, from: true, appName: true };
    let error: unknown;
    try {
      configFromEnvWith(code, { NODE_ENV: 'production' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ option: 'transport' });
    expect((error as Error).message).toMatch(
      /sets transport failover, which keeps some mail instead of delivering it/,
    );
    // Outside production (a test suite's failover to the outbox) it is allowed.
    expect(configFromEnvWith(code, {}).transport).toBe(transport);
  });

  it.each([
    ['POSTMARK_API_TOKEN', 'POSTMARK_SERVER_TOKEN'],
    ['POSTMARK_TOKEN', 'POSTMARK_SERVER_TOKEN'],
    ['RESEND_KEY', 'RESEND_API_KEY'],
    ['SENDGRID_KEY', 'SENDGRID_API_KEY'],
    ['SENDGRID_FROM_EMAIL', 'SENDGRID_FROM_ADDRESS'],
    ['RESEND_API_KYE', 'RESEND_API_KEY'],
  ])('refuses the look-alike %s, suggesting %s, without repeating its value', (name, suggestion) => {
    const err = configError({ [name]: 'hunter2-secret' });
    expect(err.message).toBe(`${name}: is not a variable mailroom reads; did you mean ${suggestion}?`);
  });

  it('sends through each provider the environment names, to its documented API (local peers)', async () => {
    const { startPostmarkPeer } = await import('./helpers/postmark-peer.js');
    const { startResendPeer } = await import('./helpers/resend-peer.js');
    const { startSendgridPeer } = await import('./helpers/sendgrid-peer.js');
    const peers = {
      postmark: await startPostmarkPeer({ serverToken: postmark.POSTMARK_SERVER_TOKEN }),
      resend: await startResendPeer({ apiKey: resend.RESEND_API_KEY }),
      sendgrid: await startSendgridPeer({ apiKey: sendgrid.SENDGRID_API_KEY }),
    };
    try {
      const envs = {
        postmark: {
          ...postmark,
          POSTMARK_BASE_URL: peers.postmark.url,
          POSTMARK_MESSAGE_STREAM: 'broadcast',
        },
        resend: { ...resend, RESEND_BASE_URL: peers.resend.url },
        sendgrid: { ...sendgrid, SENDGRID_BASE_URL: peers.sendgrid.url },
      };
      for (const [name, env] of Object.entries(envs)) {
        const mail = new EmailService(build({ ...env, NODE_ENV: 'production' }));
        const result = await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
        expect([result.transport, typeof result.providerMessageId]).toEqual([name, 'string']);
      }
      expect(peers.postmark.messages[0]?.body.MessageStream).toBe('broadcast');
      const got = [peers.postmark, peers.resend, peers.sendgrid].map((p) => p.received()[0]);
      expect(got.map((g) => [g?.from, g?.to, g?.subject !== ''])).toEqual([
        ['no-reply@acme.example', ['jane@example.com'], true],
        ['no-reply@acme.example', ['jane@example.com'], true],
        ['no-reply@acme.example', ['jane@example.com'], true],
      ]);
      // Sandbox mode from the environment: SendGrid checks the request and delivers nothing.
      const sandboxed = new EmailService(build({ ...envs.sendgrid, SENDGRID_SANDBOX_MODE: 'true' }));
      await sandboxed.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
      expect([peers.sendgrid.messages.length, peers.sendgrid.sandboxed.length]).toEqual([1, 1]);
    } finally {
      await Promise.all(Object.values(peers).map((p) => p.close()));
    }
  });

  it('names a provider’s base URL or sandbox flag when malformed, even when another transport is chosen', () => {
    expect(configError({ RESEND_BASE_URL: 'ftp://x' }).option).toBe('RESEND_BASE_URL');
    const http = configError({ ...sendgrid, SENDGRID_BASE_URL: 'http://sendgrid-proxy.example.com' });
    expect([http.option, http.message]).toEqual([
      'SENDGRID_BASE_URL',
      expect.stringMatching(/^SENDGRID_BASE_URL: must be https/),
    ]);
    expect(configError({ SENDGRID_SANDBOX_MODE: 'yes' }).message).toBe(
      'SENDGRID_SANDBOX_MODE: "yes" is not one of true, false, 1, 0',
    );
  });

  it('never puts a key in an error', () => {
    const err = configError({ ...postmark, ...resend, ...sendgrid });
    expect(err.message).not.toMatch(/pm-secret|re_secret|SG\.secret/);
  });
});

describe('sendmail from the environment', () => {
  const sendmail = { SENDMAIL_FROM_ADDRESS: 'Acme <no-reply@acme.example>' };

  it('uses sendmail when named, at /usr/sbin/sendmail unless SENDMAIL_PATH says otherwise', () => {
    const options = configFromEnv({ ...sendmail, MAILROOM_TRANSPORT: 'sendmail', NODE_ENV: 'production' });
    expect(options.transport.describe?.()).toBe('sendmail /usr/sbin/sendmail');
    expect(options.from).toEqual({ name: 'Acme', address: 'no-reply@acme.example' });
    const named = configFromEnv({
      ...sendmail,
      SENDMAIL_FROM_NAME: 'Acme Mail',
      MAILROOM_TRANSPORT: 'sendmail',
    });
    expect(named.from).toEqual({ name: 'Acme Mail', address: 'no-reply@acme.example' });
  });

  it('uses sendmail when only SENDMAIL_PATH is set, in production too', () => {
    const options = configFromEnv({ ...sendmail, SENDMAIL_PATH: '/usr/bin/msmtp', NODE_ENV: 'production' });
    expect(options.transport.describe?.()).toBe('sendmail /usr/bin/msmtp');
  });

  it.each([
    [
      'SENDMAIL_FROM_ADDRESS',
      { MAILROOM_TRANSPORT: 'sendmail' },
      /is required with MAILROOM_TRANSPORT=sendmail$/,
    ],
    [
      'SENDMAIL_FROM_ADDRESS',
      { SENDMAIL_PATH: '/usr/bin/msmtp' },
      /is required because SENDMAIL_PATH is set/,
    ],
    ['SENDMAIL_PATH', { ...sendmail, SENDMAIL_PATH: 'msmtp' }, /must be an absolute path/],
    ['SENDMAIL_FROM_ADDRESS', { SENDMAIL_FROM_ADDRESS: 'nobody' }, /not an email address/],
    [
      'APP_NAME',
      { MAILROOM_TRANSPORT: 'sendmail', SENDMAIL_FROM_ADDRESS: 'a@acme.example' },
      /\(SENDMAIL_FROM_NAME\)$/,
    ],
  ])('names %s when it is missing or malformed', (option, env, pattern) => {
    const err = configError(env as Record<string, string>);
    expect([err.option, err.message.startsWith(`${option}: `)]).toEqual([option, true]);
    expect(err.message).toMatch(pattern);
  });

  it('asks which when sendmail and another provider are configured', () => {
    const err = configError({
      ...sendmail,
      SENDMAIL_PATH: '/usr/sbin/sendmail',
      SMTP_HOST: 'smtp.acme.example',
    });
    expect(err.message).toBe(
      'MAILROOM_TRANSPORT: is required: both SMTP (SMTP_HOST) and sendmail (SENDMAIL_PATH) are configured; set MAILROOM_TRANSPORT=smtp or sendmail',
    );
  });

  it('suggests sendmail for a near miss, and SENDMAIL_PATH for a look-alike variable', () => {
    expect(configError({ MAILROOM_TRANSPORT: 'sendmial' }).message).toMatch(/did you mean sendmail\?$/);
    expect(configError({ SENDMAIL_PTH: '/usr/sbin/sendmail' }).message).toBe(
      'SENDMAIL_PTH: is not a variable mailroom reads; did you mean SENDMAIL_PATH?',
    );
  });

  it('sends through msmtp named by SENDMAIL_PATH, with msmtp reading its own configuration', async () => {
    const { startSmtpPeer } = await import('./helpers/smtp-peer.js');
    const { mkdtemp, writeFile, chmod } = await import('node:fs/promises');
    const peer = await startSmtpPeer({ starttls: false });
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-msmtp-'));
    try {
      // msmtp in sendmail mode reads $HOME/.msmtprc when given no -C.
      const rc = join(dir, '.msmtprc');
      await writeFile(rc, `account default\nhost 127.0.0.1\nport ${peer.port}\ntls off\nauth off\n`);
      await chmod(rc, 0o600);
      vi.stubEnv('HOME', dir);
      const mail = new EmailService(
        configFromEnv({ ...sendmail, SENDMAIL_PATH: '/usr/bin/msmtp', NODE_ENV: 'production' }),
      );
      const result = await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
      expect(result.transport).toBe('sendmail');
      expect(peer.messages.map((m) => m.envelope)).toEqual([
        { mailFrom: 'no-reply@acme.example', rcptTo: ['jane@example.com'] },
      ]);
    } finally {
      vi.unstubAllEnvs();
      await peer.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Amazon SES from the environment', () => {
  const ses = { SES_FROM_ADDRESS: 'Acme <no-reply@acme.example>', AWS_REGION: 'eu-west-1' };
  const built: { transport: { close?: () => Promise<void> } }[] = [];
  const build = (env: Record<string, string>) => {
    const options = configFromEnv(env);
    built.push(options);
    return options;
  };
  afterEach(async () => {
    vi.unstubAllEnvs();
    await Promise.all(built.splice(0).map((o) => o.transport.close?.()));
  });

  it('uses ses when one of its own variables is set, in production too, with its own sender', () => {
    const options = build({ ...ses, NODE_ENV: 'production' });
    expect(options.transport.name).toBe('ses');
    expect(options.from).toEqual({ name: 'Acme', address: 'no-reply@acme.example' });
    expect(options.transport.describe?.()).toBe('ses email.eu-west-1.amazonaws.com:443');
    const named = build({
      ...ses,
      MAILROOM_TRANSPORT: 'ses',
      AWS_REGION: '',
      AWS_DEFAULT_REGION: 'us-east-1',
      SES_CONFIGURATION_SET: 'transactional',
    });
    expect(named.transport.describe?.()).toBe(
      'ses email.us-east-1.amazonaws.com:443 (configuration set transactional)',
    );
  });

  it('is never chosen by the AWS variables every AWS client shares', () => {
    const env = {
      AWS_REGION: 'eu-west-1',
      AWS_DEFAULT_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'aws-secret-never-shown',
      AWS_PROFILE: 'prod',
      AWS_ENDPOINT_URL_SES: 'http://localhost:4566',
    };
    expect(build(env).transport.name).toBe('sandbox');
    expect(configError({ ...env, NODE_ENV: 'production' }).option).toBe('MAILROOM_TRANSPORT');
    // Beside a configured provider, they are not a second one.
    expect(
      build({ ...env, RESEND_API_KEY: 're_x', RESEND_FROM_ADDRESS: 'a@acme.example', APP_NAME: 'A' })
        .transport.name,
    ).toBe('resend');
  });

  it.each([
    [
      'AWS_REGION',
      { MAILROOM_TRANSPORT: 'ses', SES_FROM_ADDRESS: 'a@acme.example' },
      /is required with MAILROOM_TRANSPORT=ses \(or AWS_DEFAULT_REGION\)$/,
    ],
    [
      'SES_FROM_ADDRESS',
      { SES_CONFIGURATION_SET: 'transactional', AWS_REGION: 'eu-west-1' },
      /is required because SES_CONFIGURATION_SET is set/,
    ],
    ['AWS_REGION', { ...ses, AWS_REGION: 'Ireland' }, /must be an AWS region such as eu-west-1/],
    [
      'AWS_DEFAULT_REGION',
      { ...ses, AWS_REGION: '', AWS_DEFAULT_REGION: 'eu west 1' },
      /must be an AWS region/,
    ],
    ['SES_CONFIGURATION_SET', { ...ses, SES_CONFIGURATION_SET: 'two words' }, /configuration set name/],
    ['SES_ENDPOINT_URL', { ...ses, SES_ENDPOINT_URL: 'http://ses-proxy.example.com' }, /must be https/],
    ['SES_ENDPOINT_URL', { SES_ENDPOINT_URL: 'ftp://x' }, /must be an http\(s\) URL/],
  ])('names %s when it is missing or malformed', (option, env, pattern) => {
    const err = configError(env as Record<string, string>);
    expect([err.option, err.message.startsWith(`${option}: `)]).toEqual([option, true]);
    expect(err.message).toMatch(pattern);
  });

  it('asks which when SES and another provider are configured', () => {
    const err = configError({ ...ses, SENDGRID_API_KEY: 'SG.x', SENDGRID_FROM_ADDRESS: 'a@acme.example' });
    expect(err.message).toMatch(
      /both SendGrid \(SENDGRID_API_KEY\) and Amazon SES \(SES_FROM_ADDRESS\) are configured; set MAILROOM_TRANSPORT=sendgrid or ses$/,
    );
  });

  it('sends through SES with credentials from the AWS SDK’s own chain, signed for the region (local peer)', async () => {
    const { startSesPeer } = await import('./helpers/ses-peer.js');
    const credentials = {
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    };
    const peer = await startSesPeer(credentials);
    try {
      // The SDK reads the process environment itself, as it does in production.
      vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId);
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey);
      vi.stubEnv('AWS_SESSION_TOKEN', '');
      vi.stubEnv('AWS_PROFILE', '');
      const env = {
        ...ses,
        SES_ENDPOINT_URL: peer.url,
        SES_CONFIGURATION_SET: 'transactional',
        NODE_ENV: 'production',
      };
      const mail = new EmailService(build(env));
      await mail.verify();
      const result = await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
      expect([result.transport, result.providerMessageId]).toEqual(['ses', peer.messages[0]?.id]);
      expect(peer.messages[0]?.body.ConfigurationSetName).toBe('transactional');
      const [got] = await peer.received();
      expect([got?.from, got?.fromName, got?.to]).toEqual([
        'no-reply@acme.example',
        'Acme',
        ['jane@example.com'],
      ]);
      expect(peer.refusedSignatures).toEqual([]);
    } finally {
      await peer.close();
    }
  });
});
