import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { memorySuppressionStore, suppressFromEvents } from '../../src/suppression.js';
import {
  createWebhookHandler,
  type DeliveryEvent,
  type WebhookHandlerOptions,
} from '../../src/webhooks/index.js';
import {
  listen,
  MAILGUN_KEY,
  mailgun,
  POSTMARK_PASSWORD,
  POSTMARK_USER,
  post,
  postmark,
  RESEND_SECRET,
  resend,
  type SignedRequest,
  sample,
  sendgrid,
  sendgridKeys,
} from './signing.js';

/** The options of one provider's handler, but `onEvent`. */
type ProviderOptions = WebhookHandlerOptions extends infer T
  ? T extends unknown
    ? Omit<T, 'onEvent'>
    : never
  : never;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

/** A webhook endpoint on a real server; `events` collects what it emitted. */
async function endpoint(options: ProviderOptions, onEvent?: (e: DeliveryEvent) => void) {
  const events: DeliveryEvent[] = [];
  const handler = createWebhookHandler({
    ...options,
    onEvent: (event) => {
      onEvent?.(event);
      events.push(event);
    },
  } as WebhookHandlerOptions);
  const server = await listen((req, res) => handler(req, res));
  closers.push(server.close);
  return { url: `${server.url}/hooks`, events };
}

const SIX_MINUTES = 6 * 60_000;
const sendgridPair = sendgridKeys();
const otherSendgridPair = sendgridKeys();

/** Each provider: its options, a genuine request, and the ways a request can be bad. */
const providers: {
  name: string;
  options: ProviderOptions;
  genuine: () => SignedRequest;
  forged: () => SignedRequest;
  tampered: (genuine: SignedRequest) => SignedRequest;
  stale?: () => SignedRequest;
  refusal: number;
}[] = [
  {
    name: 'mailgun',
    options: { provider: 'mailgun', signingKey: MAILGUN_KEY },
    genuine: () => mailgun(sample('mailgun', 'failed-permanent')),
    forged: () => mailgun(sample('mailgun', 'failed-permanent'), { key: 'not-the-signing-key' }),
    // Mailgun signs the timestamp and token only: tampering means changing those.
    tampered: (genuine) => ({
      ...genuine,
      body: genuine.body.replace(/"timestamp":"(\d+)"/, '"timestamp":"$11"'),
    }),
    stale: () => mailgun(sample('mailgun', 'failed-permanent'), { ageMs: SIX_MINUTES }),
    refusal: 403,
  },
  {
    name: 'resend',
    options: { provider: 'resend', secret: RESEND_SECRET },
    genuine: () => resend(sample('resend', 'bounced')),
    forged: () =>
      resend(sample('resend', 'bounced'), {
        secret: `whsec_${Buffer.from('another secret').toString('base64')}`,
      }),
    tampered: (genuine) => ({
      ...genuine,
      body: genuine.body.replace('bounced@resend.dev', 'ceo@resend.dev'),
    }),
    stale: () => resend(sample('resend', 'bounced'), { ageMs: SIX_MINUTES }),
    refusal: 403,
  },
  {
    name: 'sendgrid',
    options: { provider: 'sendgrid', publicKey: sendgridPair.publicKey },
    genuine: () => sendgrid([(sample('sendgrid', 'batch') as unknown[])[5]], sendgridPair.privateKey),
    forged: () => sendgrid([(sample('sendgrid', 'batch') as unknown[])[5]], otherSendgridPair.privateKey),
    tampered: (genuine) => ({ ...genuine, body: genuine.body.replace('example@test.com', 'ceo@test.com') }),
    stale: () =>
      sendgrid([(sample('sendgrid', 'batch') as unknown[])[5]], sendgridPair.privateKey, {
        ageMs: SIX_MINUTES,
      }),
    refusal: 403,
  },
  {
    name: 'postmark',
    options: { provider: 'postmark', username: POSTMARK_USER, password: POSTMARK_PASSWORD },
    genuine: () => postmark(sample('postmark', 'bounce')),
    forged: () => postmark(sample('postmark', 'bounce'), { password: 'guessed-password-of-same-size!!!!!' }),
    // Postmark signs nothing: a request without the credentials is the tampered one.
    tampered: (genuine) => ({ ...genuine, headers: { 'content-type': 'application/json' } }),
    refusal: 401,
  },
];

