/**
 * Tests of the example app as a user drives it: sign up, click the link in the email, ask for a
 * password reset. The app gets a mail service on a memory transport, so the tests read the mail
 * it sent instead of a mail server.
 */
import { smtpTransport } from 'mailroom-js';
import { createTestMailer, extractLink, type TestMailer } from 'mailroom-js/testing';
import request from 'supertest';
import { beforeEach, describe, expect, it } from 'vitest';
import { createApp } from './app.js';

let mailer: TestMailer;
let app: ReturnType<typeof createApp>;

beforeEach(() => {
  mailer = createTestMailer({ appName: 'Acme' });
  app = createApp({ mail: mailer.service, baseUrl: 'https://acme.example' });
});

const signUp = (email: string, name = 'Jane') => request(app).post('/signup').send({ email, name });

/** Follows a link from an email the way a browser would, against the app under test. */
const follow = (link: string) => {
  const url = new URL(link);
  return request(app).get(url.pathname + url.search);
};

describe('signing up', () => {
  it('sends one verification email to the new address', async () => {
    await signUp('jane@example.com').expect(201);

    const email = mailer.outbox.expectSent(
      { to: 'jane@example.com', template: 'verification' },
      { count: 1 },
    );
    expect(mailer.outbox.messages).toHaveLength(1);
    expect(email.subject).toBe('Verify your email address for Acme');
    expect(extractLink(email)).toMatch(/^https:\/\/acme\.example\/verify\?token=[\w-]+$/);
  });

  it('verifies the account and sends the welcome email when the link is followed', async () => {
    await signUp('jane@example.com').expect(201);
    const verification = mailer.outbox.expectSent({ to: 'jane@example.com', template: 'verification' });

    const res = await follow(extractLink(verification)).expect(200);

    expect(res.body).toEqual({ email: 'jane@example.com', verified: true });
    const welcome = mailer.outbox.expectSent({ to: 'jane@example.com', template: 'welcome' }, { count: 1 });
    expect(welcome.subject).toBe('Welcome to Acme, Jane!');
    // The link works once.
    await follow(extractLink(verification)).expect(400);
  });

  it('refuses a bad email address with a 400 naming the field, and sends nothing', async () => {
    const res = await signUp('not-an-email').expect(400);

    expect(res.body.field).toBe('email');
    mailer.outbox.expectNotSent();
  });

  it('escapes HTML in the name in the HTML part', async () => {
    await signUp('jane@example.com', '<script>alert(1)</script>').expect(201);

    const email = mailer.outbox.expectSent({ to: 'jane@example.com' });
    expect(email.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(email.html).not.toContain('<script>');
  });
});

describe('forgetting the password', () => {
  it('sends a known user a reset link with a token that expires in 30 minutes', async () => {
    await signUp('jane@example.com').expect(201);
    mailer.outbox.clear();

    await request(app).post('/forgot-password').send({ email: 'jane@example.com' }).expect(202);

    const email = mailer.outbox.expectSent(
      { to: 'jane@example.com', template: 'password-reset' },
      { count: 1 },
    );
    const link = new URL(extractLink(email));
    expect(link.origin + link.pathname).toBe('https://acme.example/reset-password');
    expect(link.searchParams.get('token')).toMatch(/^[\w-]{40,}$/);
    expect(email.text).toContain('This link expires in 30 minutes');
  });

  it('answers an unknown address the same way, and sends nothing', async () => {
    await signUp('jane@example.com').expect(201);
    const known = await request(app).post('/forgot-password').send({ email: 'jane@example.com' });
    mailer.outbox.clear();

    const unknown = await request(app).post('/forgot-password').send({ email: 'nobody@example.com' });

    expect(unknown.status).toBe(known.status);
    expect(unknown.body).toEqual(known.body);
    mailer.outbox.expectNotSent();
  });
});

describe('against what production would refuse', () => {
  it('signs up through an outbox that checks mail as the production SMTP transport would', async () => {
    // `like`: the transport server.ts would build in production; it is never sent through.
    mailer = createTestMailer({ appName: 'Acme', like: smtpTransport({ host: 'smtp.acme.example' }) });
    app = createApp({ mail: mailer.service, baseUrl: 'https://acme.example' });
    await signUp('jane@example.com').expect(201);
    mailer.outbox.expectSent({ to: 'jane@example.com', template: 'verification' });
  });
});
