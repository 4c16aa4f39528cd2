import { describe, expect, it } from 'vitest';
import { isMessageError, MessageError } from '../src/errors.js';
import { createMessage, type EmailMessageInput, formatAddress, parseAddress } from '../src/message.js';

const valid: EmailMessageInput = {
  from: 'Acme <no-reply@acme.example>',
  to: 'jane@example.com',
  subject: 'Hi',
  text: 'Hello',
};

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isMessageError(err)) return err.field;
    throw err;
  }
  throw new Error('expected a MessageError');
}

describe('addresses', () => {
  it.each([
    ['jane@example.com', { address: 'jane@example.com' }],
    ['Jane Doe <jane@example.com>', { name: 'Jane Doe', address: 'jane@example.com' }],
    ['"Doe, Jane" <jane@example.com>', { name: 'Doe, Jane', address: 'jane@example.com' }],
    ['first.last+tag@sub.example.co.uk', { address: 'first.last+tag@sub.example.co.uk' }],
    [
      { name: 'Jürgen', address: 'j@example.com' },
      { name: 'Jürgen', address: 'j@example.com' },
    ],
  ])('accepts %j', (input, expected) => {
    expect(parseAddress(input, 'to')).toEqual(expected);
  });

  it('normalises international domains to ASCII', () => {
    expect(parseAddress('user@bücher.example', 'to').address).toBe('user@xn--bcher-kva.example');
    expect(parseAddress('user@例え.テスト', 'to').address).toBe('user@xn--r8jz45g.xn--zckzah');
  });

  it.each([
    ['line break', 'jane@example.com\r\nBcc: victim@example.com'],
    ['LF in a name', 'Jane\n <jane@example.com>'],
    ['quoted local part', '"jane doe"@example.com'],
    ['comment', 'jane(comment)@example.com'],
    ['group', 'friends: jane@example.com;'],
    ['two @', 'jane@doe@example.com'],
    ['no domain dot', 'jane@localhost'],
    ['IP literal', 'jane@[127.0.0.1]'],
    ['leading dot', '.jane@example.com'],
    ['double dot', 'ja..ne@example.com'],
    ['non-ASCII local part', 'jürgen@example.com'],
    ['long local part', `${'a'.repeat(65)}@example.com`],
    ['long label', `a@${'b'.repeat(64)}.com`],
    ['long address', `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.com`],
    ['numeric TLD', 'a@example.123'],
    ['underscore domain', 'a@ex_ample.com'],
    ['empty', ''],
    ['space', 'jane @example.com'],
    ['not a string', 42],
  ])('refuses %s with a MessageError naming the field', (_, input) => {
    expect(fieldOf(() => parseAddress(input as string, 'to[0]'))).toBe('to[0]');
  });

  it('refuses control characters in a display name', () => {
    expect(fieldOf(() => parseAddress({ name: 'Jane\u0007', address: 'j@example.com' }, 'from'))).toBe(
      'from.name',
    );
  });

  it('formats names that need quoting', () => {
    expect(formatAddress({ name: 'Doe, Jane', address: 'j@example.com' })).toBe(
      '"Doe, Jane" <j@example.com>',
    );
    expect(formatAddress({ name: 'Jane Doe', address: 'j@example.com' })).toBe('Jane Doe <j@example.com>');
  });
});

describe('createMessage', () => {
  it('returns a frozen message with defaults filled in', () => {
    const message = createMessage({ ...valid, cc: ['a@example.com'], tags: ['x'] });
    expect(Object.isFrozen(message)).toBe(true);
    expect(Object.isFrozen(message.to)).toBe(true);
    expect(Object.isFrozen(message.to[0])).toBe(true);
    expect(message.bcc).toEqual([]);
    expect(message.messageId).toMatch(/^<[0-9a-f-]{36}@acme\.example>$/);
    expect(() => {
      (message as { subject: string }).subject = 'changed';
    }).toThrow(TypeError);
  });

  it.each([
    ['subject', { subject: 'Hi\r\nBcc: x@example.com' }],
    ['subject', { subject: 'Hi\nthere' }],
    ['subject', { subject: '   ' }],
    ['to', { to: [] }],
    ['to[1]', { to: ['ok@example.com', 'bad'] }],
    ['cc[0]', { cc: 'x@y' }],
    ['replyTo[0]', { replyTo: 'a\r\n@example.com' }],
    ['from', { from: undefined }],
    ['html', { text: undefined }],
    ['headers.X-Evil', { headers: { 'X-Evil': 'a\r\nBcc: victim@example.com' } }],
    ['headers.X Bad', { headers: { 'X Bad': 'v' } }],
    ['headers.Bcc', { headers: { Bcc: 'victim@example.com' } }],
    ['headers.content-type', { headers: { 'content-type': 'text/html' } }],
    ['attachments[0].path', { attachments: [{ filename: 'a.txt', path: '/etc/passwd' }] }],
    ['attachments[0].href', { attachments: [{ filename: 'a.txt', href: 'http://169.254.169.254/' }] }],
    ['attachments[0].filename', { attachments: [{ filename: '../../etc/passwd', content: 'x' }] }],
    ['attachments[0].filename', { attachments: [{ filename: 'a\r\n.txt', content: 'x' }] }],
    ['attachments[0].content', { attachments: [{ filename: 'a.txt' }] }],
    [
      'attachments[0].contentType',
      { attachments: [{ filename: 'a.txt', content: 'x', contentType: 'text/plain\r\nX: y' }] },
    ],
    ['tags[0]', { tags: ['a\nb'] }],
    ['metadata.user id', { metadata: { 'user id': 1 } }],
    ['metadata.nested', { metadata: { nested: { a: 1 } } }],
    ['messageId', { messageId: 'no-brackets@example.com' }],
  ])('refuses bad %s', (field, patch) => {
    expect(fieldOf(() => createMessage({ ...valid, ...(patch as object) } as EmailMessageInput))).toBe(field);
  });

  it('keeps attachment bytes and a given Message-ID', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const message = createMessage({
      ...valid,
      messageId: '<abc.123@acme.example>',
      attachments: [{ filename: 'a.bin', content: bytes, contentType: 'application/octet-stream' }],
    });
    expect(message.messageId).toBe('<abc.123@acme.example>');
    expect(message.attachments[0]?.content).toBe(bytes);
  });

  it('MessageError names the field in its message too', () => {
    const err = new MessageError('to[0]', 'bad');
    expect(err.message).toBe('to[0]: bad');
    expect(err.retryable).toBe(false);
  });
});
