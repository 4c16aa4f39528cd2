/**
 * sendBatch through Mailgun's batch sending (issue 13 §7): entries identical but for their recipient
 * share a request with recipient variables (up to 1 000 a request), against the local Mailgun peer;
 * everyone still gets what a single send would give, and each entry its own outcome.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BatchOutcome } from '../src/batch.js';
import { isEmailError } from '../src/errors.js';
import { createMessage } from '../src/message.js';
import { memoryPreferenceStore } from '../src/preferences.js';
import { EmailService, type EmailServiceOptions, type SentEvent } from '../src/service.js';
import { memorySuppressionStore } from '../src/suppression.js';
import { defineTemplate } from '../src/templates/define.js';
import type { Transport } from '../src/transport.js';
import { failoverTransport } from '../src/transports/failover.js';
import { holdTransport } from '../src/transports/hold.js';
import { mailgunTransport } from '../src/transports/mailgun.js';
import { memoryTransport } from '../src/transports/memory.js';
import { stagingTransport } from '../src/transports/staging.js';
import {
  copies,
  type MailgunReceived,
  recipientVariables,
  startMailgunPeer,
} from './helpers/mailgun-peer.js';
import { optedIn } from './helpers/opted-in.js';

const KEY = 'key-3ax6xnjp29jd6fds4gc373sgvjxteol0';
const DOMAIN = 'mg.acme.example';
const from = 'Acme <no-reply@acme.example>';
const notice = defineTemplate({
  name: 'notice',
  category: 'product',
  fields: { username: 'string' },
  subject: 'Scheduled maintenance',
  html: '<p>Hi <%= it.username %>, we will be down for an hour.</p>',
});
const address = (i: number) => `user-${i}@example.com`;

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function peerAndTransport() {
  const peer = await startMailgunPeer({ apiKey: KEY, domains: [DOMAIN] });
  closers.push(() => peer.close());
  const transport = mailgunTransport({ apiKey: KEY, domain: DOMAIN, baseUrl: peer.url });
  closers.push(() => transport.close());
  return { peer, transport };
}

function service(transport: Transport, options: Partial<EmailServiceOptions> = {}) {
  return new EmailService({ transport, from, templates: [notice], retry: false, ...options });
}

/** The `to` addresses of a request, as plain addresses. */
const toOf = (m: MailgunReceived) => copies(m).flatMap((copy) => copy.to);
const statuses = (outcomes: readonly BatchOutcome[]) => outcomes.map((o) => o.status);

