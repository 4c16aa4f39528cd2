/** mailgunTransport against a local HTTP server that speaks Mailgun's Messages API. */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmailError, isConfigError, isMessageError } from '../../src/errors.js';
import { parseAddress } from '../../src/message.js';
import { EmailService } from '../../src/service.js';
import { type MailgunTransportOptions, mailgunTransport } from '../../src/transports/mailgun.js';
import { type MailgunPeer, type MailgunReceived, startMailgunPeer } from '../helpers/mailgun-peer.js';
import type { ReceivedEmail } from '../helpers/received.js';
import { type Fault, transportContract } from './contract.js';

const KEY = 'key-3ax6xnjp29jd6fds4gc373sgvjxteol0';
const DOMAIN = 'mg.acme.example';

const clientFor = (peer: MailgunPeer, extra: Partial<MailgunTransportOptions> = {}) =>
  mailgunTransport({ apiKey: KEY, domain: DOMAIN, baseUrl: peer.url, ...extra });

/** What Mailgun received, in the contract's comparable shape. */
function received(m: MailgunReceived): ReceivedEmail {
  const addresses = (field: string) =>
    (m.fields[field] ?? []).flatMap((v) => v.split(',')).map((v) => parseAddress(v.trim(), field));
  const from = addresses('from')[0];
  const headers = Object.fromEntries(
    Object.entries(m.fields)
      .filter(([k]) => k.startsWith('h:'))
      .map(([k, v]) => [k.slice(2).toLowerCase(), v.join(', ')]),
  );
  return {
    from: from?.address ?? '',
    fromName: from?.name,
    to: addresses('to').map((a) => a.address),
    cc: addresses('cc').map((a) => a.address),
    replyTo: addresses('h:Reply-To').map((a) => a.address),
    subject: m.fields.subject?.[0] ?? '',
    text: m.fields.text?.[0],
    html: m.fields.html?.[0],
    messageId: m.fields['h:Message-Id']?.[0],
    headers,
    attachments: m.files.map((f) => ({
      filename: f.filename,
      contentType: f.contentType,
      content: f.content,
    })),
  };
}

const faults: Record<Fault, Parameters<MailgunPeer['failNext']>[0]> = {
  transient: { status: 500, body: '{"message":"Internal error"}' },
  permanent: { status: 400, body: '{"message":"to parameter is not a valid address"}' },
  drop: { drop: 'after-body' },
  slow: { delay: 2000 },
};

transportContract(
  'mailgun',
  async () => {
    const peer = await startMailgunPeer({ apiKey: KEY, domains: [DOMAIN] });
    return {
      transport: clientFor(peer),
      received: async () => peer.messages.map(received),
      faults: {
        inject: (fault, times) => peer.failNext(faults[fault], times),
        attempts: () => peer.requests.length,
        badCredentials: () => clientFor(peer, { apiKey: 'key-wrong' }),
        impatient: (ms) => clientFor(peer, { timeoutMs: ms }),
      },
      close: () => peer.close(),
    };
  },
  {
    skip: {
      deferred:
        'Mailgun accepts or refuses a message as a whole; it retries recipients it cannot reach yet in its own queue',
    },
  },
);

