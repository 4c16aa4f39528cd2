/**
 * A pinned clock (`now`): what templates read as the year comes from it, so a snapshot of a rendered
 * email stays the same on 1 January.
 */
import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { createTestMailer } from '../../src/testing/index.js';
import { memoryTransport } from '../../src/transports/memory.js';

const FROM = 'Acme <no-reply@acme.example>';
const stamp = defineTemplate({
  name: 'stamp',
  fields: {},
  subject: 'Stamp',
  html: '<p>Year: <%= it.app.year %></p>',
  layout: false,
});

describe('now: the clock templates read', () => {
  it('gives the year of the pinned date to templates and to the built-in footer', () => {
    const service = new EmailService({
      transport: memoryTransport(),
      from: FROM,
      templates: [stamp],
      now: () => new Date('2031-06-01T12:00:00Z'),
    });
    expect(service.render('stamp', {}).text).toBe('Year: 2031');
    const email = service.render('verification', {
      username: 'Jane',
      verificationUrl: 'https://acme.example/verify?token=1',
    });
    expect(email.html).toContain('2031');
    expect(email.text).toContain('2031');
  });

  it('is read at each render, so a test can move it', async () => {
    let date = new Date('2029-12-31T12:00:00Z');
    const { service, outbox } = createTestMailer({ from: FROM, templates: [stamp], now: () => date });
    await service.sendTemplate('stamp', { to: 'jane@example.com', data: {} });
    date = new Date('2030-01-02T12:00:00Z');
    await service.sendTemplate('stamp', { to: 'jane@example.com', data: {} });
    expect(outbox.messages.map((message) => message.text)).toEqual(['Year: 2029', 'Year: 2030']);
  });

  it('defaults to the system clock', () => {
    const service = new EmailService({ transport: memoryTransport(), from: FROM, templates: [stamp] });
    expect(service.render('stamp', {}).text).toBe(`Year: ${new Date().getFullYear()}`);
  });

  it.each([
    ['a date, not a function', new Date('2030-01-01')],
    ['a function that returns no date', () => '2030'],
    ['a function that returns an invalid date', () => new Date('not a date')],
  ])('refuses %s, naming now', (_, now) => {
    const build = () =>
      new EmailService({ transport: memoryTransport(), from: FROM, now: now as unknown as () => Date });
    expect(build).toThrow(/now/);
    try {
      build();
    } catch (error) {
      expect(isConfigError(error)).toBe(true);
    }
  });
});
