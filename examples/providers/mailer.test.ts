/**
 * Drives the two-provider mailer against a Postmark-speaking and a SendGrid-speaking server on
 * loopback, configured only through the environment.
 */
import { type EmailService, isConfigError } from 'mailroom-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PostmarkPeer, startPostmarkPeer } from '../../test/helpers/postmark-peer.js';
import { type SendgridPeer, startSendgridPeer } from '../../test/helpers/sendgrid-peer.js';
import { createSpreadMailer } from './mailer.js';

const TOKEN = 'postmark-example-token';
const KEY = 'SG.example-key';
let postmark: PostmarkPeer;
let sendgrid: SendgridPeer;
let mail: EmailService | undefined;

beforeEach(async () => {
  postmark = await startPostmarkPeer({ serverToken: TOKEN });
  sendgrid = await startSendgridPeer({ apiKey: KEY });
});
afterEach(async () => {
  await mail?.close();
  mail = undefined;
  await Promise.all([postmark.close(), sendgrid.close()]);
});

const start = (overrides: Record<string, string> = {}) => {
  mail = createSpreadMailer({
    POSTMARK_SERVER_TOKEN: TOKEN,
    POSTMARK_BASE_URL: postmark.url,
    SENDGRID_API_KEY: KEY,
    SENDGRID_BASE_URL: sendgrid.url,
    SENDER_ADDRESS: 'Acme <no-reply@acme.example>',
    ...overrides,
  });
  return mail;
};
const welcome = (to: string) => ({ to, username: to.split('@')[0]! });

describe('the two-provider mailer', () => {
  it('sends each email through the next provider in turn', async () => {
    const mail = start();
    const used: string[] = [];
    for (const to of ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']) {
      used.push((await mail.sendWelcomeEmail(welcome(to))).transport);
    }
    expect(used).toEqual(['postmark', 'sendgrid', 'postmark', 'sendgrid']);
    expect(postmark.received().map((m) => m.to)).toEqual([['a@example.com'], ['c@example.com']]);
    expect(sendgrid.received().map((m) => m.to)).toEqual([['b@example.com'], ['d@example.com']]);
  });

  it('hands an email to the other provider when one is rate limited', async () => {
    postmark.failNext({ status: 429, body: { ErrorCode: 429, Message: 'Rate limit exceeded' } });
    const result = await start().sendWelcomeEmail(welcome('a@example.com'));
    expect([result.transport, result.attempts]).toEqual(['sendgrid', 1]);
    expect(result.failovers?.map((e) => e.code)).toEqual(['rate-limit']);
  });

  it('carries everything on the other provider while a key is wrong', async () => {
    const mail = start({ POSTMARK_SERVER_TOKEN: 'revoked' });
    for (const to of ['a@example.com', 'b@example.com', 'c@example.com'])
      await mail.sendWelcomeEmail(welcome(to));
    expect(postmark.requests).toHaveLength(1);
    expect(sendgrid.messages).toHaveLength(3);
  });

  it('names a missing variable', () => {
    const error = (() => {
      try {
        createSpreadMailer({ POSTMARK_SERVER_TOKEN: TOKEN, SENDER_ADDRESS: 'a@acme.example' });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('SENDGRID_API_KEY');
  });
});