describe('mailgunTransport', () => {
  const peers: MailgunPeer[] = [];
  const start = async () => {
    const peer = await startMailgunPeer({ apiKey: KEY, domains: [DOMAIN] });
    peers.push(peer);
    return peer;
  };
  const service = (transport: ReturnType<typeof mailgunTransport>, logs: unknown[] = []) =>
    new EmailService({
      transport,
      from: 'Acme <no-reply@mg.acme.example>',
      retry: { maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 50 },
      logger: {
        info: (o) => logs.push(o),
        warn: (o) => logs.push(o),
        error: (o) => logs.push(o),
        debug: (o) => logs.push(o),
      },
    });
  const hello = { to: 'jane@example.com', subject: 'Hello', text: 'Hi Jane', html: '<p>Hi Jane</p>' };
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((peer) => peer.close()));
  });

  it('maps tags, metadata, test mode and delivery time to o: and v: fields', async () => {
    const peer = await start();
    const when = new Date('2026-12-01T09:30:00Z');
    await service(clientFor(peer, { testMode: true, deliveryTime: () => when })).send({
      ...hello,
      tags: ['signup', 'verify'],
      metadata: { userId: 42, plan: 'pro' },
      category: 'security',
    });
    const { fields } = peer.messages[0]!;
    expect(fields['o:tag']).toEqual(['signup', 'verify']);
    expect(fields['v:userId']).toEqual(['42']);
    expect(fields['v:plan']).toEqual(['pro']);
    expect(fields['v:category']).toEqual(['security']);
    expect(fields['o:testmode']).toEqual(['yes']);
    expect(fields['o:deliverytime']).toEqual(['Tue, 01 Dec 2026 09:30:00 +0000']);
    // Without files, URL-encoded: cheaper to build and send than multipart.
    expect(peer.messages[0]?.encoding).toBe('application/x-www-form-urlencoded');
  });

  it('sends a message’s sendAt as o:deliverytime in RFC 2822 form, which the peer accepts', async () => {
    const peer = await start();
    const at = new Date(Math.ceil((Date.now() + 2 * 86_400_000) / 1000) * 1000);
    const result = await service(clientFor(peer)).send({ ...hello, sendAt: at.toISOString() });
    expect(result.accepted).toEqual(['jane@example.com']);
    const [value] = peer.messages[0]?.fields['o:deliverytime'] ?? [];
    expect(value).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(Date.parse(value as string)).toBe(at.getTime());
  });

  it('moves quiet-hours mail to o:deliverytime; security mail is never held', async () => {
    const peer = await start();
    const morning = new Date(Math.ceil((Date.now() + 9 * 3_600_000) / 1000) * 1000);
    const mail = new EmailService({
      transport: clientFor(peer),
      from: 'Acme <no-reply@mg.acme.example>',
      quietHours: () => morning,
    });
    await mail.send({ ...hello, category: 'marketing' });
    await mail.send({ ...hello, category: 'security' });
    const times = peer.messages.map((m) => m.fields['o:deliverytime']?.[0]);
    expect(times[0] && Date.parse(times[0])).toBe(morning.getTime());
    expect(times[1]).toBeUndefined();
  });

  it('refuses a sendAt beyond maxScheduleDays before sending anything (3 days unless the plan allows 7)', async () => {
    const peer = await start();
    const fiveDays = new Date(Date.now() + 5 * 86_400_000);
    const error = await service(clientFor(peer))
      .send({ ...hello, sendAt: fiveDays })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isMessageError(error) && error.field).toBe('sendAt');
    expect((error as Error).message).toContain('at most 3 days ahead');
    expect(peer.messages).toHaveLength(0);
    // A plan that stores 7 days: the transport and the peer both take it.
    const week = await startMailgunPeer({ apiKey: KEY, domains: [DOMAIN], maxScheduleDays: 7 });
    peers.push(week);
    await service(clientFor(week, { maxScheduleDays: 7 })).send({ ...hello, sendAt: fiveDays });
    expect(week.messages[0]?.fields['o:deliverytime']).toHaveLength(1);
    // The peer itself refuses what Mailgun would: a time too far ahead for the plan.
    const eager = await service(clientFor(peer, { maxScheduleDays: 7 }))
      .send({ ...hello, sendAt: fiveDays })
      .then(
        () => undefined,
        (e: unknown) => e as EmailError,
      );
    expect(eager?.status).toBe(400);
    expect(() => clientFor(peer, { maxScheduleDays: 8 })).toThrow(/maxScheduleDays/);
  });

  it('refuses a fourth tag before sending anything', async () => {
    const peer = await start();
    const error = await service(clientFor(peer))
      .send({ ...hello, tags: ['a', 'b', 'c', 'd'] })
      .catch((e: unknown) => e);
    expect(isMessageError(error) && error.field).toBe('tags');
    expect(peer.requests).toEqual([]);
  });

  it('takes a metadata.category that says the category, and refuses one that contradicts it before sending', async () => {
    const peer = await start();
    await service(clientFor(peer)).send({ ...hello, category: 'product', metadata: { category: 'product' } });
    expect(peer.messages[0]?.fields['v:category']).toEqual(['product']);
    const error = await service(clientFor(peer))
      .send({ ...hello, category: 'product', metadata: { category: 'billing' } })
      .catch((e: unknown) => e);
    expect(isMessageError(error) && error.field).toBe('metadata.category');
    expect(peer.requests).toHaveLength(1);
  });

  it('sends a calendar invitation as invite.ics with its method parameter, next to other files', async () => {
    const peer = await start();
    const invite = [
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'METHOD:REQUEST',
      'BEGIN:VEVENT',
      'UID:kickoff-42@acme.example',
      'DTSTART:20261210T150000Z',
      'SUMMARY:Kick-off',
      'END:VEVENT',
      'END:VCALENDAR',
      '',
    ].join('\r\n');
    // The peer reads the form as a platform File, whose type is lower-cased; the wire keeps the case.
    const bodies: string[] = [];
    const recording: typeof fetch = (url, init) => {
      bodies.push(Buffer.from(init?.body as Uint8Array).toString('latin1'));
      return fetch(url, init);
    };
    await service(clientFor(peer, { fetch: recording })).send({
      ...hello,
      icalEvent: { content: invite },
      attachments: [{ filename: 'agenda.txt', content: 'Coffee.' }],
    });
    const files = peer.messages[0]!.files;
    expect(files.map((f) => [f.field, f.filename])).toEqual([
      ['attachment', 'agenda.txt'],
      ['attachment', 'invite.ics'],
    ]);
    expect(files[1]?.contentType.toLowerCase()).toBe('text/calendar; method=request; charset=utf-8');
    expect(bodies[0]).toContain(
      'filename="invite.ics"\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\nBEGIN:VCALENDAR',
    );
    expect(files[1]?.content.toString('utf8')).toBe(invite);
  });

  it.each([
    ['metadata.ref', { metadata: { ref: '1\r\nBcc: evil@x.com' } }],
    ['metadata.ref', { metadata: { ref: '1\rx' } }],
    ['metadata.ref', { metadata: { ref: '1\nx' } }],
    ['metadata.ref', { metadata: { ref: '1\u0000' } }],
    ['metadata.ref', { metadata: { ref: '1\u2028x' } }],
    ['subject', { subject: 'Hello\u0085Bcc: evil@x.com' }],
    ['subject', { subject: 'Hello\u2028there' }],
    ['tags[0]', { tags: ['a\u2029b'] }],
    ['headers.X-Ref', { headers: { 'X-Ref': 'a\u2028b' } }],
  ])('refuses %s with a control character or line separator before any request', async (field, patch) => {
    const peer = await start();
    const error = await service(clientFor(peer))
      .send({ ...hello, ...patch })
      .catch((e: unknown) => e);
    expect(isMessageError(error) && error.field).toBe(field);
    expect(peer.requests).toEqual([]);
  });

  it('sends an image with a cid as an inline part named after its cid', async () => {
    const peer = await start();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]);
    await service(clientFor(peer)).send({
      ...hello,
      html: '<img src="cid:logo.png">',
      attachments: [
        { filename: 'logo.png', content: png, contentType: 'image/png', cid: 'logo.png' },
        { filename: 'terms.txt', content: 'Be nice.' },
      ],
    });
    expect(peer.messages[0]?.encoding).toBe('multipart/form-data');
    const files = peer.messages[0]!.files.map((f) => [f.field, f.filename, f.content.toString('hex')]);
    expect(files).toEqual([
      ['inline', 'logo.png', png.toString('hex')],
      ['attachment', 'terms.txt', Buffer.from('Be nice.').toString('hex')],
    ]);
  });

  it('waits at least as long as a 429 Retry-After asks (seconds), then delivers', async () => {
    const peer = await start();
    peer.failNext({ status: 429, retryAfter: '1', body: '{"message":"Too many requests"}' });
    const result = await service(clientFor(peer)).send(hello);
    expect(result.attempts).toBe(2);
    expect(peer.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(peer.requests[1]!.at - peer.requests[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(peer.messages).toHaveLength(1);
  });

  it('honours a Retry-After given as an HTTP date', async () => {
    const peer = await start();
    // HTTP dates have whole seconds: two seconds ahead is at least one second away.
    peer.failNext({ status: 503, retryAfter: new Date(Date.now() + 2000).toUTCString() });
    const mail = service(clientFor(peer));
    const waits: number[] = [];
    mail.on('retrying', (e) => waits.push(e.delayMs));
    await mail.send(hello);
    expect(waits[0]).toBeGreaterThanOrEqual(1000);
    expect(peer.requests[1]!.at - peer.requests[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  it('rides out a burst of 500s, then delivers once', async () => {
    const peer = await start();
    peer.failNext({ status: 500 }, 3);
    const result = await service(clientFor(peer)).send(hello);
    expect(result.attempts).toBe(4);
    expect(peer.requests.map((r) => r.status)).toEqual([500, 500, 500, 200]);
    expect(peer.messages).toHaveLength(1);
  });

  it.each([
    [{ status: 402, body: '{"message":"Payment required"}' }, 'account', 'systemic'],
    [{ status: 403, body: '{"message":"Domain disabled"}' }, 'auth', 'systemic'],
    [{ status: 413, body: '{"message":"Request too large"}' }, 'rejected', 'permanent'],
  ] as const)('maps HTTP %o to %s (%s), one attempt', async (fault, code, failure) => {
    const peer = await start();
    peer.failNext(fault);
    const error = (await service(clientFor(peer))
      .send(hello)
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure, error.status]).toEqual([code, failure, fault.status]);
    expect(peer.requests).toHaveLength(1);
  });

  it('treats an unknown sending domain as systemic', async () => {
    const peer = await start();
    const error = (await service(clientFor(peer, { domain: 'mg.other.example' }))
      .send(hello)
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure, error.status]).toEqual(['config', 'systemic', 404]);
    expect(error.message).toContain('Domain not found');
    const endpoint = new URL(peer.url).host;
    expect(error.endpoint).toBe(endpoint);
    expect(error.message).toContain(`Mailgun 404 from ${endpoint}`);
  });

  it('treats a refused connection as transient, not a possible duplicate', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const transport = mailgunTransport({
      apiKey: KEY,
      domain: DOMAIN,
      baseUrl: `http://127.0.0.1:${closed}`,
    });
    const error = (await service(transport)
      .send({ ...hello, retry: false })
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure, error.possibleDuplicate]).toEqual(['network', 'transient', false]);
    expect([error.endpoint, error.causeCode]).toEqual([`127.0.0.1:${closed}`, 'ECONNREFUSED']);
    expect(error.message).toContain(`127.0.0.1:${closed} (ECONNREFUSED)`);
  });

  // A multicast address: the kernel refuses a TCP connection to it at once (ENETUNREACH), so no
  // packet leaves the machine. fetch cannot say whether the body went out: only the error code can.
  it.each([
    ['node:http', undefined],
    ['an injected fetch', globalThis.fetch],
  ])('an unreachable host is transient and not a possible duplicate, through %s', async (_via, fetch) => {
    const transport = mailgunTransport({
      apiKey: KEY,
      domain: DOMAIN,
      baseUrl: 'https://224.0.0.1',
      ...(fetch ? { fetch } : {}),
    });
    const error = (await service(transport)
      .send({ ...hello, retry: false })
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure, error.possibleDuplicate]).toEqual(['network', 'transient', false]);
    expect([error.endpoint, error.causeCode]).toEqual(['224.0.0.1:443', 'ENETUNREACH']);
  });

  it.each([
    ['node:http', undefined],
    ['an injected fetch', globalThis.fetch],
  ])('an API host that does not resolve is systemic (config) and named, through %s', async (_via, fetch) => {
    const logs: Record<string, unknown>[] = [];
    const transport = mailgunTransport({
      apiKey: KEY,
      domain: DOMAIN,
      baseUrl: 'https://api.mailroom-test.invalid',
      ...(fetch ? { fetch } : {}),
    });
    const error = (await service(transport, logs)
      .send(hello)
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure, error.attempts]).toEqual(['config', 'systemic', 1]);
    expect([error.endpoint, error.causeCode]).toEqual(['api.mailroom-test.invalid:443', 'ENOTFOUND']);
    expect(error.message).toContain('api.mailroom-test.invalid:443');
    expect(error.message).toContain('ENOTFOUND');
    const line = logs.find((l) => l.event === 'email.failed')?.error;
    expect(line).toMatchObject({
      code: 'config',
      causeCode: 'ENOTFOUND',
      endpoint: 'api.mailroom-test.invalid:443',
    });
  });

  it('https to a plain-HTTP server is systemic (tls), whatever OpenSSL calls it', async () => {
    const peer = await start();
    const port = new URL(peer.url).port;
    for (const fetch of [undefined, globalThis.fetch]) {
      const transport = clientFor(peer, {
        baseUrl: `https://127.0.0.1:${port}`,
        ...(fetch ? { fetch } : {}),
      });
      const error = (await service(transport)
        .send(hello)
        .catch((e: unknown) => e)) as EmailError;
      expect([error.code, error.failure, error.attempts]).toEqual(['tls', 'systemic', 1]);
      expect(error.message).toContain(`127.0.0.1:${port}`);
    }
    expect(peer.messages).toEqual([]);
  });

  it('reuses one keep-alive connection for sequential sends', async () => {
    const peer = await start();
    const mail = service(clientFor(peer));
    for (let i = 0; i < 10; i++) await mail.send(hello);
    expect(peer.messages).toHaveLength(10);
    expect(peer.connections).toBe(1);
  });

  it('stops a request in flight when the signal aborts, and does not retry', async () => {
    const peer = await start();
    peer.failNext({ delay: 1000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = (await service(clientFor(peer))
      .send({ ...hello, signal: controller.signal })
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.retryable]).toEqual(['aborted', false]);
    expect(peer.requests).toHaveLength(1);
    expect(peer.messages).toEqual([]);
  });

  it('never puts the API key in an error or a log line', async () => {
    const peer = await start();
    const logs: unknown[] = [];
    const wrong = 'key-0000-very-secret-wrong';
    const error = (await service(clientFor(peer, { apiKey: wrong }), logs)
      .send(hello)
      .catch((e: unknown) => e)) as EmailError;
    peer.failNext({ status: 500 });
    await service(clientFor(peer), logs).send(hello);
    const everything = JSON.stringify({ logs, message: error.message, stack: error.stack, error });
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(KEY);
    expect(everything).not.toContain(Buffer.from(`api:${wrong}`).toString('base64'));
  });

  it('calls the region endpoints through an injected fetch', async () => {
    const urls: string[] = [];
    const fetch: typeof globalThis.fetch = async (url) => {
      urls.push(String(url));
      return new Response('{"id":"<1@mg.acme.example>","message":"Queued. Thank you."}', { status: 200 });
    };
    for (const region of ['us', 'eu'] as const) {
      const result = await service(mailgunTransport({ apiKey: KEY, domain: DOMAIN, region, fetch })).send(
        hello,
      );
      expect(result.response).toEqual({ id: '<1@mg.acme.example>', message: 'Queued. Thank you.' });
    }
    expect(urls).toEqual([
      'https://api.mailgun.net/v3/mg.acme.example/messages',
      'https://api.eu.mailgun.net/v3/mg.acme.example/messages',
    ]);
  });

  it.each([
    ['plain http to another machine', 'http://mailgun-proxy.internal.example', 'must be https'],
    ['plain http to a private address', 'http://10.0.0.7:8080', 'must be https'],
    ['a user name and password', 'https://api:SECRET@api.mailgun.net', 'user name or password'],
    ['a query', 'https://api.mailgun.net/?token=SECRET', 'query'],
    ['an empty query', 'https://api.mailgun.net/?', 'query'],
    ['a fragment', 'https://api.mailgun.net/#SECRET', 'fragment'],
    ['a line break', 'https://api.mailgun.net\n/SECRET', 'line breaks'],
  ])('refuses a baseUrl with %s when built, without repeating it', (_, baseUrl, says) => {
    const error = (() => {
      try {
        mailgunTransport({ apiKey: KEY, domain: DOMAIN, baseUrl });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('baseUrl');
    expect((error as Error).message).toContain(says);
    expect((error as Error).message).not.toContain('SECRET');
  });

  it.each([
    ['http://127.0.0.1:8025', 'http://127.0.0.1:8025'],
    ['http://127.8.9.10', 'http://127.8.9.10'],
    ['http://localhost:8025/', 'http://localhost:8025'],
    ['http://[::1]:8025', 'http://[::1]:8025'],
    ['https://mailgun-proxy.internal.example/mailgun/', 'https://mailgun-proxy.internal.example/mailgun'],
  ])('accepts %s as baseUrl', (baseUrl, base) => {
    const transport = mailgunTransport({ apiKey: KEY, domain: DOMAIN, baseUrl });
    expect(transport.describe?.()).toBe(`mailgun ${base}/v3/${DOMAIN}`);
  });

  it('names a bad option when it is built', () => {
    expect(() => mailgunTransport({ apiKey: '', domain: DOMAIN })).toThrow(/^apiKey: /);
    expect(() => mailgunTransport({ apiKey: KEY, domain: 'nope' })).toThrow(/^domain: /);
    expect(() => mailgunTransport({ apiKey: KEY, domain: DOMAIN, region: 'asia' as never })).toThrow(
      /^region: /,
    );
    expect(() => mailgunTransport({ apiKey: KEY, domain: DOMAIN, baseUrl: 'file:///etc' })).toThrow(
      /^baseUrl: /,
    );
  });
});