describe.each(providers)('$name webhook', (provider) => {
  it('accepts a genuine request and emits its hard bounce', async () => {
    const { url, events } = await endpoint(provider.options);
    const answer = await post(url, provider.genuine());
    expect(answer.status).toBe(200);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ provider: provider.name, type: 'bounced', bounce: 'hard' });
    expect(events[0]!.timestamp).toBeInstanceOf(Date);
  });

  it('refuses a request signed with another key, emitting nothing and saying nothing', async () => {
    const { url, events } = await endpoint(provider.options);
    const answer = await post(url, provider.forged());
    expect(answer.status).toBe(provider.refusal);
    expect(answer.text).toMatch(/^(Forbidden|Unauthorized)$/);
    expect(events).toEqual([]);
  });

  it('refuses a tampered request', async () => {
    const { url, events } = await endpoint(provider.options);
    const answer = await post(url, provider.tampered(provider.genuine()));
    expect(answer.status).toBe(provider.refusal);
    expect(events).toEqual([]);
  });

  it('refuses the same request sent again', async () => {
    const { url, events } = await endpoint(provider.options);
    const request = provider.genuine();
    expect((await post(url, request)).status).toBe(200);
    expect((await post(url, request)).status).toBe(403);
    expect(events).toHaveLength(1);
  });

  it.skipIf(!provider.stale)('refuses a request signed six minutes ago (tolerance five)', async () => {
    const { url, events } = await endpoint(provider.options);
    const answer = await post(url, provider.stale!());
    expect(answer.status).toBe(403);
    expect(events).toEqual([]);
  });

  it.skipIf(!provider.stale)('takes a request signed six minutes ago when the tolerance is ten', async () => {
    const { url, events } = await endpoint({ ...provider.options, toleranceMs: 10 * 60_000 });
    expect((await post(url, provider.stale!())).status).toBe(200);
    expect(events).toHaveLength(1);
  });

  it('answers 500 when onEvent fails, and lets the provider retry the same request', async () => {
    let fail = true;
    const errors: unknown[] = [];
    const events: DeliveryEvent[] = [];
    const handler = createWebhookHandler({
      ...provider.options,
      onEvent: (event: DeliveryEvent) => {
        if (fail) throw new Error('database down');
        events.push(event);
      },
      onError: (error: unknown) => void errors.push(error),
    } as WebhookHandlerOptions);
    const server = await listen((req, res) => handler(req, res));
    closers.push(server.close);
    const request = provider.genuine();
    const first = await post(server.url, request);
    expect({ status: first.status, text: first.text }).toEqual({
      status: 500,
      text: 'Internal Server Error',
    });
    expect(errors).toHaveLength(1);
    fail = false;
    expect((await post(server.url, request)).status).toBe(200);
    expect(events).toHaveLength(1);
  });
});

/** Each provider's hard bounce of `address`, signed. */
const bounces: { name: string; options: ProviderOptions; bounceTo: (address: string) => SignedRequest }[] = [
  {
    name: 'mailgun',
    options: { provider: 'mailgun', signingKey: MAILGUN_KEY },
    bounceTo: (address) =>
      mailgun({ ...(sample('mailgun', 'failed-permanent') as object), recipient: address }),
  },
  {
    name: 'resend',
    options: { provider: 'resend', secret: RESEND_SECRET },
    bounceTo: (address) => {
      const bounced = sample('resend', 'bounced') as { data: object };
      return resend({ ...bounced, data: { ...bounced.data, to: [address] } });
    },
  },
  {
    name: 'sendgrid',
    options: { provider: 'sendgrid', publicKey: sendgridPair.publicKey },
    bounceTo: (address) =>
      sendgrid(
        [{ ...((sample('sendgrid', 'batch') as object[])[5] as object), email: address }],
        sendgridPair.privateKey,
      ),
  },
  {
    name: 'postmark',
    options: { provider: 'postmark', username: POSTMARK_USER, password: POSTMARK_PASSWORD },
    bounceTo: (address) => postmark({ ...(sample('postmark', 'bounce') as object), Email: address }),
  },
];

