import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { memorySuppressionStore, suppressFromEvents } from '../../src/suppression.js';
import { createWebhookHandler, type DeliveryEvent } from '../../src/webhooks/index.js';
import { NEW_CERTIFICATE_FETCHES_PER_MINUTE, snsCertificates } from '../../src/webhooks/sns-certificates.js';
import { selfSignedCert } from '../helpers/certs.js';
import { listen, post, SES_TOPIC, type SignedRequest, SNS_CERT_URL, sample, sns } from './signing.js';

let snsKey: string;
let snsCert: string;
let otherKey: string;
let otherCert: string;
beforeAll(async () => {
  ({ key: snsKey, cert: snsCert } = await selfSignedCert('DNS:sns.amazonaws.com'));
  ({ key: otherKey, cert: otherCert } = await selfSignedCert('DNS:attacker.example'));
});

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

/** An SES endpoint whose fetch serves the SNS certificate (and an attacker's), recording every URL. */
async function endpoint(options: { toleranceMs?: number } = {}) {
  const events: DeliveryEvent[] = [];
  const errors: unknown[] = [];
  const fetched: string[] = [];
  const fetchStub = async (url: string) => {
    fetched.push(url);
    if (url === SNS_CERT_URL) return new Response(snsCert);
    if (url.startsWith('https://attacker.example/')) return new Response(otherCert);
    if (url.startsWith('https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription'))
      return new Response('<ok/>');
    return new Response('not found', { status: 404 });
  };
  const handler = createWebhookHandler({
    provider: 'ses',
    topicArns: [SES_TOPIC],
    fetch: fetchStub,
    onEvent: (event) => void events.push(event),
    onError: (error) => void errors.push(error),
    ...options,
  });
  const server = await listen((req, res) => handler(req, res));
  closers.push(server.close);
  return { url: server.url, events, errors, fetched };
}

