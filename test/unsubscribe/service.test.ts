/**
 * One-click unsubscribe headers (RFC 8058, RFC 2369) on what the service sends: product and
 * marketing mail carries them, signed for its one recipient; security and transactional mail
 * never does. Checked in the memory outbox, in the queue record, from the environment, and
 * through a real SMTP server with the DKIM signature verified over both headers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromEnv } from '../../src/config.js';
import { isConfigError, isMessageError } from '../../src/errors.js';
import { memoryPreferenceStore } from '../../src/preferences.js';
import { EmailService, type EmailServiceOptions } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { smtpTransport } from '../../src/transports/smtp.js';
import { verifyUnsubscribeToken } from '../../src/unsubscribe/index.js';
import { DKIMPY, dkimpyVerdicts, mailauthVerdicts, rsaKey, SKIP_DKIMPY } from '../helpers/dkim-verify.js';
import { optedIn } from '../helpers/opted-in.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';
import { caught, rejection } from '../helpers/thrown.js';

const from = 'Acme <no-reply@acme.example>';
const email = { subject: 'Hello', text: 'Hello there' };
const SECRET = 'unsubscribe-secret-unsubscribe-secret-1';
const unsubscribe = { url: 'https://acme.example/unsubscribe', secrets: [SECRET] };

async function service(extra: Partial<EmailServiceOptions> = {}) {
  const transport = memoryTransport();
  const preferences = memoryPreferenceStore();
  await preferences.set('jane@example.com', 'marketing', true);
  const mail = new EmailService({ transport, from, preferences, unsubscribe, retry: false, ...extra });
  return { mail, transport, preferences };
}

/** The https URL of a List-Unsubscribe value, and the rest. */
function links(value: string | undefined): string[] {
  expect(value).toBeDefined();
  return [...(value as string).matchAll(/<([^>]*)>/g)].map((m) => m[1] as string);
}

describe('List-Unsubscribe on what the service sends', () => {
  it('product and marketing mail carry both headers, the token signed for the recipient and category', async () => {
    const { mail, transport } = await service();
    const before = Math.floor(Date.now() / 1000) * 1000;
    await mail.send({ ...email, to: 'Jane <Jane@Example.com>', category: 'product' });
    await mail.send({ ...email, to: 'jane@example.com', category: 'marketing' });
    expect(transport.outbox).toHaveLength(2);
    for (const [i, category] of (['product', 'marketing'] as const).entries()) {
      const { headers } = transport.outbox[i]!.message;
      expect(headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
      const [https, ...rest] = links(headers['List-Unsubscribe']);
      expect(rest).toEqual([]);
      const url = new URL(https!);
      expect(`${url.origin}${url.pathname}`).toBe('https://acme.example/unsubscribe');
      const verdict = verifyUnsubscribeToken(url.searchParams.get('token'), { secrets: [SECRET] });
      expect(verdict).toMatchObject({ ok: true, address: 'jane@example.com', category });
      expect((verdict as { issuedAt: Date }).issuedAt.getTime()).toBeGreaterThanOrEqual(before);
    }
  });

  it('security, transactional and uncategorised mail never carries them', async () => {
    const { mail, transport } = await service();
    await mail.send({ ...email, to: 'jane@example.com', category: 'security' });
    await mail.send({ ...email, to: 'jane@example.com', category: 'transactional' });
    await mail.send({ ...email, to: 'jane@example.com' });
    await mail.sendPasswordResetEmail({
      to: 'jane@example.com',
      username: 'Jane',
      resetUrl: 'https://acme.example/reset',
      expiresInMinutes: 30,
    });
    expect(transport.outbox).toHaveLength(4);
    for (const { message } of transport.outbox) {
      expect(Object.keys(message.headers).filter((h) => /^list-/i.test(h))).toEqual([]);
    }
  });

  it('a built-in template sent as product mail carries them too', async () => {
    const { mail, transport } = await service();
    await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane', category: 'product' });
    expect(transport.outbox[0]!.message.headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
  });

  it('lists the mailto address after the https URL, and keeps the URL’s own query', async () => {
    const { mail, transport } = await service({
      unsubscribe: {
        ...unsubscribe,
        url: 'https://acme.example/u?list=news,weekly',
        mailto: 'unsubscribe@acme.example',
      },
    });
    await mail.send({ ...email, to: 'jane@example.com', category: 'product' });
    const value = transport.outbox[0]!.message.headers['List-Unsubscribe']!;
    const [https, mailto] = links(value);
    expect(mailto).toBe('mailto:unsubscribe@acme.example?subject=unsubscribe');
    // RFC 2369: commas separate the URLs, so one inside a URL is encoded.
    expect(https).toMatch(/^https:\/\/acme\.example\/u\?list=news%2Cweekly&token=[\w-]+\.[\w-]+&lang=en$/);
    expect(value.split(',')).toHaveLength(2);
  });

  it('a recipient who opted out is left out before any token is made: nothing sent', async () => {
    const { mail, transport, preferences } = await service();
    await preferences.set('jane@example.com', 'product', false);
    const result = await mail.send({ ...email, to: 'jane@example.com', category: 'product' });
    expect(result.suppressed).toEqual([{ address: 'jane@example.com', reason: 'opted-out' }]);
    expect(transport.outbox).toEqual([]);
  });

  it('without the option, nothing is added', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from, retry: false });
    await mail.send({ ...email, to: ['a@example.com', 'b@example.com'], category: 'product' });
    expect(transport.outbox[0]!.message.headers).toEqual({});
  });
});