describe.each(bounces)('$name webhook recipients', (provider) => {
  /** An endpoint that feeds a suppression list, as the README sets one up. */
  async function suppressing() {
    const store = memorySuppressionStore();
    const suppress = suppressFromEvents(store);
    const events: DeliveryEvent[] = [];
    const handler = createWebhookHandler({
      ...provider.options,
      onEvent: async (event: DeliveryEvent) => {
        events.push(event);
        await suppress(event);
      },
    } as WebhookHandlerOptions);
    const server = await listen((req, res) => handler(req, res));
    closers.push(server.close);
    return { url: server.url, events, store };
  }

  it('a bounce of \\u212Aevin@ (Kelvin sign) is about that address, and does not suppress kevin@', async () => {
    const { url, events, store } = await suppressing();
    expect((await post(url, provider.bounceTo('\u212Aevin@acme.example'))).status).toBe(200);
    expect((await post(url, provider.bounceTo('\u0130van@acme.example'))).status).toBe(200);
    expect(events.map((e) => e.recipient)).toEqual(['\u212Aevin@acme.example', '\u0130van@acme.example']);
    expect(await store.isSuppressed('kevin@acme.example')).toBeUndefined();
    expect(await store.isSuppressed('ivan@acme.example')).toBeUndefined();
    expect(await store.list()).toEqual([]);
  });

  it('lower-cases ASCII letters, so a bounce of KEVIN@ACME.example suppresses kevin@acme.example', async () => {
    const { url, events, store } = await suppressing();
    expect((await post(url, provider.bounceTo('KEVIN@ACME.example'))).status).toBe(200);
    expect(events.map((e) => e.recipient)).toEqual(['kevin@acme.example']);
    expect(await store.isSuppressed('kevin@acme.example')).toMatchObject({ reason: 'hard-bounce' });
  });

  it('acknowledges an event for something that is no address, emitting nothing', async () => {
    const { url, events, store } = await suppressing();
    for (const address of ['not an address', 'kevin', 'kevin@acme', 'kevin@\u200Bacme.example']) {
      expect((await post(url, provider.bounceTo(address))).status, address).toBe(200);
    }
    expect(events).toEqual([]);
    expect(await store.list()).toEqual([]);
  });
});

describe('postmark webhook authorization', () => {
  const options: ProviderOptions = {
    provider: 'postmark',
    username: POSTMARK_USER,
    password: POSTMARK_PASSWORD,
  };
  const basic = (password = POSTMARK_PASSWORD) =>
    Buffer.from(`${POSTMARK_USER}:${password}`).toString('base64');
  /** A bounce (a new one each time, so the replay check lets it through) with this Authorization. */
  const withAuthorization = (authorization: string): SignedRequest => {
    const request = postmark({ ...(sample('postmark', 'bounce') as object), MessageID: randomUUID() });
    return { ...request, headers: { ...request.headers, authorization } };
  };

  it('takes the Basic scheme in any case, and more than one space before the credentials (RFC 7235)', async () => {
    const { url, events } = await endpoint(options);
    for (const scheme of ['Basic ', 'basic ', 'BASIC ', 'bAsIc ', 'Basic   ', 'basic\u0020\u0020']) {
      expect((await post(url, withAuthorization(scheme + basic()))).status, JSON.stringify(scheme)).toBe(200);
    }
    expect(events).toHaveLength(6);
  });

  it('still answers 401 to wrong credentials in any case of the scheme, and to another scheme', async () => {
    const { url, events } = await endpoint(options);
    const wrong = basic('guessed-password-of-same-size!!!!!');
    for (const authorization of [
      `basic ${wrong}`,
      `BASIC ${wrong}`,
      `Basic ${wrong}`,
      `Bearer ${basic()}`,
      `Basic${basic()}`,
      `basic ${basic()} extra`,
      '',
    ]) {
      const request = withAuthorization(authorization);
      const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body });
      expect(response.status, authorization).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Basic realm="webhooks"');
    }
    expect(events).toEqual([]);
  });
});

