/**
 * What the sandbox writes is what SMTP sends: the same message through smtpTransport to a real
 * SMTP server (smtp-server on loopback) and through sandboxTransport gives the same bytes, apart
 * from trace headers, the DKIM signature and the random MIME boundaries.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMessage, type EmailMessage } from '../../src/message.js';
import { type SandboxFiles, sandboxTransport } from '../../src/transports/sandbox.js';
import { type SmtpTransportOptions, smtpTransport } from '../../src/transports/smtp.js';
import { rsaKey } from '../helpers/dkim-verify.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const BODIES = {
  'a bare CR': { text: 'a\rb', html: '<p>a\rb</p>' },
  'bare LFs': { text: 'one\ntwo\n\nthree\n', html: '<p>one</p>\n<p>two</p>\n' },
  CRLFs: { text: 'one\r\ntwo\r\n', html: '<p>one</p>\r\n<p>two</p>' },
  'mixed, with a lone CR at the end': { text: 'a\r\nb\nc\rd\r', html: '<p>a</p>\r\n<p>b</p>\n\r' },
  'non-ASCII': { text: 'Grüße\n你好\rمرحبا 🎉', html: '<p>Grüße · 你好</p>\n<p>مرحبا 🎉</p>' },
  'long lines': { text: `${'x'.repeat(1500)}\n${'word '.repeat(300)}`, html: `<p>${'y'.repeat(2500)}</p>` },
  'text only': { text: 'just\ntext' },
  'HTML only': { html: '<p>just</p>\n<p>HTML</p>' },
  attachments: {
    text: 'see attached\n',
    html: '<p>see <img src="cid:logo"></p>\n',
    attachments: [
      { filename: 'data.bin', content: randomBytes(3000) },
      { filename: 'notes.txt', content: 'line\rline\nline\r\n' },
      { filename: 'résumé.pdf', content: randomBytes(100), contentType: 'application/pdf' },
      { filename: 'logo.png', content: randomBytes(200), contentType: 'image/png', cid: 'logo' },
    ],
  },
} as const;

// Trace headers a relay may add in front of the message (RFC 5321 4.4), and our signature.
const ADDED_IN_TRANSIT = /^(?:Received|Return-Path|DKIM-Signature):.*\r\n(?:[ \t].*\r\n)*/gim;

/** The message with what transit adds removed and each random MIME boundary named by its order. */
function comparable(raw: Buffer): string {
  let text = raw.toString('latin1').replace(ADDED_IN_TRANSIT, '');
  const boundaries = [...text.matchAll(/boundary="([^"]+)"/g)].map((m) => m[1] as string);
  boundaries.forEach((boundary, i) => {
    text = text.split(boundary).join(`BOUNDARY-${i}`);
  });
  return text;
}

describe('the sandbox writes the bytes SMTP sends', () => {
  let peer: SmtpPeer;
  let dir: string;
  beforeAll(async () => {
    peer = await startSmtpPeer({ starttls: false });
    dir = await mkdtemp(join(tmpdir(), 'mailroom-wire-'));
    // One clock for both sends, so the Date headers agree; timers stay real.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-03-01T09:30:00Z'));
  });
  afterAll(async () => {
    vi.useRealTimers();
    await peer.close();
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    peer.messages.length = 0;
  });

  async function bothWays(message: EmailMessage, smtp: Partial<SmtpTransportOptions> = {}) {
    const transport = smtpTransport({ host: peer.host, port: peer.port, tls: 'none', ...smtp });
    await transport.send(message, { attempt: 1 });
    await transport.close();
    const files = (await sandboxTransport({ dir }).send(message, { attempt: 1 })).response as SandboxFiles;
    return { smtp: peer.messages[0]!.raw, eml: await readFile(files.eml) };
  }
  const messageWith = (subject: string, body: object) =>
    createMessage({
      from: 'Acme <no-reply@acme.example>',
      to: 'Jane Doe <jane@example.com>',
      cc: 'ops@acme.example',
      bcc: 'audit@acme.example',
      replyTo: 'support@acme.example',
      subject: `${subject} · Grüße`,
      headers: { 'X-Campaign': 'spring' },
      ...body,
    });

  it.each(Object.entries(BODIES))('%s: same bytes, CRLF throughout', async (subject, body) => {
    const { smtp, eml } = await bothWays(messageWith(subject, body));
    expect(comparable(eml)).toBe(comparable(smtp));
    // RFC 5322: CR and LF only together, in the file as on the wire.
    expect(eml.toString('latin1')).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
    expect(eml.toString('latin1')).not.toMatch(/^Bcc:/im);
  });

  it('with DKIM on, the same bytes below the signature', async () => {
    const key = rsaKey(2048);
    const message = messageWith('signed', BODIES['mixed, with a lone CR at the end']);
    const { smtp, eml } = await bothWays(message, {
      dkim: { domainName: key.domainName, keySelector: key.keySelector, privateKey: key.privateKey },
    });
    expect(smtp.toString('latin1')).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256;/);
    expect(eml.toString('latin1')).not.toMatch(/^DKIM-Signature:/im);
    expect(comparable(eml)).toBe(comparable(smtp));
  });

  it('a mail client reads the line breaks of every kind as line breaks', async () => {
    const { eml } = await bothWays(messageWith('client', BODIES['mixed, with a lone CR at the end']));
    const parsed = await fromMime(eml);
    // The lone CR at the end is a line break too.
    expect(parsed.text).toBe('a\nb\nc\nd\n');
    expect(parsed.headers['x-campaign']).toBe('spring');
  });

  it('attachments arrive byte for byte', async () => {
    const { eml } = await bothWays(messageWith('attachments', BODIES.attachments));
    const parsed = await fromMime(eml);
    const byName = (list: readonly { filename: string; content: string | Uint8Array }[]) =>
      list
        .map((a) => [a.filename, Buffer.from(a.content)])
        .sort(([a], [b]) => String(a).localeCompare(String(b)));
    expect(byName(parsed.attachments)).toEqual(byName(BODIES.attachments.attachments));
  });
});