describe('what cannot carry one person’s link is refused before anything is sent', () => {
  it('product or marketing mail to more than one recipient across to, cc and bcc: send one per recipient', async () => {
    const { mail, transport } = await service();
    for (const extra of [
      { to: ['jane@example.com', 'john@example.com'] },
      { to: 'jane@example.com', cc: 'john@example.com' },
      { to: 'jane@example.com', bcc: 'audit@acme.example' },
    ]) {
      const error = await rejection(() => mail.send({ ...email, ...extra, category: 'product' }));
      expect(isMessageError(error) && error.field).toBe('to');
      expect((error as Error).message).toMatch(/send one email per recipient/);
    }
    // Security mail to several people is fine: it carries no link.
    await mail.send({ ...email, to: ['jane@example.com', 'john@example.com'], category: 'security' });
    expect(transport.outbox.map((c) => c.message.category)).toEqual(['security']);
  });

  it('a caller’s own List-Unsubscribe header, on any category', async () => {
    const { mail, transport } = await service();
    for (const [category, header] of [
      ['product', 'List-Unsubscribe'],
      ['marketing', 'list-unsubscribe-post'],
      ['transactional', 'List-Unsubscribe'],
      ['security', 'List-Unsubscribe-Post'],
    ] as const) {
      const error = await rejection(() =>
        mail.send({
          ...email,
          to: 'jane@example.com',
          category,
          headers: { [header]: '<https://x.example/u>' },
        }),
      );
      expect(isMessageError(error) && error.field, category).toBe(`headers.${header}`);
    }
    expect(transport.outbox).toEqual([]);
  });

  it('through a queue: refused at the call site; the record carries no header (the worker’s service adds them)', async () => {
    const records: Record<string, unknown>[] = [];
    const queue = {
      name: 'test-queue',
      async enqueue(record: unknown) {
        records.push(record as Record<string, unknown>);
        return { id: String(records.length), idempotencyKey: String(records.length) };
      },
    };
    const { mail } = await service({ queue });
    expect(
      isMessageError(
        await rejection(() =>
          mail.send({ ...email, to: ['a@example.com', 'b@example.com'], category: 'product' }),
        ),
      ),
    ).toBe(true);
    await mail.send({ ...email, to: 'jane@example.com', category: 'product' });
    await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane', category: 'marketing' });
    expect(records).toHaveLength(2);
    for (const record of records) expect(record.headers).toBeUndefined();

    // The worker's service, sending what the record says, adds them.
    const worker = await service();
    await worker.mail.send({ ...(records[0] as typeof email & { to: string[] }) });
    expect(worker.transport.outbox[0]!.message.headers['List-Unsubscribe-Post']).toBe(
      'List-Unsubscribe=One-Click',
    );
  });
});

