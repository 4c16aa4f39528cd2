/**
 * The proofing desk against a real SMTP server on loopback, configured by the environment alone:
 * the app's mail is held, the preview's Release button (a same-origin POST, as the page sends it)
 * delivers it once, and a script can release the rest.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { heldId } from 'mailroom-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type SmtpPeer, startSmtpPeer } from '../../test/helpers/smtp-peer.js';
import { createDesk, type Desk } from './desk.js';

let dir: string;
let peer: SmtpPeer;
let desk: Desk;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailroom-desk-'));
  // Plain text, on loopback only: the test server offers no STARTTLS.
  peer = await startSmtpPeer({ starttls: false });
  desk = createDesk({
    APP_NAME: 'Acme',
    MAILROOM_HOLD: 'true',
    MAILROOM_SANDBOX_DIR: join(dir, 'outbox'),
    SMTP_HOST: peer.host,
    SMTP_PORT: String(peer.port),
    SMTP_TLS: 'none',
    SMTP_FROM_EMAIL: 'no-reply@acme.example',
  });
  server = createServer(desk.preview);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  desk?.preview.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await desk?.mail.close();
  await peer?.close();
  await rm(dir, { recursive: true, force: true });
});

it('holds what the app sends, and the Release button delivers it once', async () => {
  const result = await desk.mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
  const id = heldId(result)!;
  expect(peer.transactions).toBe(0);
  const release = () =>
    fetch(`${base}/api/hold/release`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: JSON.stringify({ ids: [id] }),
    }).then((r) => r.json() as Promise<{ results: unknown[] }>);
  const first = await release();
  expect(first.results[0]).toMatchObject({ id, outcome: 'released', record: { to: ['jane@example.com'] } });
  expect((await release()).results[0]).toEqual({ id, outcome: 'already-released' });
  expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([['jane@example.com']]);
});

it('a script releases everything still held', async () => {
  await desk.mail.sendVerificationEmail({
    to: 'bob@example.com',
    username: 'Bob',
    verificationUrl: 'https://acme.example/verify?t=2',
  });
  const results = await desk.hold.release('all');
  expect(results.map((r) => r.outcome)).toEqual(['released']);
  expect(peer.messages.at(-1)?.envelope.rcptTo).toEqual(['bob@example.com']);
});

it('refuses to start without a hold', () => {
  expect(() => createDesk({})).toThrow(/MAILROOM_HOLD=true/);
});