describe('SES webhook (through SNS)', () => {
  it('normalises the documented notifications and events, fetching the certificate once', async () => {
    const { url, events, fetched } = await endpoint();
    for (const name of [
      'bounce',
      'transient-bounce',
      'complaint',
      'delivery',
      'delivery-delay',
      'open',
      'click',
    ]) {
      expect((await post(url, sns(snsKey, sample('ses', name)))).status, name).toBe(200);
    }
    expect(events.map((e) => [e.type, e.type === 'bounced' ? e.bounce : undefined, e.recipient])).toEqual([
      ['bounced', 'hard', 'recipient@example.com'],
      ['bounced', 'soft', 'full@example.com'],
      ['complained', undefined, 'richard@example.com'],
      ['delivered', undefined, 'jane@example.com'],
      ['deferred', undefined, 'recipient@example.com'],
      ['opened', undefined, 'recipient@example.com'],
      ['clicked', undefined, 'recipient@example.com'],
    ]);
    expect(events[0]).toMatchObject({
      provider: 'ses',
      providerMessageId: '0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000',
      messageId: '<custom-message-ID>',
      reason: 'smtp; 550 user unknown',
      diagnostic: '5.0.0',
    });
    expect(events[0]!.timestamp.toISOString()).toBe('2016-01-27T14:59:38.237Z');
    expect(events[0]!.raw).toEqual(sample('ses', 'bounce'));
    expect(events[3]).toMatchObject({ messageId: '<custom-message-ID@example.com>' });
    expect(events[6]).toMatchObject({
      url: 'http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html',
    });
    expect(fetched).toEqual([SNS_CERT_URL]);
  });

  it('a "not-spam" feedback report is no complaint; an open of an email to several says it does not know who', async () => {
    const { url, events } = await endpoint();
    const complaint = sample('ses', 'complaint') as { complaint: Record<string, unknown> };
    const notSpam = {
      ...complaint,
      complaint: { ...complaint.complaint, complaintFeedbackType: 'not-spam' },
    };
    expect((await post(url, sns(snsKey, notSpam))).status).toBe(200);
    expect(events).toEqual([]);
    const open = sample('ses', 'open') as { mail: Record<string, unknown> };
    const toTwo = { ...open, mail: { ...open.mail, destination: ['a@example.com', 'b@example.com'] } };
    expect((await post(url, sns(snsKey, toTwo))).status).toBe(200);
    expect(events.map((e) => [e.type, e.recipient, e.recipientKnown])).toEqual([
      ['opened', 'a@example.com', false],
      ['opened', 'b@example.com', false],
    ]);
  });

  it('a bounce of \\u212Aevin@ (Kelvin sign) is about that address and does not suppress kevin@; KEVIN@ does', async () => {
    const store = memorySuppressionStore();
    const suppress = suppressFromEvents(store);
    const events: DeliveryEvent[] = [];
    const handler = createWebhookHandler({
      provider: 'ses',
      topicArns: [SES_TOPIC],
      fetch: async () => new Response(snsCert),
      onEvent: async (event) => {
        events.push(event);
        await suppress(event);
      },
    });
    const server = await listen((req, res) => handler(req, res));
    closers.push(server.close);
    const bounce = sample('ses', 'bounce') as { bounce: Record<string, unknown> };
    const bounceOf = (...emailAddress: string[]) => ({
      ...bounce,
      bounce: { ...bounce.bounce, bouncedRecipients: emailAddress.map((a) => ({ emailAddress: a })) },
    });
    const open = sample('ses', 'open') as { mail: Record<string, unknown> };
    const openTo = (address: string) => ({ ...open, mail: { ...open.mail, destination: [address] } });
    const post1 = (message: unknown) => post(server.url, sns(snsKey, message));
    expect(
      (await post1(bounceOf('\u212Aevin@acme.example', '\u0130van@acme.example', 'not an address'))).status,
    ).toBe(200);
    expect((await post1(openTo('\u212Aevin@acme.example'))).status).toBe(200);
    expect(events.map((e) => [e.type, e.recipient])).toEqual([
      ['bounced', '\u212Aevin@acme.example'],
      ['bounced', '\u0130van@acme.example'],
      ['opened', '\u212Aevin@acme.example'],
    ]);
    expect(await store.isSuppressed('kevin@acme.example')).toBeUndefined();
    expect(await store.isSuppressed('ivan@acme.example')).toBeUndefined();
    expect((await post1(bounceOf('KEVIN@ACME.example'))).status).toBe(200);
    expect(events.at(-1)).toMatchObject({ recipient: 'kevin@acme.example' });
    expect(await store.isSuppressed('kevin@acme.example')).toMatchObject({ reason: 'hard-bounce' });
  });

  it('accepts SignatureVersion 1 (SHA-1)', async () => {
    const { url, events } = await endpoint();
    expect((await post(url, sns(snsKey, sample('ses', 'bounce'), { version: '1' }))).status).toBe(200);
    expect(events).toHaveLength(1);
  });

  it('refuses forged, tampered, replayed and stale messages, emitting nothing', async () => {
    const { url, events } = await endpoint();
    expect((await post(url, sns(otherKey, sample('ses', 'bounce')))).status).toBe(403);
    const genuine = sns(snsKey, sample('ses', 'bounce'));
    const tampered = { ...genuine, body: genuine.body.replace('recipient@example.com', 'ceo@example.com') };
    expect((await post(url, tampered)).status).toBe(403);
    expect((await post(url, sns(snsKey, sample('ses', 'bounce'), { ageMs: 6 * 60_000 }))).status).toBe(403);
    expect(events).toEqual([]);
    expect((await post(url, genuine)).status).toBe(200);
    expect((await post(url, genuine)).status).toBe(403);
    expect(events).toHaveLength(1);
  });

  it("refuses a genuine SNS message from a topic that is not ours, and a certificate from a host that is not SNS's", async () => {
    const { url, events, fetched } = await endpoint();
    const otherTopic = 'arn:aws:sns:us-east-1:999999999999:someone-elses-topic';
    expect((await post(url, sns(snsKey, sample('ses', 'bounce'), { topic: otherTopic }))).status).toBe(403);
    const attackerCert = 'https://attacker.example/SimpleNotificationService.pem';
    expect((await post(url, sns(otherKey, sample('ses', 'bounce'), { certUrl: attackerCert }))).status).toBe(
      403,
    );
    const lookalike = 'https://sns.us-east-1.amazonaws.com.attacker.example/cert.pem';
    expect((await post(url, sns(otherKey, sample('ses', 'bounce'), { certUrl: lookalike }))).status).toBe(
      403,
    );
    const plain = SNS_CERT_URL.replace('https:', 'http:');
    expect((await post(url, sns(snsKey, sample('ses', 'bounce'), { certUrl: plain }))).status).toBe(403);
    expect(events).toEqual([]);
    expect(fetched).toEqual([]);
  });

  it('confirms a genuine subscription by fetching its SubscribeURL, and a forged one not at all', async () => {
    const { url, events, fetched } = await endpoint();
    const forged = sns(otherKey, 'You have chosen to subscribe to the topic', {
      type: 'SubscriptionConfirmation',
    });
    expect((await post(url, forged)).status).toBe(403);
    expect(fetched.filter((u) => u.includes('ConfirmSubscription'))).toEqual([]);
    const genuine = sns(snsKey, 'You have chosen to subscribe to the topic', {
      type: 'SubscriptionConfirmation',
    });
    expect((await post(url, genuine)).status).toBe(200);
    const confirmed = fetched.filter((u) => u.includes('ConfirmSubscription'));
    expect(confirmed).toHaveLength(1);
    expect(confirmed[0]).toBe(JSON.parse(genuine.body).SubscribeURL);
    expect(events).toEqual([]);
  });

  it('refuses to start without topicArns, naming the option', () => {
    expect(() => createWebhookHandler({ provider: 'ses', topicArns: [], onEvent: () => {} })).toThrow(
      /^topicArns:/,
    );
    expect(() =>
      createWebhookHandler({ provider: 'ses', topicArns: ['ses-events'], onEvent: () => {} }),
    ).toThrow(/^topicArns:/);
  });
});