describe('the unsubscribe option is checked when the service is made', () => {
  const option = (value: unknown) =>
    caught(
      () =>
        new EmailService({
          transport: memoryTransport(),
          from,
          preferences: optedIn(),
          unsubscribe: value as EmailServiceOptions['unsubscribe'],
        }),
    );
  it.each([
    ['an http URL', { ...unsubscribe, url: 'http://acme.example/u' }, 'unsubscribe.url'],
    ['not a URL', { ...unsubscribe, url: 'acme.example/u' }, 'unsubscribe.url'],
    [
      'a URL with its own token',
      { ...unsubscribe, url: 'https://acme.example/u?token=1' },
      'unsubscribe.url',
    ],
    ['a URL with a fragment', { ...unsubscribe, url: 'https://acme.example/u#x' }, 'unsubscribe.url'],
    ['no secrets', { url: unsubscribe.url, secrets: [] }, 'unsubscribe.secrets'],
    ['a short second secret', { ...unsubscribe, secrets: [SECRET, 'tiny'] }, 'unsubscribe.secrets[1]'],
    ['a bad mailto', { ...unsubscribe, mailto: 'not an address' }, 'unsubscribe.mailto'],
    ['a bad maxAgeDays', { ...unsubscribe, maxAgeDays: 1.5 }, 'unsubscribe.maxAgeDays'],
    ['not an object', 'https://acme.example/u', 'unsubscribe'],
  ])('%s: ConfigError naming the field', (_name, value, field) => {
    const error = option(value);
    expect(isConfigError(error) && error.option).toBe(field);
    expect((error as Error).message).not.toContain('tiny');
  });

  it('http is allowed on loopback, for local testing', () => {
    expect(
      () =>
        new EmailService({
          transport: memoryTransport(),
          from,
          preferences: optedIn(),
          unsubscribe: { ...unsubscribe, url: 'http://127.0.0.1:3000/u' },
        }),
    ).not.toThrow();
  });
});

describe('from the environment', () => {
  const env = {
    MAILROOM_TRANSPORT: 'memory',
    MAILROOM_UNSUBSCRIBE_URL: 'https://acme.example/unsubscribe',
    MAILROOM_UNSUBSCRIBE_SECRETS: ` ${SECRET}, older-secret-older-secret-older-secret `,
    MAILROOM_UNSUBSCRIBE_MAILTO: 'unsubscribe@acme.example',
  };

  it('reads the URL, the comma-separated secrets newest first and the mailto address', () => {
    expect(configFromEnv(env).unsubscribe).toEqual({
      url: 'https://acme.example/unsubscribe',
      secrets: [SECRET, 'older-secret-older-secret-older-secret'],
      mailto: 'unsubscribe@acme.example',
    });
    expect(configFromEnv({ MAILROOM_TRANSPORT: 'memory' }).unsubscribe).toBeUndefined();
  });

  it.each([
    [
      'a URL without secrets',
      { MAILROOM_UNSUBSCRIBE_SECRETS: undefined },
      'MAILROOM_UNSUBSCRIBE_SECRETS',
      '',
    ],
    ['secrets without a URL', { MAILROOM_UNSUBSCRIBE_URL: undefined }, 'MAILROOM_UNSUBSCRIBE_URL', ''],
    ['an http URL', { MAILROOM_UNSUBSCRIBE_URL: 'http://acme.example/u' }, 'MAILROOM_UNSUBSCRIBE_URL', ''],
    [
      'a short secret',
      { MAILROOM_UNSUBSCRIBE_SECRETS: `${SECRET},hunter2-short` },
      'MAILROOM_UNSUBSCRIBE_SECRETS',
      'secret 2',
    ],
    ['a bad mailto', { MAILROOM_UNSUBSCRIBE_MAILTO: 'nope' }, 'MAILROOM_UNSUBSCRIBE_MAILTO', ''],
  ])('%s is a ConfigError naming the variable, never a secret', (_name, change, variable, says) => {
    const error = caught(() => configFromEnv({ ...env, ...change }));
    expect(isConfigError(error) && error.option).toBe(variable);
    expect((error as Error).message).toContain(says);
    expect((error as Error).message).not.toContain('hunter2');
    expect((error as Error).message).not.toContain(SECRET);
  });

  it('a service from it alone is refused naming preferences: the opt-outs would never be read', () => {
    const error = caught(() => new EmailService(configFromEnv(env)));
    expect(isConfigError(error) && error.option).toBe('preferences');
    expect((error as Error).message).toContain('MAILROOM_PREFERENCES_URL');
    // Publishing to a queue is fine: the worker's service reads them when it sends.
    expect(
      () =>
        new EmailService({ ...configFromEnv(env), queue: { name: 'q', enqueue: async () => ({}) as never } }),
    ).not.toThrow();
  });

  it('the service built from it, with the preference store, adds the headers', async () => {
    const options = configFromEnv(env);
    const mail = new EmailService({ ...options, preferences: optedIn(), retry: false });
    await mail.send({ ...email, to: 'jane@example.com', category: 'product' });
    const transport = options.transport as ReturnType<typeof memoryTransport>;
    expect(links(transport.outbox[0]!.message.headers['List-Unsubscribe'])).toHaveLength(2);
  });
});

