import { AssertionError } from 'node:assert';
import { beforeEach, describe, expect, it } from 'vitest';
import { createTestMailer, extractLink, extractLinks, type TestMailer } from '../src/testing/index.js';

describe('mailroom-js/testing', () => {
  let mailer: TestMailer;
  beforeEach(async () => {
    mailer = createTestMailer({ appName: 'Acme' });
    await mailer.service.sendVerificationEmail({
      to: 'jane@example.com',
      username: 'Jane',
      verificationUrl: 'https://acme.example/verify?token=t1&u=jane',
    });
    await mailer.service.sendWelcomeEmail({ to: 'bob@example.com', username: 'Bob' });
  });

  it('finds sent messages by template, recipient and subject', () => {
    expect(mailer.outbox.messages).toHaveLength(2);
    expect(mailer.outbox.find({ template: 'welcome' }).map((m) => m.to[0]?.address)).toEqual([
      'bob@example.com',
    ]);
    expect(mailer.outbox.find({ to: 'JANE@example.com' })).toHaveLength(1);
    expect(mailer.outbox.find({ subject: /^Welcome/ })).toHaveLength(1);
    expect(mailer.outbox.last()?.template).toBe('welcome');
    expect(mailer.outbox.find({ category: 'transactional' })).toHaveLength(2);
    expect(mailer.outbox.find({ category: 'marketing' })).toHaveLength(0);
  });

  it('folds only ASCII letters when it matches a recipient: a Kelvin sign names another mailbox', async () => {
    await mailer.service.sendWelcomeEmail({ to: 'kevin@example.com', username: 'Kevin' });
    expect(mailer.outbox.find({ to: 'KEVIN@example.com' })).toHaveLength(1);
    expect(mailer.outbox.find({ to: '\u212Aevin@example.com' })).toHaveLength(0);
  });

  it('pulls the link out of a verification email, decoded', () => {
    const email = mailer.outbox.expectSent({ to: 'jane@example.com', template: 'verification' });
    expect(extractLink(email)).toBe('https://acme.example/verify?token=t1&u=jane');
    expect(extractLink(email, { contains: 'token=' })).toBe('https://acme.example/verify?token=t1&u=jane');
  });

  it('finds links in an HTML-only message', () => {
    expect(
      extractLinks({ html: '<a href="https://a.example/?x=1&amp;y=2">go</a>', text: undefined }),
    ).toEqual(['https://a.example/?x=1&y=2']);
  });

  it('fails with a message that shows what was sent', () => {
    let error: unknown;
    try {
      mailer.outbox.expectSent({ to: 'nobody@example.com', template: 'password-reset' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AssertionError);
    const text = (error as Error).message;
    expect(text).toContain(
      'Expected an email matching { to "nobody@example.com", template "password-reset" }, found 0.',
    );
    expect(text).toContain('1. to jane@example.com [verification]: "Verify your email address for Acme"');
    expect(text).toContain('2. to bob@example.com [welcome]: "Welcome to Acme, Bob!"');
  });

  it('checks counts and absence', () => {
    expect(() => mailer.outbox.expectSent({ template: 'welcome' }, { count: 2 })).toThrow(
      /Expected 2 emails/,
    );
    expect(() => mailer.outbox.expectNotSent({ template: 'welcome' })).toThrow(AssertionError);
    mailer.outbox.expectNotSent({ template: 'password-reset' });
    expect(() => extractLink(mailer.outbox.last({ template: 'welcome' })!)).toThrow(/No link/);
  });

  it('clears between tests', () => {
    mailer.outbox.clear();
    expect(mailer.outbox.messages).toEqual([]);
    expect(mailer.outbox.summary()).toBe('Nothing was sent.');
  });
});