describe('SES webhook: fetching the signing certificate', () => {
  /**
   * A local server standing in for SNS's certificate host: `/good.pem` serves the certificate,
   * anything else answers 500, each after `delayMs`. The endpoint's fetch sends every certificate
   * URL there, keeping its path; `hits` counts the paths asked for.
   */
  async function certificateHost(delayMs = 0) {
    const hits: string[] = [];
    const state = { down: false };
    const host = await listen((req, res) => {
      hits.push(req.url ?? '');
      setTimeout(() => {
        if (req.url === '/good.pem' && !state.down) res.end(snsCert);
        else res.writeHead(500).end('down');
      }, delayMs);
    });
    closers.push(host.close);
    const events: DeliveryEvent[] = [];
    const handler = createWebhookHandler({
      provider: 'ses',
      topicArns: [SES_TOPIC],
      fetch: (url) => fetch(host.url + new URL(url).pathname),
      onEvent: (event) => void events.push(event),
    });
    const server = await listen((req, res) => handler(req, res));
    closers.push(server.close);
    return { url: server.url, hits, events, state };
  }
  const certUrl = (name: string) => `https://sns.us-east-1.amazonaws.com/${name}.pem`;
  const forged = (name: string) => sns(otherKey, sample('ses', 'bounce'), { certUrl: certUrl(name) });

  // A certificate that cannot be fetched leaves the message unverified for now: 503, which SNS
  // retries (a 4xx it never does), whether the message is forged or genuine.
  it('N forged messages naming a certificate URL that fails make one fetch, not N', async () => {
    const { url, hits, events } = await certificateHost();
    for (let i = 0; i < 5; i++) expect((await post(url, forged('failing'))).status).toBe(503);
    expect(hits).toEqual(['/failing.pem']);
    expect(events).toEqual([]);
  });

  it('messages arriving together share one fetch of the same URL, failing or not', async () => {
    const { url, hits, events } = await certificateHost(100);
    const answers = await Promise.all([
      ...Array.from({ length: 10 }, () => post(url, forged('failing'))),
      ...Array.from({ length: 10 }, () =>
        post(url, sns(snsKey, sample('ses', 'bounce'), { certUrl: certUrl('good') })),
      ),
    ]);
    expect(answers.map((a) => a.status)).toEqual([...Array(10).fill(503), ...Array(10).fill(200)]);
    expect(hits.sort()).toEqual(['/failing.pem', '/good.pem']);
    expect(events).toHaveLength(10);
  });

  it('fetches a URL that failed again after a minute', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { url, hits } = await certificateHost();
      expect((await post(url, forged('failing'))).status).toBe(503);
      vi.setSystemTime(Date.now() + 59_000);
      expect((await post(url, forged('failing'))).status).toBe(503);
      expect(hits).toHaveLength(1);
      vi.setSystemTime(Date.now() + 2_000);
      expect((await post(url, forged('failing'))).status).toBe(503);
      expect(hits).toEqual(['/failing.pem', '/failing.pem']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a genuine notification that arrives while the certificate cannot be fetched is answered 503, and its retry is delivered', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { url, events, state } = await certificateHost();
      state.down = true;
      const genuine = sns(snsKey, sample('ses', 'bounce'), { certUrl: certUrl('good') });
      const first = await post(url, genuine);
      expect([first.status, first.headers.get('retry-after')]).toEqual([503, '60']);
      expect(events).toEqual([]);
      // SNS sends it again later (its delivery policy); by then the certificate host is back.
      state.down = false;
      vi.setSystemTime(Date.now() + 61_000);
      expect((await post(url, genuine)).status).toBe(200);
      expect(events.map((e) => e.type)).toEqual(['bounced']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('gives up on a certificate host that never answers, whether or not the fetch heeds its signal', async () => {
    const hits: string[] = [];
    const silent = await listen((req) => void hits.push(req.url ?? '')); // never answers
    closers.push(silent.close);
    const heeding = snsCertificates(
      (url, signal) => fetch(silent.url + new URL(url).pathname, { signal }),
      200,
    );
    const deaf = snsCertificates((url) => fetch(silent.url + new URL(url).pathname), 200);
    for (const certificate of [heeding, deaf]) {
      await expect(certificate(certUrl('slow'))).rejects.toThrow(/no answer within 200 ms/);
      // Remembered as failed: the next request is answered at once, with no fetch.
      await expect(certificate(certUrl('slow'))).rejects.toThrow(/failed less than a minute ago/);
    }
    expect(hits).toEqual(['/slow.pem', '/slow.pem']);
  });

  it('keeps the certificate in use while many failing URLs are asked for at once', async () => {
    const { url, hits, events } = await certificateHost(100);
    const genuine = () => sns(snsKey, sample('ses', 'bounce'), { certUrl: certUrl('good') });
    expect((await post(url, genuine())).status).toBe(200);
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post(url, forged(`failing-${i}`))),
    );
    expect(answers.every((a) => a.status === 503)).toBe(true);
    expect((await post(url, genuine())).status).toBe(200);
    expect(hits.filter((h) => h === '/good.pem')).toHaveLength(1);
    // The good one and 9 more: the minute's budget of new URLs; the other 31 fetched nothing.
    expect(hits).toHaveLength(NEW_CERTIFICATE_FETCHES_PER_MINUTE);
    expect(events).toHaveLength(2);
  });

  it('fetches at most 10 new certificate URLs a minute; a genuine message held back by that is answered 503 and delivered on retry', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { url, hits, events } = await certificateHost();
      for (let i = 0; i < 12; i++) expect((await post(url, forged(`new-${i}`))).status).toBe(503);
      expect(hits).toHaveLength(NEW_CERTIFICATE_FETCHES_PER_MINUTE);
      const genuine = sns(snsKey, sample('ses', 'bounce'), { certUrl: certUrl('good') });
      const first = await post(url, genuine);
      expect([first.status, first.headers.get('retry-after')]).toEqual([503, '60']);
      expect(hits).toHaveLength(NEW_CERTIFICATE_FETCHES_PER_MINUTE);
      // A URL refused by the budget was not fetched, so it is not remembered as failed.
      vi.setSystemTime(Date.now() + 60_000);
      expect((await post(url, genuine)).status).toBe(200);
      expect(hits.at(-1)).toBe('/good.pem');
      expect(events.map((e) => e.type)).toEqual(['bounced']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fetches nothing for a message that fails a check needing no certificate', async () => {
    const { url, hits } = await certificateHost();
    const bounce = sample('ses', 'bounce');
    const failing = { certUrl: certUrl('failing') };
    const refused: [string, SignedRequest][] = [
      ['stale', sns(otherKey, bounce, { ...failing, ageMs: 6 * 60_000 })],
      ['another topic', sns(otherKey, bounce, { ...failing, topic: 'arn:aws:sns:us-east-1:999999999999:x' })],
      [
        'not a certificate URL',
        sns(otherKey, bounce, { certUrl: 'https://sns.us-east-1.amazonaws.com/x.txt' }),
      ],
      ['not JSON', { body: 'nonsense', headers: {} }],
    ];
    /** The forged message with some fields changed; `undefined` leaves a field out. */
    const edit = (changes: Record<string, string | undefined>): SignedRequest => {
      const request = forged('failing');
      return { ...request, body: JSON.stringify({ ...JSON.parse(request.body), ...changes }) };
    };
    refused.push(
      ['an unknown Type', edit({ Type: 'Surprise' })],
      ['SignatureVersion 3', edit({ SignatureVersion: '3' })],
      ['no Signature', edit({ Signature: undefined })],
      ['a Signature that is not base64', edit({ Signature: 'not base64!' })],
      ['no MessageId', edit({ MessageId: undefined })],
    );
    for (const [name, request] of refused) expect((await post(url, request)).status, name).toBe(403);
    expect(hits).toEqual([]);
  });
});