describe('normalised events from the documented samples', () => {
  it('mailgun: delivered, failed, complained, unsubscribed, opened, clicked; accepted is dropped', async () => {
    const { url, events } = await endpoint({ provider: 'mailgun', signingKey: MAILGUN_KEY });
    for (const name of [
      'delivered',
      'failed-permanent',
      'failed-temporary',
      'complained',
      'unsubscribed',
      'opened',
      'clicked',
      'accepted',
    ]) {
      expect((await post(url, mailgun(sample('mailgun', name)))).status, name).toBe(200);
    }
    expect(events.map((e) => [e.type, e.type === 'bounced' ? e.bounce : undefined])).toEqual([
      ['delivered', undefined],
      ['bounced', 'hard'],
      ['deferred', undefined],
      ['complained', undefined],
      ['unsubscribed', undefined],
      ['opened', undefined],
      ['clicked', undefined],
    ]);
    const [delivered, bounced, deferred, , , , clicked] = events;
    expect(delivered).toMatchObject({
      provider: 'mailgun',
      recipient: 'recipient@example.com',
      messageId: '<20180812211713.1.DF5966851B4BAA99@example.org>',
      providerMessageId: 'hTWCTD81RtiDN-DF5966851B4BAA99',
      metadata: { my_var_1: 'Mailgun Variable #1', 'my-var-2': 'awesome' },
      diagnostic: '250',
    });
    expect(delivered!.timestamp.toISOString()).toBe('2018-08-12T21:17:17.153Z');
    expect(delivered!.raw).toEqual(sample('mailgun', 'delivered'));
    expect(bounced).toMatchObject({
      recipient: 'alice@example.com',
      reason: 'Not delivering to previously bounced address',
      diagnostic: '550',
    });
    expect(deferred).toMatchObject({
      reason: '4.2.2 The email account that you tried to reach is over quota.',
    });
    expect(clicked).toMatchObject({ url: 'https://example.com/get-started' });
  });

  it('resend: delivered, delayed, bounced, complained, opened, clicked; sent is dropped', async () => {
    const { url, events } = await endpoint({ provider: 'resend', secret: RESEND_SECRET });
    for (const name of [
      'delivered',
      'delivery-delayed',
      'bounced',
      'complained',
      'opened',
      'clicked',
      'sent',
    ]) {
      expect((await post(url, resend(sample('resend', name)))).status, name).toBe(200);
    }
    expect(events.map((e) => e.type)).toEqual([
      'delivered',
      'deferred',
      'bounced',
      'complained',
      'opened',
      'clicked',
    ]);
    expect(events[2]).toMatchObject({
      provider: 'resend',
      recipient: 'bounced@resend.dev',
      bounce: 'hard',
      providerMessageId: '56761188-7520-42d8-8898-ff6fc54ce618',
      reason: expect.stringContaining('suppression list'),
      diagnostic: 'Suppressed',
    });
    expect(events[2]!.timestamp.toISOString()).toBe('2024-11-22T23:41:12.126Z');
    expect(events[5]).toMatchObject({ url: 'https://resend.com' });
    expect(events[0]!.raw).toEqual(sample('resend', 'delivered'));
  });

  it('sendgrid: one batch, one event each; processed and dropped are dropped', async () => {
    const { url, events } = await endpoint({ provider: 'sendgrid', publicKey: sendgridPair.publicKey });
    const batch = sample('sendgrid', 'batch') as unknown[];
    expect((await post(url, sendgrid(batch, sendgridPair.privateKey))).status).toBe(200);
    expect(events.map((e) => [e.type, e.type === 'bounced' ? e.bounce : undefined])).toEqual([
      ['deferred', undefined],
      ['delivered', undefined],
      ['opened', undefined],
      ['clicked', undefined],
      ['bounced', 'hard'],
      ['bounced', 'soft'],
      ['complained', undefined],
      ['unsubscribed', undefined],
      ['unsubscribed', undefined],
    ]);
    expect(events[1]).toMatchObject({
      recipient: 'example@test.com',
      messageId: '<14c5d75ce93.dfd.64b469@ismtpd-555>',
      providerMessageId: '14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000',
    });
    expect(events[4]).toMatchObject({ reason: '500 unknown recipient', diagnostic: '5.0.0' });
    expect(events[4]!.raw).toEqual(batch[5]);
    expect(events[0]!.timestamp.toISOString()).toBe('2017-12-15T00:59:29.000Z');
  });

  it('postmark: bounce (hard and soft), delivery, spam complaint, open, click, subscription change', async () => {
    const { url, events } = await endpoint({
      provider: 'postmark',
      username: POSTMARK_USER,
      password: POSTMARK_PASSWORD,
    });
    for (const name of [
      'bounce',
      'soft-bounce',
      'delivery',
      'spam-complaint',
      'open',
      'click',
      'subscription-change',
    ]) {
      expect((await post(url, postmark(sample('postmark', name)))).status, name).toBe(200);
    }
    expect(events.map((e) => [e.type, e.type === 'bounced' ? e.bounce : undefined])).toEqual([
      ['bounced', 'hard'],
      ['bounced', 'soft'],
      ['delivered', undefined],
      ['complained', undefined],
      ['opened', undefined],
      ['clicked', undefined],
      ['unsubscribed', undefined],
    ]);
    expect(events[0]).toMatchObject({
      recipient: 'john@example.com',
      providerMessageId: '883953f4-6105-42a2-a16a-77a8eac79483',
      metadata: { a_key: 'a_value', b_key: 'b_value' },
      reason: expect.stringContaining('unable to deliver'),
      diagnostic: 'Test bounce details',
    });
    expect(events[0]!.timestamp.toISOString()).toBe('2019-11-05T16:33:54.907Z');
    expect(events[5]).toMatchObject({ url: 'https://example.com' });
  });
});

