/**
 * `mailroom-js/testing`: what a test suite needs to check the mail an app sends, without a mail server.
 *
 * @example
 * ```ts
 * import { createTestMailer, extractLink } from 'mailroom-js/testing';
 *
 * const mailer = createTestMailer();
 * const app = createApp({ mail: mailer.service });
 * await request(app).post('/signup').send({ email: 'jane@example.com', name: 'Jane' });
 * const email = mailer.outbox.expectSent({ to: 'jane@example.com', template: 'verification' });
 * const link = extractLink(email); // https://…/verify?token=…
 * ```
 */

import { AssertionError } from 'node:assert';
import { lowerAscii } from '../ascii-case.js';
import type { EmailCategory, EmailMessage } from '../message.js';
import { EmailService, type EmailServiceOptions } from '../service.js';
import type { TemplateName } from '../templates/names.js';
import { type MemoryTransport, type MemoryTransportOptions, memoryTransport } from '../transports/memory.js';

/** Which messages to look for; every given field must match. */
export interface EmailQuery {
  /** A recipient in to, cc or bcc (case-insensitive). */
  to?: string;
  /** The template the message was rendered from (names declared in `MailroomTemplates` are completed). */
  template?: TemplateName;
  /** The exact subject, or a pattern. */
  subject?: string | RegExp;
  /** The category it went out as (`security`, `transactional`, `product`, `marketing`). */
  category?: EmailCategory;
}

/** Reads and asserts on the mail a {@link MemoryTransport} captured. */
export class Outbox {
  readonly #transport: MemoryTransport;

  constructor(transport: MemoryTransport) {
    this.#transport = transport;
  }

  /** Every message sent, oldest first. */
  get messages(): readonly EmailMessage[] {
    return this.#transport.outbox.map((entry) => entry.message);
  }

  /** Messages that match the query, oldest first. */
  find(query: EmailQuery = {}): EmailMessage[] {
    return this.messages.filter((message) => matches(message, query));
  }

  /** The newest message that matches, if any. */
  last(query: EmailQuery = {}): EmailMessage | undefined {
    return this.find(query).at(-1);
  }

  /** Forgets every message (call it in `beforeEach`). */
  clear(): void {
    this.#transport.clear();
  }

  /**
   * Returns the newest message that matches, or throws an `AssertionError` that lists what was sent.
   * With `count`, exactly that many must match.
   */
  expectSent(query: EmailQuery, options: { count?: number } = {}): EmailMessage {
    const found = this.find(query);
    const wanted = options.count;
    if (found.length === 0 || (wanted !== undefined && found.length !== wanted)) {
      throw new AssertionError({
        message: `Expected ${wanted ?? 'an'} email${wanted === 1 || wanted === undefined ? '' : 's'} matching ${describe(query)}, found ${found.length}.\n${this.summary()}`,
      });
    }
    return found.at(-1)!;
  }

  /** Throws an `AssertionError` listing what was sent if any message matches. */
  expectNotSent(query: EmailQuery = {}): void {
    const found = this.find(query);
    if (found.length > 0) {
      throw new AssertionError({
        message: `Expected no email matching ${describe(query)}, found ${found.length}.\n${this.summary()}`,
      });
    }
  }

  /** One line per message sent: recipients, template and subject. */
  summary(): string {
    const lines = this.messages.map(
      (m, i) =>
        `  ${i + 1}. to ${[...m.to, ...m.cc, ...m.bcc].map((a) => a.address).join(', ')}` +
        `${m.template ? ` [${m.template}]` : ''}: ${JSON.stringify(m.subject)}`,
    );
    return lines.length ? `Sent:\n${lines.join('\n')}` : 'Nothing was sent.';
  }
}

/** A service on a memory transport, and the outbox to check. */
export interface TestMailer {
  readonly service: EmailService;
  readonly transport: MemoryTransport;
  readonly outbox: Outbox;
}

/**
 * Builds an {@link EmailService} on a fresh memory transport, for one test file or one test.
 * Options are those of `EmailService` (sender defaults to `Test App <no-reply@example.com>`),
 * and `like`: the production transport, whose refusals the outbox then makes (see
 * `MemoryTransportOptions.like`).
 */
export function createTestMailer(
  options: Partial<Omit<EmailServiceOptions, 'transport'>> & MemoryTransportOptions = {},
): TestMailer {
  const { like, ...rest } = options;
  const transport = memoryTransport(like === undefined ? {} : { like });
  const service = new EmailService({
    from: { name: 'Test App', address: 'no-reply@example.com' },
    ...rest,
    transport,
  });
  return { service, transport, outbox: new Outbox(transport) };
}

/** Every http(s) link in a message: from the text part, else from the HTML's hrefs. */
export function extractLinks(message: Pick<EmailMessage, 'html' | 'text'>): string[] {
  const fromText = message.text?.match(/https?:\/\/[^\s<>"']+/g);
  if (fromText?.length) return [...new Set(fromText)];
  const hrefs = [...(message.html ?? '').matchAll(/href\s*=\s*["'](https?:\/\/[^"']+)["']/gi)].map((m) =>
    decodeEntities(m[1] ?? ''),
  );
  return [...new Set(hrefs)];
}

/**
 * The link a person would click: the first http(s) link in the message (the verification or reset
 * link in the built-in emails), or the first that contains `contains`. Throws when there is none.
 */
export function extractLink(
  message: Pick<EmailMessage, 'html' | 'text'>,
  options: { contains?: string } = {},
): string {
  const links = extractLinks(message);
  const link = options.contains ? links.find((l) => l.includes(options.contains!)) : links[0];
  if (!link) {
    throw new AssertionError({
      message: `No link${options.contains ? ` containing ${JSON.stringify(options.contains)}` : ''} in the email. Links found: ${links.length ? links.join(', ') : 'none'}`,
    });
  }
  return link;
}

function matches(message: EmailMessage, query: EmailQuery): boolean {
  if (query.template !== undefined && message.template !== query.template) return false;
  if (query.category !== undefined && message.category !== query.category) return false;
  if (query.subject !== undefined) {
    const ok =
      typeof query.subject === 'string'
        ? message.subject === query.subject
        : query.subject.test(message.subject);
    if (!ok) return false;
  }
  if (query.to !== undefined) {
    const wanted = lowerAscii(query.to);
    if (![...message.to, ...message.cc, ...message.bcc].some((a) => lowerAscii(a.address) === wanted))
      return false;
  }
  return true;
}

function describe(query: EmailQuery): string {
  const parts = Object.entries(query).map(
    ([k, v]) => `${k} ${v instanceof RegExp ? String(v) : JSON.stringify(v)}`,
  );
  return parts.length ? `{ ${parts.join(', ')} }` : 'anything';
}

function decodeEntities(value: string): string {
  return value
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
