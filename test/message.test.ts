import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isMessageError, MessageError } from '../src/errors.js';
import {
  createMessage,
  type EmailMessageInput,
  formatAddress,
  MAX_TAG_LENGTH,
  MAX_TAGS,
  parseAddress,
  unsafeText,
} from '../src/message.js';
import { INVITE } from './fixtures/invite.js';
import { thrown } from './helpers/thrown.js';

const valid: EmailMessageInput = {
  from: 'Acme <no-reply@acme.example>',
  to: 'jane@example.com',
  subject: 'Hi',
  text: 'Hello',
};

/** The MessageError `fn` throws. */
const messageError = (fn: () => unknown): MessageError => thrown(fn, isMessageError, 'a MessageError');
const fieldOf = (fn: () => unknown): string => messageError(fn).field;

describe('addresses', () => {
  it.each([
    ['jane@example.com', { address: 'jane@example.com' }],
    ['Jane Doe <jane@example.com>', { name: 'Jane Doe', address: 'jane@example.com' }],
    ['"Doe, Jane" <jane@example.com>', { name: 'Doe, Jane', address: 'jane@example.com' }],
    ['first.last+tag@sub.example.co.uk', { address: 'first.last+tag@sub.example.co.uk' }],
    ['Jane.Doe@Sub.EXAMPLE.Com', { address: 'Jane.Doe@sub.example.com' }],
    ['a@XN--BCHER-KVA.example', { address: 'a@xn--bcher-kva.example' }],
    ['a@example.c0m', { address: 'a@example.c0m' }],
    [`${'a'.repeat(64)}@example.com`, { address: `${'a'.repeat(64)}@example.com` }],
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
    ['numeric TLD, upper-case domain', 'a@EXAMPLE.123'],
    ['trailing dot in the domain', 'a@example.com.'],
    ['hyphen ending a label', 'a@example-.com'],
    ['long address of short labels', `${'a'.repeat(60)}@${'b.'.repeat(96)}com`],
    ['underscore domain', 'a@ex_ample.com'],
    ['empty', ''],
    ['space', 'jane @example.com'],
    ['not a string', 42],
  ])('refuses %s with a MessageError naming the field', (_, input) => {
    expect(fieldOf(() => parseAddress(input as string, 'to[0]'))).toBe('to[0]');
  });

  // A mail server delivering for acme.example may route these to other.example (the percent hack,
  // a bang path): refused wherever an address is given, on the fast path and the long one.
  it.each([
    ['to[0]', { to: 'user%other.example@acme.example' }],
    ['to[1]', { to: ['ok@acme.example', 'other.example!user@acme.example'] }],
    ['cc[0]', { cc: 'Jane <jane%other.example@acme.example>' }],
    ['bcc[0]', { bcc: { name: 'Jane', address: 'other.example!jane@ACME.example' } }],
    ['replyTo[0]', { replyTo: 'help%other.example@acme.example' }],
    ['from', { from: 'no-reply%other.example@acme.example' }],
    [
      'headers.Disposition-Notification-To[0]',
      { headers: { 'Disposition-Notification-To': 'a%b.example@acme.example' } },
    ],
  ])('refuses a routing local part in %s: it may be routed to another host', (field, fields) => {
    const error = messageError(() =>
      createMessage({
        from: 'a@acme.example',
        to: 'x@acme.example',
        subject: 's',
        text: 'x',
        ...fields,
      } as never),
    );
    expect(error.field).toBe(field);
    expect(error.message).toMatch(
      /in its local part, which a mail server for .* may read as a route to another host/,
    );
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

  it('derives the Message-ID from idempotencyKey: the first 32 hex digits of its SHA-256', () => {
    const key = 'verify:42:7f3a';
    const sha256 = createHash('sha256').update(key).digest('hex');
    expect(createMessage({ ...valid, idempotencyKey: key }).messageId).toBe(
      `<${sha256.slice(0, 32)}@acme.example>`,
    );
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

describe('tags: one limit for every transport', () => {
  it(`accepts up to ${MAX_TAGS} printable ASCII tags of up to ${MAX_TAG_LENGTH} characters`, () => {
    const tags = ['signup', 'verify', 'x'.repeat(MAX_TAG_LENGTH)];
    expect(createMessage({ ...valid, tags }).tags).toEqual(tags);
  });

  it.each([
    ['tags', 'five tags', ['a', 'b', 'c', 'd', 'e']],
    ['tags', 'four tags', ['a', 'b', 'c', 'd']],
    ['tags[0]', 'a tag over the length limit', ['x'.repeat(MAX_TAG_LENGTH + 1)]],
    ['tags[1]', 'a non-ASCII tag (Mailgun would strip it)', ['ok', 'café']],
    ['tags[0]', 'a blank tag', ['  ']],
  ])('refuses %s: %s', (field, _, tags) => {
    expect(fieldOf(() => createMessage({ ...valid, tags }))).toBe(field);
  });
});

describe('reserved headers', () => {
  it.each([
    'Message-ID',
    'message-id',
    'Received',
    'DKIM-Signature',
    'DomainKey-Signature',
    'Return-Path',
    'Delivered-To',
    'Authentication-Results',
    'Received-SPF',
    'ARC-Seal',
    'ARC-Message-Signature',
    'ARC-Authentication-Results',
    'Resent-From',
    'Resent-Message-ID',
    'Content-ID',
    'MIME-Version',
    'Sender',
    'Date',
  ])('refuses %s, naming it', (name) => {
    expect(fieldOf(() => createMessage({ ...valid, headers: { [name]: 'x' } }))).toBe(`headers.${name}`);
  });

  it('points a Message-ID header to idempotencyKey', () => {
    expect(() => createMessage({ ...valid, headers: { 'Message-ID': '<a@b.example>' } })).toThrow(
      /idempotencyKey/,
    );
  });

  it('keeps In-Reply-To, References and List-Unsubscribe', () => {
    const headers = {
      'In-Reply-To': '<original@acme.example>',
      References: '<first@acme.example> <original@acme.example>',
      'List-Unsubscribe': '<https://acme.example/unsubscribe>',
    };
    expect(createMessage({ ...valid, headers }).headers).toEqual(headers);
  });
});

describe('content types with parameters (RFC 2045 §5.1)', () => {
  const withType = (contentType: string) =>
    createMessage({ ...valid, attachments: [{ filename: 'a.ics', content: 'x', contentType }] });

  it.each([
    'text/calendar; method=REQUEST; charset=utf-8',
    'text/calendar;method=REQUEST',
    'application/pdf',
    'text/plain; charset="utf-8"',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    'text/plain; name="a \\"quoted\\" name.txt"',
  ])('accepts %j', (contentType) => {
    expect(withType(contentType).attachments[0]?.contentType).toBe(contentType);
  });

  it.each([
    'text/calendar; method=REQUEST\r\nBcc: victim@example.com',
    'text/calendar; method',
    'text/calendar; method=a b',
    'text/calendar; method="unterminated',
    'text/calendar; ; charset=utf-8',
    'text',
    'text/calendar; charset="utf\n-8"',
    'text/calendar; x="\u2028"',
  ])('refuses %j', (contentType) => {
    expect(fieldOf(() => withType(contentType))).toBe('attachments[0].contentType');
  });
});

describe('calendar invitations (icalEvent)', () => {
  it('defaults to REQUEST and invite.ics', () => {
    const message = createMessage({ ...valid, icalEvent: { content: INVITE } });
    expect(message.icalEvent).toEqual({ content: INVITE, method: 'REQUEST', filename: 'invite.ics' });
  });

  it('upper-cases the method', () => {
    expect(
      createMessage({ ...valid, icalEvent: { content: INVITE, method: 'request' } }).icalEvent?.method,
    ).toBe('REQUEST');
  });

  it.each([
    ['icalEvent.method', { content: INVITE, method: 'CANCEL' }],
    ['icalEvent.method', { content: INVITE.replace('METHOD:REQUEST\r\n', ''), method: 'INVITE' }],
    ['icalEvent.method', { content: INVITE, method: 'REQUEST\r\nX: y' }],
    ['icalEvent.content', { content: 'not a calendar' }],
    ['icalEvent.content', { content: 42 }],
    ['icalEvent.filename', { content: INVITE, filename: '../invite.ics' }],
    ['icalEvent.filename', { content: INVITE, filename: 'invite\u2028.ics' }],
    ['icalEvent.path', { content: INVITE, path: '/etc/passwd' }],
  ])('refuses %s in %j', (field, icalEvent) => {
    expect(fieldOf(() => createMessage({ ...valid, icalEvent } as EmailMessageInput))).toBe(field);
  });
});

describe('one rule for every string that reaches a header or a provider field', () => {
  const hostile: [string, string][] = [
    ['CR LF', '1\r\nBcc: evil@x.com'],
    ['bare CR', '1\rBcc: evil@x.com'],
    ['bare LF', '1\nBcc: evil@x.com'],
    ['NUL', '1\u0000'],
    ['tab', '1\t2'],
    ['DEL', '1\u007f'],
    ['NEL U+0085', '1\u0085Bcc: evil@x.com'],
    ['C1 U+009B', '1\u009b'],
    ['LINE SEPARATOR U+2028', '1\u2028Bcc: evil@x.com'],
    ['PARAGRAPH SEPARATOR U+2029', '1\u2029'],
    ['vertical tab', '1\u000b'],
    ['form feed', '1\u000c'],
    // Seen in a reader as text in another order: `invoice\u202Efdp.exe` shows as invoiceexe.pdf.
    ['RIGHT-TO-LEFT OVERRIDE U+202E', 'invoice\u202Efdp'],
    ['LEFT-TO-RIGHT EMBEDDING U+202A', '1\u202a2'],
    // Plain ASCII that a reader decodes (RFC 2047) into what is refused above.
    ['a B encoded-word', '=?UTF-8?B?SmFuZQ0KQmNjOiB4QGV2aWw=?= Doe'],
    ['a Q encoded-word', 'x =?utf-8?q?Jane=0D=0ABcc:_x@evil?='],
  ];
  const sources: [string, (bad: string) => Partial<EmailMessageInput>][] = [
    ['metadata.ref', (bad) => ({ metadata: { ref: bad } })],
    ['subject', (bad) => ({ subject: bad })],
    ['headers.X-Ref', (bad) => ({ headers: { 'X-Ref': bad } })],
    ['tags[0]', (bad) => ({ tags: [bad] })],
    ['attachments[0].filename', (bad) => ({ attachments: [{ filename: `a${bad}.txt`, content: 'x' }] })],
    ['attachments[0].cid', (bad) => ({ attachments: [{ filename: 'a.png', content: 'x', cid: bad }] })],
    ['from.name', (bad) => ({ from: { name: `Acme ${bad}`, address: 'no-reply@acme.example' } })],
    ['to[0].name', (bad) => ({ to: { name: `Jane ${bad}`, address: 'jane@example.com' } })],
    ['to[0]', (bad) => ({ to: `Jane ${bad} <jane@example.com>` })],
    ['replyTo[0].name', (bad) => ({ replyTo: [{ name: bad, address: 'help@acme.example' }] })],
    ['idempotencyKey', (bad) => ({ idempotencyKey: `k${bad}` })],
    ['icalEvent.filename', (bad) => ({ icalEvent: { content: INVITE, filename: `i${bad}.ics` } })],
    // A label, but written into log lines, events and the sandbox's and hold's files.
    ['template', (bad) => ({ template: `welcome${bad}` })],
  ];
  for (const [source, patch] of sources) {
    it.each(hostile)(`refuses %s in ${source}`, (_, bad) => {
      expect(fieldOf(() => createMessage({ ...valid, ...patch(bad) } as EmailMessageInput))).toBe(source);
    });
  }

  it('says which character it found and where', () => {
    expect(unsafeText('ab\u2028')).toMatch(/U\+2028 at 2/);
    expect(unsafeText('a\u202Eb')).toMatch(/bidirectional .* U\+202E at 1/);
    expect(unsafeText('Re: =?UTF-8?B?SGk=?=')).toMatch(/encoded-words .*"=\?UTF-8\?B\?SGk=\?=" at 4/);
    // What only looks like one, and text in any script, with the isolates and marks that set it right.
    expect(unsafeText('Zoë 王 أحمد 🎉 👨‍👩‍👧')).toBeUndefined();
    expect(unsafeText('مرحبًا \u2068Jane\u2069 \u200F!')).toBeUndefined();
    expect(unsafeText('2 =? 3, a=?b?c and ?= alone')).toBeUndefined();
  });

  it('refuses every invisible or bidirectional control in a file name, which none needs', () => {
    for (const char of [
      '\u2066',
      '\u2067',
      '\u2068',
      '\u2069',
      '\u200e',
      '\u200f',
      '\u061c',
      '\u200b',
      '\ufeff',
    ]) {
      const error = messageError(() =>
        createMessage({ ...valid, attachments: [{ filename: `invoice${char}.pdf`, content: 'x' }] }),
      );
      expect([error.field, error.message]).toEqual([
        'attachments[0].filename',
        expect.stringMatching(/invisible and bidirectional control characters .* file name/),
      ]);
    }
    expect(createMessage({ ...valid, subject: 'مرحبًا \u2068Jane\u2069' }).subject).toBe(
      'مرحبًا \u2068Jane\u2069',
    );
  });
});

describe('what would change the email on its way, refused when the message is made', () => {
  it('refuses message/* and multipart/* attachments, which would become part of the email itself', () => {
    for (const contentType of [
      'message/rfc822',
      'Message/RFC822',
      'multipart/mixed; boundary=zzz',
      'message/global',
    ]) {
      const error = messageError(() =>
        createMessage({
          ...valid,
          attachments: [{ filename: 'fwd.eml', content: 'From: CEO\r\n\r\nx', contentType }],
        }),
      );
      expect([error.field, error.message]).toEqual([
        'attachments[0].contentType',
        expect.stringMatching(/not accepted for an attachment.*application\/octet-stream/),
      ]);
    }
    const eml = createMessage({
      ...valid,
      attachments: [{ filename: 'fwd.eml', content: 'From: CEO', contentType: 'application/octet-stream' }],
    });
    expect(eml.attachments[0]?.contentType).toBe('application/octet-stream');
  });

  it('reads In-Reply-To and References as message identifiers, written as they go on the wire', () => {
    const reply = createMessage({
      ...valid,
      headers: {
        'In-Reply-To': ' <a.1@acme.example> ',
        References: '<a.0@acme.example>   <a.1@acme.example>',
      },
    });
    expect(reply.headers).toMatchObject({
      'In-Reply-To': '<a.1@acme.example>',
      References: '<a.0@acme.example> <a.1@acme.example>',
    });
    for (const [name, value] of [
      ['In-Reply-To', 'order 42, see <a@b.example>'],
      ['In-Reply-To', '<a@b.example> <c@d.example>'],
      ['in-reply-to', 'a@b.example'],
      ['References', 'abc@x.example <def@y.example>'],
      ['References', '<a@b.example>,<c@d.example>'],
      ['References', ' '],
    ] as const) {
      const error = messageError(() => createMessage({ ...valid, headers: { [name]: value } }));
      expect([error.field, error.message]).toEqual([
        `headers.${name}`,
        expect.stringMatching(/RFC 5322 §3\.6\.4/),
      ]);
    }
  });

  it('reads address-valued headers (read receipts, follow-ups, bounces) as addresses, written in RFC 5322 form', () => {
    const message = createMessage({
      ...valid,
      headers: {
        'Disposition-Notification-To': ' "Doe, Jane"  <Jane@ACME.example> ',
        'Mail-Followup-To': 'list@acme.example,ops@acme.example',
        'Errors-To': 'bounces@xn--bcher-kva.example',
      },
    });
    expect(message.headers).toMatchObject({
      'Disposition-Notification-To': '"Doe, Jane" <Jane@acme.example>',
      'Mail-Followup-To': 'list@acme.example, ops@acme.example',
      'Errors-To': 'bounces@xn--bcher-kva.example',
    });
    for (const [name, value, field] of [
      ['Disposition-Notification-To', 'read receipts please', 'headers.Disposition-Notification-To[0]'],
      ['Return-Receipt-To', 'jane@', 'headers.Return-Receipt-To[0]'],
      ['Mail-Reply-To', 'ok@acme.example, bob@@acme.example', 'headers.Mail-Reply-To[1]'],
      ['mail-followup-to', 'team: a@acme.example;', 'headers.mail-followup-to[0]'],
      ['Errors-To', ' , ', 'headers.Errors-To'],
    ] as const) {
      expect(
        fieldOf(() => createMessage({ ...valid, headers: { [name]: value } })),
        value,
      ).toBe(field);
    }
  });

  it('keeps every header line within 998 octets: names at most 76 characters, values 997', () => {
    expect(fieldOf(() => createMessage({ ...valid, headers: { [`X-${'a'.repeat(75)}`]: '1' } }))).toBe(
      `headers.X-${'a'.repeat(75)}`,
    );
    expect(createMessage({ ...valid, headers: { [`X-${'a'.repeat(74)}`]: '1' } }).headers).toHaveProperty(
      `X-${'a'.repeat(74)}`,
    );
    expect(createMessage({ ...valid, subject: 'a'.repeat(997) }).subject).toHaveLength(997);
    expect(fieldOf(() => createMessage({ ...valid, subject: 'a'.repeat(998) }))).toBe('subject');
    expect(fieldOf(() => createMessage({ ...valid, headers: { 'X-Ref': 'a'.repeat(998) } }))).toBe(
      'headers.X-Ref',
    );
  });

  it("refuses a provider relay's instruction headers, which act on one transport only", () => {
    for (const name of [
      'X-SMTPAPI',
      'x-smtpapi',
      'X-Mailgun-Drop-Message',
      'X-Mailgun-Variables',
      'X-PM-Message-Stream',
      'X-SES-CONFIGURATION-SET',
    ]) {
      const error = messageError(() =>
        createMessage({ ...valid, headers: { [name]: '{"to":["x@evil.example"]}' } }),
      );
      expect([error.field, error.message]).toEqual([
        `headers.${name}`,
        expect.stringMatching(/provider's instruction/),
      ]);
    }
    expect(
      createMessage({ ...valid, headers: { 'X-Mailgunner': '1', 'X-Campaign': 'spring' } }).headers,
    ).toMatchObject({
      'X-Campaign': 'spring',
    });
  });

  it('refuses a percent-encoded domain rather than decoding it', () => {
    for (const address of ['jane@acme%2eexample', 'jane@ac%6De.example', 'Jane <jane@acme%2Eexample>']) {
      expect(fieldOf(() => createMessage({ ...valid, to: address }))).toBe('to[0]');
    }
  });

  it('refuses a __proto__ key, which an object would silently drop', () => {
    // As a queue's JSON gives it: an own property, not the prototype.
    const headers = JSON.parse('{"__proto__":"kept?","X-A":"1"}');
    const metadata = JSON.parse('{"__proto__":"kept?","ref":"1"}');
    expect(fieldOf(() => createMessage({ ...valid, headers }))).toBe('headers.__proto__');
    expect(fieldOf(() => createMessage({ ...valid, metadata }))).toBe('metadata.__proto__');
  });

  it('refuses a metadata.category that contradicts the category, on every transport alike', () => {
    expect(
      fieldOf(() => createMessage({ ...valid, category: 'security', metadata: { category: 'marketing' } })),
    ).toBe('metadata.category');
    expect(fieldOf(() => createMessage({ ...valid, metadata: { category: 'x' } }))).toBe('metadata.category');
    expect(
      createMessage({ ...valid, category: 'product', metadata: { category: 'product' } }).metadata,
    ).toEqual({
      category: 'product',
    });
  });
});
