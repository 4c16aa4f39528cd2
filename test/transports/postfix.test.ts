/**
 * smtpTransport through a real MTA: Postfix on loopback (test/helpers/postfix-server.ts) relaying
 * to an smtp-server sink in this process, for what only a real MTA shows: a DKIM signature that
 * must survive its relaying, its own per-recipient replies and size limit, and the addresses it
 * routes by (the percent hack and bang paths).
 */
import { randomBytes } from 'node:crypto';
import { createTransport } from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type EmailError,
  EmailService,
  isEmailError,
  isMessageError,
  type MessageError,
  type RetryOptions,
  type SentEvent,
  smtpTransport,
} from '../../src/index.js';
import { dkimSigner } from '../../src/transports/dkim.js';
import { wireBytes } from '../../src/transports/nodemailer-mapping.js';
import { DKIMPY, dkimpyVerdicts, mailauthVerdicts, rsaKey, SKIP_DKIMPY } from '../helpers/dkim-verify.js';
import { type PostfixServer, startPostfixServer } from '../helpers/postfix-server.js';
import { fromMime } from '../helpers/received.js';
import { type ReceivedSmtp, type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const KEY = rsaKey(2048, 'pkcs8', 'acme.example', 'mail2026');
const DKIM = { domainName: KEY.domainName, keySelector: KEY.keySelector, privateKey: KEY.privateKey };
const SIZE_LIMIT = 200_000;
/** The MTA's own domain (in its mydestination, as Postfix's default puts $myhostname there). */
const OWN_DOMAIN = 'mta.mailroom.test';

const ALICE = 'alice@example.com';
const CAROL = 'carol@example.org';
const DAVE = 'dave@example.org';
const ERIN = 'erin@example.org';
const FRANK = 'frank@example.org';

let sink: SmtpPeer;
let postfix: PostfixServer;
beforeAll(async () => {
  // No 8BITMIME at the sink: Postfix must send 7-bit or convert what is not.
  sink = await startSmtpPeer({ starttls: false, hide8BITMIME: true });
  postfix = await startPostfixServer({
    relayPort: sink.port,
    main: { message_size_limit: String(SIZE_LIMIT), mydestination: OWN_DOMAIN },
    recipientAccess: {
      [DAVE]: '550 5.1.1 No such user here',
      [ERIN]: '550 5.1.1 No such user here',
      [CAROL]: '450 4.2.0 Greylisted, try again later',
      [FRANK]: '450 4.2.0 Greylisted, try again later',
    },
  });
}, 30_000);
afterAll(async () => {
  await postfix?.stop();
  await sink?.close();
});

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  sink.messages.length = 0;
});

/** A service sending through Postfix, with the messages it sent. */
function serviceThroughPostfix(options: { dkim?: boolean; retry?: RetryOptions; from?: string } = {}) {
  const transport = smtpTransport({
    host: postfix.host,
    port: postfix.port,
    tls: 'none',
    ...(options.dkim ? { dkim: DKIM } : {}),
  });
  closers.push(() => transport.close());
  const mail = new EmailService({
    transport,
    from: options.from ?? 'Acme <no-reply@acme.example>',
    retry: options.retry ?? { maxAttempts: 1 },
  });
  const sent: SentEvent[] = [];
  mail.on('sent', (e) => sent.push(e));
  return { mail, sent };
}

