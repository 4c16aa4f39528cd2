import { connect } from 'node:tls';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type SmtpFault, type SmtpPeer, type SmtpPeerOptions, startSmtpPeer } from './smtp-peer.js';

async function peerFor(options?: SmtpPeerOptions): Promise<SmtpPeer> {
  const peer = await startSmtpPeer(options);
  onTestFinished(() => peer.close());
  return peer;
}

function send(peer: SmtpPeer, options: SMTPTransport.Options = {}, to: string[] = ['bob@example.test']) {
  const transport = nodemailer.createTransport({
    host: peer.host,
    port: peer.port,
    tls: { ca: peer.cert },
    ...options,
  });
  return transport
    .sendMail({ from: 'app@example.test', to, subject: 'Hello', text: 'Hi Bob.\n.leading dot' })
    .finally(() => transport.close());
}

// Rejections are errors with SMTP details attached; this keeps the assertions typed.
async function failure(promise: Promise<unknown>): Promise<{ code?: string; responseCode?: number }> {
  const err = await promise.then(
    () => expect.fail('expected the send to fail'),
    (e: unknown) => e,
  );
  return err as { code?: string; responseCode?: number };
}

describe('SMTP peer', () => {
  it('delivers over STARTTLS with auth and records the exact message', async () => {
    const peer = await peerFor({ users: { alice: 's3cret' } });
    const info = await send(peer, { requireTLS: true, auth: { user: 'alice', pass: 's3cret' } });

    expect(info.accepted).toEqual(['bob@example.test']);
    expect(peer.messages).toHaveLength(1);
    const [message] = peer.messages;
    expect(message?.envelope).toEqual({ mailFrom: 'app@example.test', rcptTo: ['bob@example.test'] });
    expect(message?.secure).toBe(true);
    expect(message?.user).toBe('alice');
    const raw = message?.raw.toString() ?? '';
    expect(raw).toMatch(/^Subject: Hello\r$/m);
    // Dot-stuffing is undone, so the body is what the client meant to send.
    expect(raw).toContain('Hi Bob.\r\n.leading dot');
    expect(raw.endsWith('\r\n.\r\n')).toBe(false);
    expect([peer.connections, peer.transactions, peer.authAttempts]).toEqual([1, 1, 1]);
  });

  it('speaks implicit TLS', async () => {
    const peer = await peerFor({ secure: true });
    await send(peer, { secure: true });
    expect(peer.messages.map((m) => [m.secure, m.user])).toEqual([[true, undefined]]);
  });

  it('speaks plain text when STARTTLS is off', async () => {
    const peer = await peerFor({ starttls: false });
    await send(peer);
    expect(peer.messages.map((m) => m.secure)).toEqual([false]);
    await expect(send(peer, { requireTLS: true })).rejects.toMatchObject({ code: 'ETLS' });
  });

  it('answers a wrong password with 535', async () => {
    const peer = await peerFor({ users: { alice: 's3cret' } });
    const err = await failure(send(peer, { auth: { user: 'alice', pass: 'nope' } }));
    expect(err).toMatchObject({ code: 'EAUTH', responseCode: 535 });
    expect(peer.authAttempts).toBe(1);
    expect(peer.messages).toEqual([]);
  });

  it('requires auth when users are configured', async () => {
    const peer = await peerFor({ users: { alice: 's3cret' } });
    const err = await failure(send(peer));
    expect(err.responseCode).toBe(530);
  });

  it.each<[SmtpFault, { code: string; responseCode: number }]>([
    [
      { reply: 421, at: 'mail' },
      { code: 'EENVELOPE', responseCode: 421 },
    ],
    [
      { reply: 450, at: 'rcpt' },
      { code: 'EENVELOPE', responseCode: 450 },
    ],
    [
      { reply: 550, at: 'data', message: 'Spam' },
      { code: 'EMESSAGE', responseCode: 550 },
    ],
  ])('answers with the queued reply %j', async (fault, expected) => {
    const peer = await peerFor();
    peer.failNext(fault);
    expect(await failure(send(peer))).toMatchObject(expected);

    await send(peer);
    expect(peer.transactions).toBe(2);
    expect(peer.messages).toHaveLength(1);
  });

  it.each<SmtpFault>([{ drop: 'data' }, { drop: 'after-data' }])(
    'drops the connection: %j',
    async (fault) => {
      const peer = await peerFor();
      peer.failNext(fault);
      const err = await failure(send(peer));
      expect(err.code).toBe('ECONNECTION');
      expect(err.responseCode).toBeUndefined();
      expect(peer.messages).toEqual([]);
    },
  );

  it.each<SmtpFault>([
    { delay: 800, at: 'mail' },
    { delay: 800, at: 'data' },
  ])('stalls long enough for a client socket timeout: %j', async (fault) => {
    const peer = await peerFor();
    peer.failNext(fault);
    const started = Date.now();
    const err = await failure(send(peer, { socketTimeout: 300 }));
    expect(err.code).toBe('ETIMEDOUT');
    expect(Date.now() - started).toBeLessThan(800);
    expect(peer.messages).toEqual([]);
  });

  it('answers 451 after a delay the client waits out', async () => {
    const peer = await peerFor();
    peer.failNext({ delay: 100, at: 'data' });
    expect(await failure(send(peer))).toMatchObject({ code: 'EMESSAGE', responseCode: 451 });
    expect(peer.messages).toEqual([]);
  });

  it('consumes faults one transaction at a time', async () => {
    const peer = await peerFor();
    peer.failNext({ reply: 451, at: 'mail' }, 2);
    expect((await failure(send(peer))).responseCode).toBe(451);
    expect((await failure(send(peer))).responseCode).toBe(451);
    await send(peer);
    expect(peer.transactions).toBe(3);
    expect(peer.messages).toHaveLength(1);
  });

  it('refuses one recipient while accepting the others', async () => {
    const peer = await peerFor();
    peer.rejectRecipient('Mallory@example.test', 551);
    const info = await send(peer, {}, ['bob@example.test', 'mallory@example.test']);
    expect(info.accepted).toEqual(['bob@example.test']);
    expect(info.rejected).toEqual(['mallory@example.test']);
    expect(info.rejectedErrors?.[0]?.responseCode).toBe(551);
    expect(peer.messages[0]?.envelope.rcptTo).toEqual(['bob@example.test']);
  });

  it('refuses a recipient only as many times as asked, with the reply given', async () => {
    const peer = await peerFor();
    peer.rejectRecipient('carol@example.test', 450, 1, '4.2.0 Greylisted');
    const first = await send(peer, {}, ['bob@example.test', 'carol@example.test']);
    expect(first.rejectedErrors?.map((e) => e.response)).toEqual(['450 4.2.0 Greylisted']);
    const second = await send(peer, {}, ['carol@example.test']);
    expect(second.accepted).toEqual(['carol@example.test']);
  });

  it('answers 452 to recipients past maxRecipients in one transaction', async () => {
    const peer = await peerFor({ maxRecipients: 2 });
    const info = await send(peer, {}, ['a@example.test', 'b@example.test', 'c@example.test']);
    expect(info.accepted).toEqual(['a@example.test', 'b@example.test']);
    expect(info.rejectedErrors?.map((e) => [e.recipient, e.responseCode])).toEqual([['c@example.test', 452]]);
  });

  it('closes promptly with a TLS client still connected', async () => {
    const peer = await startSmtpPeer({ secure: true });
    const socket = connect({ port: peer.port, host: peer.host, ca: peer.cert });
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('data', resolve)); // the 220 greeting
    expect(peer.connections).toBe(1);

    const started = Date.now();
    await peer.close();
    await closed;
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