describe('through a real SMTP server, DKIM-signed', () => {
  let peer: SmtpPeer;
  const key = rsaKey(2048, 'pkcs8', 'acme.example', 'unsub2026');
  beforeAll(async () => {
    peer = await startSmtpPeer({ starttls: false });
  });
  afterAll(() => peer.close());

  async function sendBoth(): Promise<Buffer[]> {
    peer.messages.length = 0;
    const transport = smtpTransport({
      host: peer.host,
      port: peer.port,
      tls: 'none',
      dkim: { domainName: key.domainName, keySelector: key.keySelector, privateKey: key.privateKey },
    });
    const mail = new EmailService({ transport, from, preferences: optedIn(), unsubscribe, retry: false });
    await mail.send({ ...email, to: 'jane@example.com', category: 'product' });
    await mail.send({ ...email, to: 'jane@example.com', category: 'security' });
    await transport.close();
    return peer.messages.map((m) => m.raw);
  }

  it('arrives with both headers on product mail, none on security mail, and the signature covers both', async () => {
    const [product, security] = await sendBoth();
    const received = await fromMime(product!);
    expect(received.headers['list-unsubscribe-post']).toBe('List-Unsubscribe=One-Click');
    const [https] = links(received.headers['list-unsubscribe']);
    expect(
      verifyUnsubscribeToken(new URL(https!).searchParams.get('token'), { secrets: [SECRET] }),
    ).toMatchObject({
      ok: true,
      address: 'jane@example.com',
      category: 'product',
    });
    const signature = received.headers['dkim-signature']!.replace(/\s+/g, '');
    const signed = /(?:^|;)h=([^;]+)/.exec(signature)![1]!.toLowerCase().split(':');
    expect(signed).toEqual(expect.arrayContaining(['list-unsubscribe', 'list-unsubscribe-post']));
    expect(await mailauthVerdicts(product!, key)).toEqual([[key.domainName, 'pass']]);

    const plain = await fromMime(security!);
    expect(Object.keys(plain.headers).filter((h) => h.startsWith('list-'))).toEqual([]);
    expect(await mailauthVerdicts(security!, key)).toEqual([[key.domainName, 'pass']]);
  });

  it('the verifiers are not rubber stamps: a changed List-Unsubscribe-Post fails', async () => {
    const [product] = await sendBoth();
    const tampered = Buffer.from(
      product!.toString('latin1').replace('List-Unsubscribe=One-Click', 'List-Unsubscribe=One-Clack'),
      'latin1',
    );
    expect(tampered.equals(product!)).toBe(false);
    expect(await mailauthVerdicts(tampered, key)).toEqual([[key.domainName, 'fail']]);
  });

  it.skipIf(SKIP_DKIMPY)(
    `dkimpy passes both emails ${DKIMPY.available ? '' : `(${DKIMPY.reason})`}`,
    async () => {
      const received = await sendBoth();
      expect(dkimpyVerdicts(received, key)).toEqual(['pass', 'pass']);
    },
  );
});