describe('sendBatch with Mailgun batch sending', () => {
  it('sends 2 500 recipients of the same email in 3 requests, each recipient a copy of their own', async () => {
    const { peer, transport } = await peerAndTransport();
    const mail = service(transport);
    const sent: SentEvent[] = [];
    mail.on('sent', (event) => sent.push(event));
    const entries = Array.from({ length: 2500 }, (_, i) => ({ to: address(i), data: { username: 'there' } }));

    const result = await mail.sendBatch(notice, entries, { concurrency: 2 });

    expect(result).toMatchObject({ total: 2500, sent: 2500, failed: 0, skipped: 0, suppressed: 0 });
    expect(peer.messages.map((m) => m.fields.to?.length)).toEqual([1000, 1000, 500]);
    for (const m of peer.messages) {
      // Recipient variables for every address: Mailgun sends each its own copy, To: them alone.
      const variables = recipientVariables(m.fields['recipient-variables'] ?? []);
      expect(Object.keys(variables ?? {})).toEqual(m.fields.to);
      expect(copies(m).every((copy) => copy.to.length === 1)).toBe(true);
      expect(m.fields.subject).toEqual(['Scheduled maintenance']);
      expect(m.fields.html?.[0]).toContain('Hi there,');
      expect(m.fields['h:Message-Id']).toHaveLength(1);
    }
    expect(peer.messages.flatMap(toOf).sort()).toEqual(entries.map((e) => e.to).sort());
    // Each entry: sent, to its own address, with its request's Mailgun id and Message-ID.
    const byAddress = new Map(peer.messages.flatMap((m) => toOf(m).map((to) => [to, m] as const)));
    result.outcomes.forEach((outcome, i) => {
      expect(outcome.status).toBe('sent');
      if (outcome.status !== 'sent') return;
      const request = byAddress.get(address(i))!;
      expect(outcome.result.accepted).toEqual([address(i)]);
      expect(outcome.result.providerMessageId).toBe(request.id);
      expect(outcome.result.messageId).toBe(request.fields['h:Message-Id']![0]);
    });
    expect(sent).toHaveLength(2500);
    expect(new Set(sent.map((e) => e.message.to[0]!.address)).size).toBe(2500);
  });

  it('sends personalised entries on their own and shares a request among identical ones', async () => {
    const { peer, transport } = await peerAndTransport();
    const mail = service(transport);
    const entries = Array.from({ length: 30 }, (_, i) => ({
      to: address(i),
      data: { username: i % 3 === 0 ? `User ${i}` : 'team' },
    }));

    const result = await mail.sendBatch(notice, entries);

    expect(result.sent).toBe(30);
    const shared = peer.messages.filter((m) => m.fields['recipient-variables']);
    const single = peer.messages.filter((m) => !m.fields['recipient-variables']);
    expect(shared).toHaveLength(1);
    expect(shared[0]!.fields.to).toHaveLength(20);
    expect(shared[0]!.fields.html?.[0]).toContain('Hi team,');
    expect(single).toHaveLength(10);
    for (const m of single) {
      const i = Number(/user-(\d+)@/.exec(m.fields.to![0]!)![1]);
      expect(m.fields.html?.[0]).toContain(`Hi User ${i},`);
    }
  });

  it('never puts a suppressed or opted-out recipient in a request', async () => {
    const { peer, transport } = await peerAndTransport();
    const suppressions = memorySuppressionStore();
    const preferences = memoryPreferenceStore();
    const left = new Set<number>();
    for (let i = 0; i < 1200; i++) {
      if (i % 10 === 1) await suppressions.suppress(address(i), 'hard-bounce');
      else if (i % 10 === 2) await preferences.set(address(i), 'product', false);
      else continue;
      left.add(i);
    }
    const mail = service(transport, { suppressions, preferences });
    const entries = Array.from({ length: 1200 }, (_, i) => ({ to: address(i), data: { username: 'there' } }));

    const result = await mail.sendBatch(notice, entries);

    expect(result).toMatchObject({ sent: 1200 - left.size, suppressed: left.size, failed: 0 });
    const reached = new Set(peer.messages.flatMap(toOf));
    expect(reached.size).toBe(1200 - left.size);
    for (const i of left) {
      expect(reached.has(address(i))).toBe(false);
      expect(result.outcomes[i]).toMatchObject({ status: 'suppressed' });
    }
    expect(peer.messages.map((m) => m.fields.to?.length)).toEqual([960]);
  });

  it('fails every recipient of a refused request and sends the others', async () => {
    const { peer, transport } = await peerAndTransport();
    peer.failNext({ status: 400, body: '{"message":"to parameter is not a valid address"}' });
    const mail = service(transport);
    const failedEvents: unknown[] = [];
    mail.on('failed', (event) => failedEvents.push(event.error));
    const entries = Array.from({ length: 2500 }, (_, i) => ({ to: address(i), data: { username: 'there' } }));

    // One request at a time, so the refused one is the first thousand.
    const result = await mail.sendBatch(notice, entries, { concurrency: 1 });

    expect(result).toMatchObject({ sent: 1500, failed: 1000 });
    for (const outcome of result.outcomes.slice(0, 1000)) {
      expect(outcome.status).toBe('failed');
      if (outcome.status !== 'failed') continue;
      expect(isEmailError(outcome.error)).toBe(true);
      expect(outcome.error).toMatchObject({ code: 'rejected', status: 400, transport: 'mailgun' });
    }
    expect(statuses(result.outcomes.slice(1000)).every((s) => s === 'sent')).toBe(true);
    expect(failedEvents).toHaveLength(1000);
    expect(peer.messages.flatMap(toOf)).toEqual(entries.slice(1000).map((e) => e.to));
  });

  it('reports each of 10 000 recipients: sent, opted out, in a refused request', async () => {
    const { peer, transport } = await peerAndTransport();
    const preferences = memoryPreferenceStore();
    const optedOut = new Set<number>();
    for (let i = 7; i < 10_000; i += 50) {
      optedOut.add(i);
      await preferences.set(address(i), 'product', false);
    }
    peer.failNext({ status: 400, body: '{"message":"to parameter is not a valid address"}' });
    const mail = service(transport, { preferences });
    const entries = Array.from({ length: 10_000 }, (_, i) => ({
      to: address(i),
      data: { username: 'there' },
    }));

    const result = await mail.sendBatch(notice, entries, { concurrency: 1 });

    // The first request (the first 1 000 who want it) is refused; the rest go in nine more.
    const wanted = entries.map((_, i) => i).filter((i) => !optedOut.has(i));
    const refused = new Set(wanted.slice(0, 1000));
    expect(result).toMatchObject({ total: 10_000, suppressed: 200, failed: 1000, sent: 8800, skipped: 0 });
    result.outcomes.forEach((outcome, i) => {
      const expected = optedOut.has(i) ? 'suppressed' : refused.has(i) ? 'failed' : 'sent';
      expect(outcome.status, address(i)).toBe(expected);
    });
    expect(peer.requests.map((r) => r.status)).toEqual([400, ...Array(9).fill(200)]);
    expect(peer.messages.flatMap(toOf)).toEqual(wanted.slice(1000).map(address));
  });

  it('retries a request that failed transiently as a whole, with the same Message-ID', async () => {
    const { peer, transport } = await peerAndTransport();
    peer.failNext({ status: 503 });
    const mail = new EmailService({
      transport,
      from,
      templates: [notice],
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    });
    const retrying: number[] = [];
    mail.on('retrying', (event) => retrying.push(event.message.to.length));
    const entries = Array.from({ length: 5 }, (_, i) => ({ to: address(i), data: { username: 'there' } }));

    const result = await mail.sendBatch(notice, entries);

    expect(result.sent).toBe(5);
    expect(retrying).toEqual([5]);
    expect(peer.requests.map((r) => r.status)).toEqual([503, 200]);
    for (const outcome of result.outcomes) expect(outcome).toMatchObject({ result: { attempts: 2 } });
  });

  it('skips the requests not started when the batch is aborted', async () => {
    const { peer, transport } = await peerAndTransport();
    const mail = service(transport);
    const abort = new AbortController();
    const entries = Array.from({ length: 2500 }, (_, i) => ({ to: address(i), data: { username: 'there' } }));

    const result = await mail.sendBatch(notice, entries, {
      concurrency: 1,
      signal: abort.signal,
      onProgress: (p) => {
        if (p.sent === 1000) abort.abort();
      },
    });

    expect(result).toMatchObject({ sent: 1000, skipped: 1500, done: 2500 });
    expect(peer.messages).toHaveLength(1);
    expect(statuses(result.outcomes.slice(1000)).every((s) => s === 'skipped')).toBe(true);
  });

  it('sends each entry on its own with batching off, or with its own signal or retry rule', async () => {
    const { peer, transport } = await peerAndTransport();
    const mail = service(transport);
    const entries = Array.from({ length: 6 }, (_, i) => ({ to: address(i), data: { username: 'there' } }));

    await mail.sendBatch(notice, entries, { batching: false });
    expect(peer.messages.map((m) => m.fields.to)).toEqual(entries.map((e) => [e.to]));
    expect(peer.messages.some((m) => m.fields['recipient-variables'])).toBe(false);

    peer.messages.length = 0;
    const own = entries.map((e, i) => (i < 2 ? { ...e, retry: false as const } : e));
    await mail.sendBatch(notice, own);
    expect(peer.messages.map((m) => m.fields.to?.length)).toEqual([1, 1, 4]);
  });

  it('shares a request only among entries due at the same time, each with its o:deliverytime; quiet hours asked per entry', async () => {
    const { peer, transport } = await peerAndTransport();
    const soon = new Date(Date.now() + 3_600_000);
    const later = new Date(Date.now() + 7_200_000);
    const quiet = new Date(Date.now() + 10_800_000);
    const mail = service(transport, {
      quietHours: (recipient) => (recipient === address(5) ? quiet : undefined),
    });
    const entries = Array.from({ length: 6 }, (_, i) => ({
      to: address(i),
      data: { username: 'there' },
      sendAt: i < 3 ? soon : later,
    }));

    const result = await mail.sendBatch(notice, entries);

    expect(result).toMatchObject({ sent: 6, failed: 0 });
    const rfc2822 = (at: Date) => at.toUTCString().replace('GMT', '+0000');
    expect(peer.messages.map((m) => [m.fields.to, m.fields['o:deliverytime']])).toEqual([
      [[address(0), address(1), address(2)], [rfc2822(soon)]],
      [[address(3), address(4)], [rfc2822(later)]],
      [[address(5)], [rfc2822(quiet)]],
    ]);
  });

  it('sends emails with their own unsubscribe link, several recipients or cc one by one', async () => {
    const { peer, transport } = await peerAndTransport();
    const mail = service(transport, {
      preferences: optedIn(),
      unsubscribe: {
        url: 'https://acme.example/unsubscribe',
        secrets: ['a-secret-of-at-least-32-characters!!'],
      },
    });
    const entries = Array.from({ length: 4 }, (_, i) => ({ to: address(i), data: { username: 'there' } }));

    const result = await mail.sendBatch(notice, entries);

    expect(result.sent).toBe(4);
    expect(peer.messages).toHaveLength(4);
    // Each link is signed for its one recipient: different headers, so no request is shared.
    const links = peer.messages.map((m) => m.fields['h:List-Unsubscribe']?.[0]);
    expect(new Set(links).size).toBe(4);

    peer.messages.length = 0;
    const plain = service(transport);
    await plain.sendBatch([
      { to: [address(1), address(2)], subject: 'Hello', text: 'Hi' },
      { to: address(3), cc: address(4), subject: 'Hello', text: 'Hi' },
      { to: address(5), subject: 'Hello', text: 'Hi' },
      { to: address(6), subject: 'Hello', text: 'Hi' },
      { to: address(5), subject: 'Hello', text: 'Hi' },
    ]);
    expect(peer.messages.map((m) => [m.fields.to, Boolean(m.fields['recipient-variables'])])).toEqual([
      [[address(1), address(2)], false],
      [[address(3)], false],
      [[address(5), address(6)], true],
      [[address(5)], false], // the same person twice: the second on its own, as it would be alone
    ]);
  });

  it('refuses more than 1 000 recipients and malformed recipient-variables, as Mailgun does', async () => {
    const { peer, transport } = await peerAndTransport();
    const post = (fields: [string, string][]) =>
      fetch(`${peer.url}/v3/${DOMAIN}/messages`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`api:${KEY}`).toString('base64')}` },
        body: new URLSearchParams([['from', from], ['subject', 'Hi'], ['text', 'Hi'], ...fields]),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const many = Array.from({ length: 1001 }, (_, i): [string, string] => ['to', address(i)]);

    expect(await post(many)).toEqual({ status: 400, body: { message: 'Too many recipients; max is 1000' } });
    for (const bad of ['{"a@example.com":', '["a@example.com"]', '{"a@example.com":[]}']) {
      expect(
        await post([
          ['to', 'a@example.com'],
          ['recipient-variables', bad],
        ]),
      ).toEqual({
        status: 400,
        body: { message: "'recipient-variables' parameter is not a valid JSON" },
      });
    }
    expect(
      await post([
        ['to', 'a@example.com'],
        ['recipient-variables', '{"a@example.com":{}}'],
      ]),
    ).toMatchObject({
      status: 200,
    });

    // The transport never asks for more than Mailgun takes.
    expect(transport.batchLimit).toBe(1000);
    const mail = service(transport);
    const tooMany = mail.sendBatch(
      Array.from({ length: 1001 }, (_, i) => ({ to: address(i), subject: 'Hi', text: 'Hi' })),
    );
    await expect(tooMany).resolves.toMatchObject({ sent: 1001 });
    expect(peer.messages.slice(1).map((m) => m.fields.to?.length)).toEqual([1000, 1]);
  });
});

describe('mailgunTransport.sendBatch', () => {
  it('refuses what would not give every recipient the same copy, before any request', async () => {
    const { peer, transport } = await peerAndTransport();
    const base = { from, subject: 'Hi', text: 'Hi' };
    const cases = [
      { ...base, to: [address(1)], cc: address(2) },
      { ...base, to: [address(1), address(1).toUpperCase()] },
      { ...base, to: Array.from({ length: 1001 }, (_, i) => address(i)) },
      { ...base, to: [address(1)], attachments: [{ filename: 'a.txt', content: 'a' }] },
    ];
    for (const input of cases) {
      const message = createMessage(input);
      await expect(transport.sendBatch!(message, { attempt: 1 })).rejects.toBeInstanceOf(TypeError);
    }
    expect(peer.requests).toHaveLength(0);
  });
});

describe('sendBatch behind wrappers', () => {
  const entries = Array.from({ length: 3 }, (_, i) => ({ to: address(i), data: { username: 'there' } }));

  it('offers no batch API behind staging, failover or the hold', async () => {
    const { transport } = await peerAndTransport();
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-batch-hold-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const wrappers = [
      stagingTransport({ transport, redirectTo: 'qa@acme.example' }),
      failoverTransport([transport]),
      holdTransport({ transport, dir, onFirstWrite: false }),
      memoryTransport(),
    ];
    for (const wrapper of wrappers) {
      expect(wrapper.sendBatch).toBeUndefined();
      expect(wrapper.batchLimit).toBeUndefined();
    }
  });

  it('staging still redirects every recipient, one email per entry', async () => {
    const { peer, transport } = await peerAndTransport();
    const mail = service(stagingTransport({ transport, redirectTo: 'qa@acme.example' }));

    const result = await mail.sendBatch(notice, entries);

    expect(result.sent).toBe(3);
    expect(peer.messages.map((m) => m.fields.to)).toEqual([
      ['qa@acme.example'],
      ['qa@acme.example'],
      ['qa@acme.example'],
    ]);
    expect(peer.messages.map((m) => m.fields['h:X-Mailroom-Original-Recipients'])).toEqual(
      entries.map((e) => [e.to]),
    );
  });

  it('the hold still holds each entry, and the memory outbox shows one email per recipient', async () => {
    const { peer, transport } = await peerAndTransport();
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-batch-hold-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const hold = holdTransport({ transport, dir, onFirstWrite: false });

    expect((await service(hold).sendBatch(notice, entries)).sent).toBe(3);
    expect(peer.messages).toHaveLength(0);
    expect((await hold.list()).map((h) => h.to).sort()).toEqual(entries.map((e) => [e.to]));

    const memory = memoryTransport();
    await service(memory).sendBatch(notice, entries);
    expect(memory.outbox.map((c) => c.message.to.map((a) => a.address))).toEqual(entries.map((e) => [e.to]));
  });
});
