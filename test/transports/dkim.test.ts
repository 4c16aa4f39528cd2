/**
 * DKIM on the SMTP transport: keys it cannot sign with are refused when the transport is built,
 * a signing failure fails the send, and what it signs passes two independent verifiers (mailauth
 * and dkimpy) after a real SMTP server (smtp-server on loopback) received it.
 */
import crypto, { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { configFromEnv } from '../../src/config.js';
import { type ConfigError, type EmailError, isConfigError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { type SmtpTransportOptions, smtpTransport } from '../../src/transports/smtp.js';
import {
  DKIMPY,
  dkimpyVerdicts,
  mailauthVerdicts,
  rsaKey,
  SKIP_DKIMPY,
  type TestDkimKey,
} from '../helpers/dkim-verify.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const pem = (type: 'ed25519' | 'ec' | 'rsa', extra: object = {}) =>
  (generateKeyPairSync as (t: string, o: object) => crypto.KeyPairKeyObjectResult)(type, extra)
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();

const KEY_2048 = rsaKey(2048, 'pkcs8', 'acme.example', 'mail2026');
const dkim = (extra: Partial<Record<keyof TestDkimKey, unknown>> = {}) =>
  ({
    domainName: KEY_2048.domainName,
    keySelector: KEY_2048.keySelector,
    privateKey: KEY_2048.privateKey,
    ...extra,
  }) as SmtpTransportOptions['dkim'];

function configError(build: () => unknown): ConfigError {
  try {
    build();
  } catch (err) {
    if (isConfigError(err)) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
const build = (options: SmtpTransportOptions['dkim']) => () =>
  smtpTransport({ host: '127.0.0.1', tls: 'none', dkim: options });

describe('a DKIM key it cannot sign with is refused when the transport is built', () => {
  it.each([
    ['unset (process.env.DKIM_KEY! when the variable is missing)', undefined, /is required/],
    ['empty', '', /is required/],
    ['not PEM', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', /not a PEM private key/],
    ['a truncated PEM', KEY_2048.privateKey.slice(0, 300), /not a PEM private key/],
    [
      'a public key',
      generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }),
      /not a PEM private key/,
    ],
    [
      'encrypted',
      generateKeyPairSync('rsa', { modulusLength: 1024 })
        .privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
        .toString(),
      /encrypted/,
    ],
    ['ed25519 (RFC 8463), refused by name', pem('ed25519'), /ed25519 .*not supported.*RSA key/],
    ['an EC key', pem('ec', { namedCurve: 'P-256' }), /ec key; DKIM needs an RSA key/],
    ['a 512-bit RSA key (RFC 8301)', pem('rsa', { modulusLength: 512 }), /512-bit .*at least 1024/],
    [
      'a public KeyObject',
      generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
      /is a public KeyObject; DKIM signs with the private key \(createPrivateKey, not createPublicKey\)/,
    ],
    ['a secret KeyObject', crypto.createSecretKey(Buffer.alloc(32)), /is a secret KeyObject/],
    ['an ed25519 KeyObject', generateKeyPairSync('ed25519').privateKey, /ed25519 .*not supported.*RSA key/],
    [
      'DER bytes in a Buffer',
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'der' }),
      /not a PEM private key \(no -----BEGIN line\); expected an RSA private key as PEM text, a Buffer of PEM bytes or a private KeyObject/,
    ],
    ['an empty Buffer', Buffer.alloc(0), /is empty/],
    [
      'a number',
      42,
      /must be an RSA private key as PEM text, a Buffer of PEM bytes or a private KeyObject, not a number/,
    ],
    ['an options object', { key: KEY_2048.privateKey }, /, not a plain object$/],
  ])('%s: ConfigError naming dkim.privateKey', (_title, privateKey, problem) => {
    const error = configError(build(dkim({ privateKey })));
    expect(error.option).toBe('dkim.privateKey');
    expect(error.message).toMatch(problem);
    // The key itself never ends up in the message.
    if (typeof privateKey === 'string' && privateKey.length > 40) {
      expect(error.message).not.toContain(privateKey.slice(30, 60));
    }
  });

  it.each([undefined, '', 'acme', 'acme..example', 'a b.example', '-acme.example', 'acme.example;x=y'])(
    'domain %j: ConfigError naming dkim.domainName',
    (domainName) => {
      expect(configError(build(dkim({ domainName }))).option).toBe('dkim.domainName');
    },
  );

  it.each([undefined, '', 'mail;t=y', 'mail selector', '-mail', 'mail_2026', 'mail.'])(
    'selector %j: ConfigError naming dkim.keySelector',
    (keySelector) => {
      expect(configError(build(dkim({ keySelector }))).option).toBe('dkim.keySelector');
    },
  );

  it('accepts PKCS#1 and PKCS#8 RSA keys, dotted selectors and international domains', () => {
    expect(build(dkim({ privateKey: rsaKey(1024, 'pkcs1').privateKey }))).not.toThrow();
    expect(build(dkim({ keySelector: 's1.eu' }))).not.toThrow();
    expect(build(dkim({ domainName: 'bücher.example' }))).not.toThrow();
  });
});

describe('DKIM-signed mail through a real SMTP server', () => {
  let peer: SmtpPeer;
  const keys = [
    rsaKey(1024, 'pkcs8'),
    rsaKey(2048, 'pkcs1'),
    KEY_2048,
    rsaKey(4096, 'pkcs8', 'mail.acme.example', 'eu.s4096'),
  ];
  beforeAll(async () => {
    peer = await startSmtpPeer({ starttls: false });
  });
  afterAll(() => peer.close());
  afterEach(() => {
    peer.messages.length = 0;
    vi.restoreAllMocks();
  });

  const bodies = {
    'a bare CR': { text: 'a\rb', html: '<p>a\rb</p>' },
    'a bare CR from template data (a username)': {
      text: 'Hello Jane\rDoe,\n',
      html: '<p>Hello Jane\rDoe</p>',
    },
    'bare LFs': { text: 'one\ntwo\n\nthree\n', html: '<p>one</p>\n<p>two</p>\n' },
    CRLFs: { text: 'one\r\ntwo\r\n', html: '<p>one</p>\r\n' },
    'non-ASCII': { text: 'Grüße, 你好, مرحبا 🎉\r', html: '<p>Grüße · 你好 · مرحبا · 🎉</p>' },
    'long lines': { text: `${'x'.repeat(2000)}\n${'word '.repeat(400)}`, html: `<p>${'y'.repeat(3000)}</p>` },
    'trailing blank lines and spaces': { text: 'end   \r\n\r\n\n\r', html: '<p>end</p> \t\n\n' },
    attachments: {
      text: 'see attached\r',
      attachments: [
        { filename: 'data.bin', content: crypto.randomBytes(5000) },
        { filename: 'notes.txt', content: 'line\rline\nline\r\n' },
        { filename: 'résumé.txt', content: 'ça va\n' },
      ],
    },
  };

  async function sendAll(key: TestDkimKey) {
    // Without a domain of our own in the From address, the signing domain is still the key's.
    const transport = smtpTransport({
      host: peer.host,
      port: peer.port,
      tls: 'none',
      dkim: { domainName: key.domainName, keySelector: key.keySelector, privateKey: key.privateKey },
    });
    const mail = new EmailService({ transport, from: 'Acme <no-reply@acme.example>' });
    for (const [subject, body] of Object.entries(bodies)) {
      await mail.send({ to: 'jane@example.com', bcc: 'audit@acme.example', subject, ...body });
    }
    await transport.close();
    return peer.messages.map((m) => m.raw);
  }

  it.each(keys.map((key) => [key.keySelector, key] as const))(
    'key %s: every body passes mailauth',
    async (_name, key) => {
      const received = await sendAll(key);
      expect(received).toHaveLength(Object.keys(bodies).length);
      for (const raw of received) {
        expect(await mailauthVerdicts(raw, key)).toEqual([[key.domainName, 'pass']]);
      }
    },
  );

  it.skipIf(SKIP_DKIMPY).each(keys.map((key) => [key.keySelector, key] as const))(
    `key %s: every body passes dkimpy ${DKIMPY.available ? '' : `(${DKIMPY.reason})`}`,
    async (_name, key) => {
      const received = await sendAll(key);
      expect(dkimpyVerdicts(received, key)).toEqual(received.map(() => 'pass'));
    },
  );

  it('the verifiers are not rubber stamps: a changed body byte fails both', async () => {
    const [raw] = await sendAll(KEY_2048);
    const tampered = Buffer.from(raw!.toString('latin1').replace('a\r\nb', 'a\r\nc'), 'latin1');
    expect(tampered.equals(raw!)).toBe(false);
    // mailauth calls a body hash mismatch neutral (RFC 6376 6.1: treated as no signature).
    expect(await mailauthVerdicts(tampered, KEY_2048)).toEqual([['acme.example', 'neutral']]);
    if (!SKIP_DKIMPY)
      expect(dkimpyVerdicts([tampered, raw!], KEY_2048)).toEqual([expect.stringMatching(/^fail/), 'pass']);
  });

  it('signs with a key read as a Buffer (readFileSync) or given as a KeyObject', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-dkim-'));
    try {
      const file = join(dir, 'dkim.pem');
      await writeFile(file, KEY_2048.privateKey);
      const forms = [readFileSync(file), crypto.createPrivateKey(KEY_2048.privateKey)];
      for (const privateKey of forms) {
        const transport = smtpTransport({
          host: peer.host,
          port: peer.port,
          tls: 'none',
          dkim: dkim({ privateKey }),
        });
        const mail = new EmailService({ transport, from: 'Acme <no-reply@acme.example>' });
        await mail.send({ to: 'jane@example.com', subject: 'Key forms', text: 'signed' });
        await transport.close();
      }
      expect(peer.messages).toHaveLength(forms.length);
      for (const { raw } of peer.messages) {
        expect(await mailauthVerdicts(raw, KEY_2048)).toEqual([[KEY_2048.domainName, 'pass']]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a bare CR arrives as a line break the signature covers, in the text part', async () => {
    const [raw] = await sendAll(KEY_2048);
    expect(raw!.toString('latin1')).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
    expect((await fromMime(raw!)).text).toBe('a\nb');
  });

  it('a signing failure at send time fails the send as systemic; nothing goes out unsigned', async () => {
    const transport = smtpTransport({ host: peer.host, port: peer.port, tls: 'none', dkim: dkim() });
    // nodemailer's signer catches this and leaves the DKIM-Signature header out.
    vi.spyOn(crypto, 'createSign').mockImplementation(
      () =>
        ({
          update() {
            return this;
          },
          sign() {
            throw new Error('signing is broken');
          },
        }) as never,
    );
    const transactions = peer.transactions;
    const mail = new EmailService({
      transport,
      from: 'no-reply@acme.example',
      appName: 'Acme',
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    });
    let attempts = 0;
    mail.on('failed', (e) => {
      attempts = e.attempts;
    });
    const error = (await mail
      .send({ to: 'jane@example.com', subject: 'Hi', text: 'Hi' })
      .catch((e: unknown) => e)) as EmailError;
    await transport.close();
    expect([error.name, error.code, error.failure, error.retryable]).toEqual([
      'EmailError',
      'config',
      'systemic',
      false,
    ]);
    expect(error.message).toMatch(/DKIM signing failed \(d=acme\.example, s=mail2026\).*not sent unsigned/);
    expect(attempts).toBe(1);
    expect(peer.transactions).toBe(transactions);
    expect(peer.messages).toEqual([]);
  });
});

describe('DKIM from the environment', () => {
  let peer: SmtpPeer;
  let dir: string;
  beforeAll(async () => {
    peer = await startSmtpPeer({ starttls: false });
    dir = await mkdtemp(join(tmpdir(), 'mailroom-dkim-'));
  });
  afterAll(async () => {
    await peer.close();
    await rm(dir, { recursive: true, force: true });
  });
  const base = () => ({
    MAILROOM_TRANSPORT: 'smtp',
    SMTP_HOST: peer.host,
    SMTP_PORT: String(peer.port),
    SMTP_TLS: 'none',
    SMTP_FROM_EMAIL: 'no-reply@acme.example',
    APP_NAME: 'Acme',
  });
  const full = {
    SMTP_DKIM_DOMAIN: KEY_2048.domainName,
    SMTP_DKIM_SELECTOR: KEY_2048.keySelector,
    // One line with literal \n, as env files and CI secrets often hold a PEM.
    SMTP_DKIM_PRIVATE_KEY: KEY_2048.privateKey.trim().replace(/\n/g, '\\n'),
  };
  const sendWith = async (env: Record<string, string>) => {
    const options = configFromEnv(env);
    const before = peer.messages.length;
    await new EmailService(options).send({ to: 'jane@example.com', subject: 'Hi', text: 'a\rb' });
    await options.transport.close?.();
    return peer.messages[before]!.raw;
  };

  it('signs with SMTP_DKIM_PRIVATE_KEY (literal \\n allowed), and mailauth passes it', async () => {
    const raw = await sendWith({ ...base(), ...full });
    expect(await mailauthVerdicts(raw, KEY_2048)).toEqual([['acme.example', 'pass']]);
  });

  it('signs with SMTP_DKIM_PRIVATE_KEY_FILE', async () => {
    const file = join(dir, 'dkim.pem');
    await writeFile(file, KEY_2048.privateKey);
    const { SMTP_DKIM_PRIVATE_KEY: _inline, ...rest } = full;
    const raw = await sendWith({ ...base(), ...rest, SMTP_DKIM_PRIVATE_KEY_FILE: file });
    expect(await mailauthVerdicts(raw, KEY_2048)).toEqual([['acme.example', 'pass']]);
  });

  it('sends unsigned only when no SMTP_DKIM_* variable is set', async () => {
    const raw = await sendWith(base());
    expect(raw.toString()).not.toMatch(/^DKIM-Signature:/im);
  });

  it.each(['SMTP_DKIM_DOMAIN', 'SMTP_DKIM_SELECTOR', 'SMTP_DKIM_PRIVATE_KEY'])(
    'a partial set is a ConfigError naming the missing %s, and a blank one is refused too',
    (name) => {
      const env: Record<string, string> = { ...base(), ...full };
      delete env[name];
      const error = configError(() => configFromEnv(env));
      expect([error.option, error.message]).toEqual([name, expect.stringMatching(/is required/)]);
      // Blank, as a template whose value went missing leaves it: never read as "unsigned".
      for (const blank of ['', ' ']) {
        const refused = configError(() => configFromEnv({ ...base(), ...full, [name]: blank }));
        expect([refused.option, refused.message]).toEqual([name, expect.stringMatching(/blank.*unsigned/)]);
      }
    },
  );

  it.each([
    ['SMTP_DKIM_PRIVATE_KEY', { SMTP_DKIM_PRIVATE_KEY: 'not a key' }, /not a PEM/],
    ['SMTP_DKIM_PRIVATE_KEY', { SMTP_DKIM_PRIVATE_KEY: pem('ed25519') }, /ed25519/],
    ['SMTP_DKIM_SELECTOR', { SMTP_DKIM_SELECTOR: 'mail;x' }, /DNS name/],
    ['SMTP_DKIM_DOMAIN', { SMTP_DKIM_DOMAIN: 'localhost' }, /domain name/],
    ['SMTP_DKIM_PRIVATE_KEY_FILE', { SMTP_DKIM_PRIVATE_KEY_FILE: '/nonexistent/dkim.pem' }, /cannot read/],
  ])('a key or name it cannot sign with is a ConfigError naming %s', (name, override, problem) => {
    const env: Record<string, string> = { ...base(), ...full, ...override };
    if ('SMTP_DKIM_PRIVATE_KEY_FILE' in override) delete env.SMTP_DKIM_PRIVATE_KEY;
    const error = configError(() => configFromEnv(env));
    expect(error.option).toBe(name);
    expect(error.message).toMatch(problem);
  });

  it('an ed25519 key file names SMTP_DKIM_PRIVATE_KEY_FILE', async () => {
    const file = join(dir, 'public.pem');
    await writeFile(file, pem('ed25519'));
    const { SMTP_DKIM_PRIVATE_KEY: _inline, ...rest } = full;
    const error = configError(() => configFromEnv({ ...base(), ...rest, SMTP_DKIM_PRIVATE_KEY_FILE: file }));
    expect(error.option).toBe('SMTP_DKIM_PRIVATE_KEY_FILE');
  });

  it('both the key and a key file is a ConfigError', () => {
    const error = configError(() =>
      configFromEnv({ ...base(), ...full, SMTP_DKIM_PRIVATE_KEY_FILE: join(dir, 'dkim.pem') }),
    );
    expect(error.option).toBe('SMTP_DKIM_PRIVATE_KEY_FILE');
  });
});

/**
 * SMTP_DKIM_* asks for signed mail: every way the environment or a config can choose a transport
 * either signs with the key or refuses to start. Never sent unsigned by surprise.
 */
describe('SMTP_DKIM_* whichever transport is chosen', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-dkim-any-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });
  const keyEnv = {
    SMTP_DKIM_DOMAIN: KEY_2048.domainName,
    SMTP_DKIM_SELECTOR: KEY_2048.keySelector,
    SMTP_DKIM_PRIVATE_KEY: KEY_2048.privateKey.trim().replace(/\n/g, '\\n'),
  };
  const hello = { to: 'jane@example.com', subject: 'Hi', text: 'a\rb' };

  it('sendmail: the binary gets the message signed, and mailauth passes it', async () => {
    const out = join(dir, 'sendmail.eml');
    const binary = join(dir, 'sendmail.sh');
    await writeFile(binary, `#!/bin/sh\ncat > '${out}'\n`, { mode: 0o755 });
    const options = configFromEnv({
      SENDMAIL_PATH: binary,
      SENDMAIL_FROM_ADDRESS: 'Acme <no-reply@acme.example>',
      ...keyEnv,
    });
    expect(options.transport.describe?.()).toMatch(/, DKIM-signed$/);
    await new EmailService(options).send(hello);
    expect(await mailauthVerdicts(readFileSync(out), KEY_2048)).toEqual([['acme.example', 'pass']]);
  });

  it('ses: the raw message SES receives is signed with the key, and mailauth passes it', async () => {
    const { startSesPeer } = await import('../helpers/ses-peer.js');
    const peer = await startSesPeer({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-example' });
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret-example');
    vi.stubEnv('AWS_SESSION_TOKEN', '');
    try {
      const options = configFromEnv({
        SES_FROM_ADDRESS: 'Acme <no-reply@acme.example>',
        SES_ENDPOINT_URL: peer.url,
        AWS_REGION: 'eu-west-1',
        ...keyEnv,
      });
      await new EmailService(options).send(hello);
      await options.transport.close?.();
      expect(await mailauthVerdicts(peer.messages[0]!.raw, KEY_2048)).toEqual([['acme.example', 'pass']]);
    } finally {
      await peer.close();
    }
  });

  const apis = {
    mailgun: {
      MAILGUN_API_KEY: 'key-secret',
      MAILGUN_DOMAIN: 'mg.acme.example',
      MAILGUN_FROM_ADDRESS: 'Acme <a@acme.example>',
    },
    postmark: { POSTMARK_SERVER_TOKEN: 'pm-token', POSTMARK_FROM_ADDRESS: 'Acme <a@acme.example>' },
    resend: { RESEND_API_KEY: 're_key', RESEND_FROM_ADDRESS: 'Acme <a@acme.example>' },
    sendgrid: { SENDGRID_API_KEY: 'SG.key', SENDGRID_FROM_ADDRESS: 'Acme <a@acme.example>' },
  };
  it.each(Object.entries(apis))(
    '%s (an HTTP API that signs with its own key): refused, naming the DKIM variable',
    (name, env) => {
      const error = configError(() => configFromEnv({ ...env, ...keyEnv }));
      expect(error.option).toBe('SMTP_DKIM_DOMAIN');
      expect(error.message).toMatch(
        new RegExp(
          `${name === 'sendgrid' ? 'SendGrid' : ''}.*API, which signs with the DKIM key set up in your`,
          'i',
        ),
      );
      // One variable alone is refused as well: the set is incomplete, and meant for signing.
      expect(configError(() => configFromEnv({ ...env, SMTP_DKIM_SELECTOR: 'mail' })).option).toBe(
        'SMTP_DKIM_SELECTOR',
      );
    },
  );

  it.each([
    ['SMTP_DKIM_DOMAIN_NAME', 'SMTP_DKIM_DOMAIN'],
    ['SMTP_DKIM_KEY_SELECTOR', 'SMTP_DKIM_SELECTOR'],
    ['SMTP_DKIM_KEY_PATH', 'SMTP_DKIM_PRIVATE_KEY_FILE'],
    ['SMTP_DKIM_PRIVATE_KEY_PATH', 'SMTP_DKIM_PRIVATE_KEY_FILE'],
    ['SMTP_DKIM_ALGORITHM', undefined],
  ])('a look-alike %s is refused (it would send unsigned), suggesting %s', (name, suggestion) => {
    const env = {
      SMTP_HOST: 'smtp.acme.example',
      SMTP_FROM_EMAIL: 'a@acme.example',
      APP_NAME: 'Acme',
      [name]: 'x',
    };
    const error = configError(() => configFromEnv(env));
    expect(error.option).toBe(name);
    expect(error.message).toMatch(
      suggestion ? `did you mean ${suggestion}?` : 'is not a variable mailroom reads',
    );
  });

  describe('a transport built in code (mailroom.config.ts)', () => {
    const withCode = async (
      transport: import('../../src/transport.js').Transport,
      env: Record<string, string>,
    ) => {
      const { configFromEnvWith } = await import('../../src/config.js');
      return configFromEnvWith({ source: 'mailroom.config.ts', transport, from: true, appName: true }, env);
    };
    const smtp = (key?: SmtpTransportOptions['dkim']) =>
      smtpTransport({ host: '127.0.0.1', tls: 'none', ...(key ? { dkim: key } : {}) });

    it('refuses SMTP_DKIM_* beside one that does not sign, or signs as someone else', async () => {
      const unsigned = await withCode(smtp(), keyEnv).catch((e: unknown) => e);
      expect([(unsigned as ConfigError).option, (unsigned as Error).message]).toEqual([
        'SMTP_DKIM_DOMAIN',
        expect.stringMatching(/sets transport smtp, which does not sign with it/),
      ]);
      const other = await withCode(smtp(dkim({ keySelector: 'other' })), keyEnv).catch((e: unknown) => e);
      expect((other as Error).message).toMatch(/which signs as d=acme\.example, s=other/);
    });

    it('checks the transport a hold releases through: the hold captures now, but its releases are sent', async () => {
      const { holdTransport } = await import('../../src/transports/hold.js');
      const dir = await mkdtemp(join(tmpdir(), 'mailroom-dkim-hold-'));
      const unsigned = holdTransport({ transport: smtp(), dir, onFirstWrite: false });
      expect(await withCode(unsigned, keyEnv).catch((e: unknown) => (e as ConfigError).option)).toBe(
        'SMTP_DKIM_DOMAIN',
      );
      const signed = holdTransport({ transport: smtp(dkim()), dir, onFirstWrite: false });
      expect((await withCode(signed, keyEnv)).transport).toBe(signed);
      await rm(dir, { recursive: true, force: true });
    });

    it('takes one that signs as the variables say (its dkim option read them), behind a failover too', async () => {
      const { failoverTransport } = await import('../../src/transports/failover.js');
      const signed = smtp(dkim());
      expect((await withCode(signed, keyEnv)).transport).toBe(signed);
      const pair = failoverTransport([smtp(dkim()), smtp(dkim())]);
      expect(pair.dkim).toEqual({ domainName: 'acme.example', keySelector: 'mail2026' });
      expect((await withCode(pair, keyEnv)).transport).toBe(pair);
      // A failover to an unsigned transport signs only some mail: refused.
      const half = failoverTransport([smtp(dkim()), smtp()]);
      expect(half.dkim).toBeUndefined();
      expect(await withCode(half, keyEnv).catch((e: unknown) => (e as ConfigError).option)).toBe(
        'SMTP_DKIM_DOMAIN',
      );
    });
  });
});