describe('mounting', () => {
  it('answers 405 to a GET and 413 past maxBodyBytes', async () => {
    const { url, events } = await endpoint({
      provider: 'mailgun',
      signingKey: MAILGUN_KEY,
      maxBodyBytes: 1000,
    });
    expect((await fetch(url)).status).toBe(405);
    const big = mailgun({ ...(sample('mailgun', 'delivered') as object), padding: 'x'.repeat(2000) });
    expect((await post(url, big)).status).toBe(413);
    expect(events).toEqual([]);
  });

  it('marks every answer nosniff: 200, 401, 403, 405, 413 and 500', async () => {
    let fail = false;
    const handler = createWebhookHandler({
      provider: 'postmark',
      username: POSTMARK_USER,
      password: POSTMARK_PASSWORD,
      maxBodyBytes: 2000,
      onEvent: () => {
        if (fail) throw new Error('database down');
      },
      onError: () => {},
    });
    const server = await listen((req, res) => handler(req, res));
    closers.push(server.close);
    const send = (request: SignedRequest) =>
      fetch(server.url, { method: 'POST', headers: request.headers, body: request.body });
    const genuine = postmark(sample('postmark', 'bounce'));
    const answers = [
      await send(genuine),
      await send(postmark(sample('postmark', 'bounce'), { password: 'guessed-password-of-same-size!!!!!' })),
      await send(genuine),
      await fetch(server.url),
      await send(postmark({ padding: 'x'.repeat(3000) })),
    ];
    fail = true;
    answers.push(await send(postmark(sample('postmark', 'delivery'))));
    expect(answers.map((a) => a.status)).toEqual([200, 401, 403, 405, 413, 500]);
    for (const answer of answers) {
      expect(answer.headers.get('x-content-type-options'), String(answer.status)).toBe('nosniff');
      expect(answer.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    }
  });

  it('refuses to start without the secret, naming the option', () => {
    const onEvent = () => {};
    expect(() => createWebhookHandler({ provider: 'mailgun', signingKey: '', onEvent })).toThrow(
      /^signingKey:/,
    );
    expect(() => createWebhookHandler({ provider: 'resend', secret: 'abc', onEvent })).toThrow(/^secret:/);
    expect(() => createWebhookHandler({ provider: 'sendgrid', publicKey: 'bm90IGEga2V5', onEvent })).toThrow(
      /^publicKey:/,
    );
    expect(() =>
      createWebhookHandler({ provider: 'postmark', username: 'u', password: 'short', onEvent }),
    ).toThrow(/^password:/);
    expect(() =>
      createWebhookHandler({ provider: 'sparkpost', onEvent } as unknown as WebhookHandlerOptions),
    ).toThrow(/^provider:/);
  });
});