/** Waits until the sink holds `count` messages (Postfix relays after it accepted). */
async function relayed(count: number, withinMs = 20_000): Promise<ReceivedSmtp[]> {
  const until = Date.now() + withinMs;
  while (sink.messages.length < count) {
    if (Date.now() > until) {
      const log = postfix.log().trim().split('\n').slice(-15).join('\n');
      throw new Error(`Postfix relayed ${sink.messages.length} of ${count} messages; its log:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return [...sink.messages];
}

async function failure(sending: Promise<unknown>): Promise<EmailError> {
  const error = await sending.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isEmailError(error)) throw new Error(`expected an EmailError, got ${String(error)}`);
  return error;
}

describe('DKIM through Postfix to a server without 8BITMIME', () => {
  const email = {
    to: 'jane@example.com',
    subject: 'Grüße aus Zürich – 你好 🎉',
    text: `Grüße, 你好, مرحبا 🎉\n${'long line '.repeat(120)}\nend`,
    html: `<p>Grüße · 你好 · مرحبا · 🎉</p><p>${'y'.repeat(3000)}</p>`,
    attachments: [{ filename: 'résumé.bin', content: randomBytes(20_000) }],
  };
  const from = 'Zoë Ålander – Acme <no-reply@acme.example>';

  it('the copy Postfix relays passes mailauth and dkimpy, and is what was sent under its Received header', async () => {
    const { mail, sent } = serviceThroughPostfix({ dkim: true, from });
    const result = await mail.send(email);
    const [copy] = await relayed(1);
    expect(copy!.envelope).toEqual({ mailFrom: 'no-reply@acme.example', rcptTo: ['jane@example.com'] });
    const raw = copy!.raw;

    // Postfix put its trace header on top, and changed nothing else: the bytes mailroom sent follow.
    const [received, ...rest] = raw.toString('latin1').split(/\r\n(?![ \t])/);
    expect(received).toMatch(/^Received: from .*\r\n\tby mta\.mailroom\.test \(Postfix\) with ESMTP id /s);
    const signed = await wireBytes(sent[0]!.message, dkimSigner(DKIM));
    expect(Buffer.from(rest.join('\r\n'), 'latin1').equals(signed)).toBe(true);

    expect(await mailauthVerdicts(raw, KEY)).toEqual([[KEY.domainName, 'pass']]);
    if (!SKIP_DKIMPY) expect(dkimpyVerdicts([raw], KEY)).toEqual(['pass']);

    const parsed = await fromMime(raw);
    expect(parsed.messageId).toBe(result.messageId);
    expect([parsed.fromName, parsed.from, parsed.subject]).toEqual([
      'Zoë Ålander – Acme',
      'no-reply@acme.example',
      email.subject,
    ]);
    expect(parsed.text).toBe(email.text);
    expect(parsed.html).toBe(email.html);
    expect(
      parsed.attachments.map((a) => [a.filename, a.content.equals(email.attachments[0]!.content)]),
    ).toEqual([['résumé.bin', true]]);
  });

  it.skipIf(SKIP_DKIMPY)(
    `the verifiers see Postfix's copy, not a rubber stamp: a body byte changed after it fails both ${DKIMPY.available ? '' : `(${DKIMPY.reason})`}`,
    async () => {
      const { mail } = serviceThroughPostfix({ dkim: true, from });
      await mail.send({ ...email, text: 'short and plain' });
      const [copy] = await relayed(1);
      const tampered = Buffer.from(
        copy!.raw.toString('latin1').replace('short and plain', 'short and plaiN'),
        'latin1',
      );
      expect(tampered.equals(copy!.raw)).toBe(false);
      expect(await mailauthVerdicts(tampered, KEY)).toEqual([[KEY.domainName, 'neutral']]);
      expect(dkimpyVerdicts([tampered, copy!.raw], KEY)).toEqual([expect.stringMatching(/^fail/), 'pass']);
    },
  );

  it('nothing mailroom sends is 8-bit, so Postfix has nothing to downgrade', async () => {
    const { mail } = serviceThroughPostfix({ dkim: true, from });
    await mail.send(email);
    const [copy] = await relayed(1);
    // Every byte is 7-bit and no line is over 998 (RFC 5322 §2.1.1): nothing a relay must convert
    // for a server without 8BITMIME, so nothing that could break the signature on the way.
    expect(copy!.raw.every((byte) => byte < 0x80)).toBe(true);
    expect(
      Math.max(
        ...copy!.raw
          .toString('latin1')
          .split('\r\n')
          .map((l) => l.length),
      ),
    ).toBeLessThanOrEqual(998);
    expect(copy!.raw.toString('latin1')).not.toMatch(/^Content-Transfer-Encoding: *8bit/im);
  });
});

describe("Postfix's replies per recipient", () => {
  it('accepted, refused (550 5.1.1) and deferred (450 4.2.0) recipients are each named with the reply Postfix sent', async () => {
    const { mail } = serviceThroughPostfix({ retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    const result = await mail.send({ to: [ALICE, DAVE, CAROL], subject: 'Mixed', text: 'Hi all' });

    expect(result).toMatchObject({ accepted: [ALICE], rejected: [DAVE], deferred: [CAROL], attempts: 2 });
    expect(result.refusals?.map((r) => [r.address, r.failure, r.status])).toEqual([
      [DAVE, 'permanent', 550],
      [CAROL, 'transient', 450],
    ]);
    // Postfix's own words: its enhanced status code, what it refused, then the table's text.
    expect(result.refusals?.map((r) => r.response)).toEqual([
      `550 5.1.1 <${DAVE}>: Recipient address rejected: No such user here`,
      `450 4.2.0 <${CAROL}>: Recipient address rejected: Greylisted, try again later`,
    ]);
    const copies = await relayed(1);
    expect(copies.map((c) => c.envelope.rcptTo)).toEqual([[ALICE]]);
  });

  it('every recipient refused for good: a permanent, not retryable error with the 550s', async () => {
    const { mail } = serviceThroughPostfix({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 } });
    const error = await failure(mail.send({ to: [DAVE, ERIN], subject: 'Nobody', text: 'Hi' }));
    expect([error.code, error.failure, error.retryable, error.status]).toEqual([
      'rejected',
      'permanent',
      false,
      550,
    ]);
    expect(error.refusals?.map((r) => [r.address, r.failure, r.status])).toEqual([
      [DAVE, 'permanent', 550],
      [ERIN, 'permanent', 550],
    ]);
    expect(error.message).toContain('5.1.1');
    expect(sink.messages).toEqual([]);
  });

  it('every recipient deferred: a transient, retryable error with the 450s', async () => {
    const { mail } = serviceThroughPostfix();
    const error = await failure(mail.send({ to: [CAROL, FRANK], subject: 'Later', text: 'Hi' }));
    expect([error.code, error.failure, error.retryable, error.status]).toEqual([
      'deferred',
      'transient',
      true,
      450,
    ]);
    expect(error.refusals?.map((r) => [r.address, r.failure, r.status])).toEqual([
      [CAROL, 'transient', 450],
      [FRANK, 'transient', 450],
    ]);
    expect(error.message).toContain('4.2.0');
    expect(sink.messages).toEqual([]);
  });
});

describe('addresses an MTA routes by', () => {
  /** Sends one email per address; the envelope recipient each arrived with, by address sent to. */
  async function deliveredAs(addresses: readonly string[]): Promise<Record<string, string[]>> {
    const { mail } = serviceThroughPostfix();
    const ids = new Map<string, string>();
    for (const to of addresses) {
      const result = await mail.send({ to, subject: 'Routing', text: to });
      ids.set(result.messageId, to);
    }
    const copies = await relayed(addresses.length);
    const delivered: Record<string, string[]> = {};
    for (const copy of copies) {
      const { messageId } = await fromMime(copy.raw);
      delivered[ids.get(messageId ?? '') ?? `unknown ${messageId}`] = copy.envelope.rcptTo;
    }
    return delivered;
  }

  it('Postfix reroutes % and ! local parts at its own domain to the other host, so mailroom refuses them', async () => {
    // Postfix's percent hack (allow_percent_hack) and bang paths (swap_bangpath), both on by
    // default, apply to its own domains: the address names another host, and Postfix sends it there.
    // Shown with nodemailer alone, as mailroom no longer sends such an address.
    const percent = `user%evil.example@${OWN_DOMAIN}`;
    const bang = `evil.example!user@${OWN_DOMAIN}`;
    const direct = createTransport({ host: postfix.host, port: postfix.port, ignoreTLS: true });
    closers.push(async () => direct.close());
    for (const to of [percent, bang])
      await direct.sendMail({
        envelope: { from: 'no-reply@acme.example', to },
        raw: `Subject: ${to}\r\n\r\nx\r\n`,
      });
    const copies = await relayed(2);
    expect(copies.map((copy) => copy.envelope.rcptTo)).toEqual([
      ['user@evil.example'],
      ['user@evil.example'],
    ]);
    sink.messages.length = 0;

    const { mail, sent } = serviceThroughPostfix();
    for (const [field, message] of [
      ['to[0]', { to: percent }],
      ['to[0]', { to: `user%evil.example@example.com` }],
      ['cc[0]', { to: ALICE, cc: bang }],
      ['bcc[0]', { to: ALICE, bcc: `evil.example!user@example.com` }],
    ] as const) {
      const error = await mail.send({ ...message, subject: 'Routing', text: 'x' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isMessageError(error), field).toBe(true);
      expect((error as MessageError).field).toBe(field);
      expect((error as MessageError).message).toMatch(/may read as a route to another host/);
    }
    // Refused before the transport: nothing was sent, to Postfix or anywhere.
    expect(sent).toEqual([]);
    expect(postfix.log()).not.toContain('user%evil.example@example.com');
  });

  it('an international domain goes out as its A-label', async () => {
    // smtp-server shows the domain decoded (punycode.toUnicode); Postfix logs what it was given.
    expect(await deliveredAs(['jane@bücher.example'])).toEqual({
      'jane@bücher.example': ['jane@bücher.example'],
    });
    expect(postfix.log()).toMatch(
      / to=<jane@xn--bcher-kva\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent/,
    );
    expect(postfix.log()).not.toContain('to=<jane@bücher.example>');
  });

  it.each([
    ['a quoted local part', '"john doe"@example.com'],
    ['a quoted local part holding an @', '"user@evil.example"@example.com'],
    ['a source route', '@evil.example:user@example.com'],
    ['a non-ASCII local part (SMTPUTF8)', 'jöran@example.com'],
  ])('%s is refused before sending, naming the field', async (_title, address) => {
    const { mail } = serviceThroughPostfix();
    const error = await mail.send({ to: address, subject: 'Routing', text: 'x' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMessageError(error)).toBe(true);
    expect((error as MessageError).field).toBe('to[0]');
    expect(sink.messages).toEqual([]);
  });
});

describe("Postfix's message_size_limit", () => {
  it('an email over the SIZE Postfix names in EHLO is refused before its data, naming both sizes', async () => {
    const { mail } = serviceThroughPostfix({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 } });
    const error = await failure(
      mail.send({
        to: ALICE,
        subject: 'Too big',
        text: 'see attached',
        attachments: [{ filename: 'big.bin', content: randomBytes(SIZE_LIMIT) }],
      }),
    );
    expect([error.code, error.failure, error.retryable, error.possibleDuplicate]).toEqual([
      'rejected',
      'permanent',
      false,
      false,
    ]);
    const [, bytes, limit] =
      /the message is (\d+) bytes, over the (\d+) bytes the server takes \(its SIZE\): nothing was sent$/.exec(
        error.message,
      ) ?? [];
    expect(Number(limit)).toBe(SIZE_LIMIT);
    expect(Number(bytes)).toBeGreaterThan(SIZE_LIMIT * (4 / 3));
    // Not one byte of it went over: Postfix never saw a MAIL FROM for it, let alone its data.
    expect(postfix.log()).not.toMatch(/message file too big|exceeds fixed limit/);
    expect(sink.messages).toEqual([]);
  });

  it('an email under the SIZE, declared on its MAIL FROM, is taken and relayed', async () => {
    const { mail } = serviceThroughPostfix();
    await mail.send({
      to: ALICE,
      subject: 'Fits',
      text: 'small',
      attachments: [{ filename: 'a.bin', content: randomBytes(1000) }],
    });
    const [copy] = await relayed(1);
    expect(copy!.envelope.rcptTo).toEqual([ALICE]);
    // Postfix logs the size it was told and then received: the same bytes the sink got, less its Received header.
    const size = Number(/ size=(\d+), nrcpt=1/.exec(postfix.log())?.[1]);
    expect(size).toBeGreaterThan(1000);
  });
});
