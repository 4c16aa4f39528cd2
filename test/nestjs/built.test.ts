/**
 * The built package in a real Nest application, once as ESM and once as CommonJS: fixture apps
 * (test/fixtures/nestjs-app-{esm,cjs}) run by plain node, resolving `mailroom-js/nestjs` through the
 * package's `exports`, mail configured from SMTP_* variables, sending to a real SMTP server.
 * Needs a fresh `dist/` (`npm run build`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';
import { repo } from '../package/run.js';
import { FIXTURES, smtpVars, startApp, stopApps } from './fixture-app.js';

let peer: SmtpPeer | undefined;

beforeAll(() => {
  if (!existsSync(join(repo, 'dist', 'nestjs', 'index.cjs'))) {
    throw new Error('dist/ is missing or stale (no dist/nestjs): run `npm run build` first.');
  }
});

afterEach(async () => {
  stopApps();
  await peer?.close();
  peer = undefined;
});

describe.each(['esm', 'cjs'] as const)('the %s build in a Nest app', (format) => {
  it('a POST /signup is delivered to the SMTP server; SIGTERM closes the transport', async () => {
    peer = await startSmtpPeer({ starttls: false });
    const app = startApp(FIXTURES[format], repo, smtpVars(peer));
    const port = await app.port;
    const response = await request(`http://127.0.0.1:${port}`)
      .post('/signup')
      .send({ email: 'jane@example.com', name: 'Jane' })
      .expect(202);
    expect(response.body.build).toBe(format);
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]!.envelope.rcptTo).toEqual(['jane@example.com']);
    const email = await fromMime(peer.messages[0]!.raw);
    expect(email.text).toContain('https://acme.example/verify?token=jane%40example.com');
    expect(email.messageId).toBe(response.body.messageId);
    app.child.kill('SIGTERM');
    await app.exited;
    expect(app.output()).toContain('transport closed');
  });

  it('a wrong SMTP password fails start-up with the EmailError (auth)', async () => {
    peer = await startSmtpPeer({ starttls: false, users: { app: 'right' } });
    const app = startApp(
      FIXTURES[format],
      repo,
      smtpVars(peer, { SMTP_USER: 'app', SMTP_PASSWORD: 'wrong' }),
    );
    await expect(app.port).rejects.toThrow(/startup failed: EmailError auth mailroom=true/);
    expect((await app.exited).code).toBe(1);
    expect(peer.messages).toHaveLength(0);
  });
});
