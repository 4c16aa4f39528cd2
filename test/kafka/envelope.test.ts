/**
 * Envelope v1 without a broker: what createEnvelope writes, what parseEnvelope accepts, what both
 * refuse (naming the field). The idempotency stores are in idempotency.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  createMessage,
  isMessageError,
  isTemplateError,
  parseAddress,
  type QueuedEmail,
} from '../../src/index.js';
import { buildEnvelope, envelopeFields } from '../../src/kafka/envelope.js';
import { createEnvelope, ENVELOPE_VERSION, parseEnvelope } from '../../src/kafka/index.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const preRendered: QueuedEmail = { subject: 'Hi', text: 'Hello', to: 'jane@example.com' };

/** A valid envelope as JSON-ready data, to be spoiled one field at a time. */
function validEnvelope(): Record<string, unknown> {
  return {
    version: 1,
    id: 'env-1',
    idempotencyKey: 'key-1',
    createdAt: '2026-11-22T10:00:00.000Z',
    subject: 'Hi',
    text: 'Hello',
    to: ['jane@example.com'],
  };
}

const parseWith = (changes: Record<string, unknown>) => () =>
  parseEnvelope(JSON.stringify({ ...validEnvelope(), ...changes }));

/** Runs `fn`, which must throw a MessageError; returns the field it names. */
function messageField(fn: () => unknown): string {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) throw new Error('expected a MessageError, nothing was thrown');
  if (!isMessageError(thrown)) throw new Error(`expected a MessageError, got ${String(thrown)}`);
  return thrown.field;
}

/** Runs `fn`, which must throw a TemplateError; returns it. */
function templateError(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    if (isTemplateError(error)) return error;
    throw new Error(`expected a TemplateError, got ${String(error)}`);
  }
  throw new Error('expected a TemplateError, nothing was thrown');
}

describe('createEnvelope and parseEnvelope: round trips', () => {
  it('round-trips a template envelope', () => {
    const envelope = createEnvelope({
      template: 'verification',
      data: { username: 'Jane', verificationUrl: 'https://acme.example/verify?t=1' },
      to: 'jane@example.com',
      idempotencyKey: 'verify:user-42',
    });
    expect(envelope).toMatchObject({
      version: 1,
      idempotencyKey: 'verify:user-42',
      template: 'verification',
      data: { username: 'Jane', verificationUrl: 'https://acme.example/verify?t=1' },
      to: ['jane@example.com'],
    });
    expect(envelope).not.toHaveProperty('subject');
    expect(envelope).not.toHaveProperty('text');
    const json = JSON.stringify(envelope);
    expect(parseEnvelope(json)).toEqual(envelope);
    expect(parseEnvelope(Buffer.from(json))).toEqual(envelope);
    expect(parseEnvelope(new TextEncoder().encode(json))).toEqual(envelope);
  });

  it('round-trips a pre-rendered envelope', () => {
    const envelope = createEnvelope({
      subject: 'Your invoice',
      html: '<p>Invoice attached</p>',
      text: 'Invoice attached',
      to: ['jane@example.com', 'John <john@example.com>'],
    });
    expect(envelope).toMatchObject({
      version: 1,
      subject: 'Your invoice',
      html: '<p>Invoice attached</p>',
      text: 'Invoice attached',
      to: ['jane@example.com', 'John <john@example.com>'],
    });
    expect(envelope).not.toHaveProperty('template');
    expect(envelope).not.toHaveProperty('data');
    expect(parseEnvelope(JSON.stringify(envelope))).toEqual(envelope);
  });

  it('writes every documented field, and reads each back', () => {
    const createdAt = new Date('2026-11-22T10:00:00.000Z');
    const rendered = createEnvelope({
      id: 'env-42',
      createdAt,
      idempotencyKey: 'invoice:42',
      subject: 'Invoice 42',
      html: '<p>Invoice</p>',
      text: 'Invoice',
      from: { name: 'Acme Billing', address: 'billing@acme.example' },
      replyTo: 'Support <support@acme.example>',
      to: 'jane@example.com',
      cc: ['boss@example.com'],
      bcc: 'audit@acme.example',
      headers: { 'X-Invoice': '42' },
      tags: ['billing', 'invoice'],
      metadata: { invoice: 42, paid: false, plan: 'pro' },
      attachments: [
        { filename: 'invoice.txt', content: 'total: 10', contentType: 'text/plain', cid: 'inv42' },
      ],
      category: 'product',
      traceparent: TRACEPARENT,
    });
    expect(rendered).toEqual({
      version: 1,
      id: 'env-42',
      idempotencyKey: 'invoice:42',
      createdAt: '2026-11-22T10:00:00.000Z',
      subject: 'Invoice 42',
      html: '<p>Invoice</p>',
      text: 'Invoice',
      from: 'Acme Billing <billing@acme.example>',
      replyTo: ['Support <support@acme.example>'],
      to: ['jane@example.com'],
      cc: ['boss@example.com'],
      bcc: ['audit@acme.example'],
      headers: { 'X-Invoice': '42' },
      tags: ['billing', 'invoice'],
      metadata: { invoice: 42, paid: false, plan: 'pro' },
      attachments: [
        {
          filename: 'invoice.txt',
          content: Buffer.from('total: 10').toString('base64'),
          contentType: 'text/plain',
          cid: 'inv42',
        },
      ],
      category: 'product',
      traceparent: TRACEPARENT,
    });
    const templated = createEnvelope({
      template: 'welcome',
      data: { username: 'Jane' },
      subject: 'Welcome aboard',
      to: 'jane@example.com',
    });
    expect(templated).toMatchObject({
      template: 'welcome',
      data: { username: 'Jane' },
      subject: 'Welcome aboard',
    });
    const written = new Set([...Object.keys(rendered), ...Object.keys(templated)]);
    expect([...written].sort()).toEqual(
      [
        'version',
        'id',
        'idempotencyKey',
        'createdAt',
        'template',
        'data',
        'subject',
        'html',
        'text',
        'from',
        'replyTo',
        'to',
        'cc',
        'bcc',
        'headers',
        'tags',
        'metadata',
        'attachments',
        'category',
        'traceparent',
      ].sort(),
    );
    expect(parseEnvelope(JSON.stringify(rendered))).toEqual(rendered);
    expect(parseEnvelope(JSON.stringify(templated))).toEqual(templated);
    expect(ENVELOPE_VERSION).toBe(1);
  });

  it('normalises addresses: international domains become ASCII, names are kept', () => {
    const envelope = createEnvelope({ ...preRendered, to: 'Jürgen <jurgen@bücher.example>' });
    expect(envelope.to).toEqual(['"Jürgen" <jurgen@xn--bcher-kva.example>']);
    expect(parseEnvelope(JSON.stringify(envelope)).to).toEqual(envelope.to);
  });

  it('keeps a display name with a quote or a backslash, as createMessage does', () => {
    const to = [
      { name: 'Jane "JJ" Doe', address: 'jane@example.com' },
      { name: 'Back\\slash', address: 'back@example.com' },
    ];
    expect(createMessage({ subject: 'Hi', text: 'Hello', from: 'a@acme.example', to }).to).toEqual(to);
    const envelope = createEnvelope({ ...preRendered, to });
    const parsed = parseEnvelope(JSON.stringify(envelope));
    expect(parsed.to.map((a) => parseAddress(a, 'to'))).toEqual(to);
  });

  it('carries Uint8Array attachment content byte for byte', () => {
    const bytes = new Uint8Array(256);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i;
    const envelope = createEnvelope({
      ...preRendered,
      attachments: [{ filename: 'all-bytes.bin', content: bytes, contentType: 'application/octet-stream' }],
    });
    const parsed = parseEnvelope(JSON.stringify(envelope));
    expect(new Uint8Array(Buffer.from(parsed.attachments?.[0]?.content ?? '', 'base64'))).toEqual(bytes);
    const decoded = envelopeFields(parsed).attachments?.[0];
    expect(decoded?.content).toBeInstanceOf(Uint8Array);
    expect(decoded?.content).toEqual(bytes);
    expect(decoded?.filename).toBe('all-bytes.bin');
  });

  it('generates id and idempotencyKey as UUIDs when missing, and keeps them when given', () => {
    const a = createEnvelope(preRendered);
    const b = createEnvelope(preRendered);
    expect(a.id).toMatch(UUID);
    expect(a.idempotencyKey).toMatch(UUID);
    expect(a.id).not.toBe(a.idempotencyKey);
    expect(b.id).not.toBe(a.id);
    expect(b.idempotencyKey).not.toBe(a.idempotencyKey);
    expect(Date.parse(a.createdAt)).not.toBeNaN();
    const given = createEnvelope({ ...preRendered, id: 'my-id', idempotencyKey: 'reset:user-7:2026-11-22' });
    expect(given.id).toBe('my-id');
    expect(given.idempotencyKey).toBe('reset:user-7:2026-11-22');
  });
});

describe('the category travels in the envelope', () => {
  it('writes the category it is given and reads it back; without one, the field is absent', () => {
    for (const category of ['security', 'transactional', 'product', 'marketing'] as const) {
      const envelope = createEnvelope({ ...preRendered, category });
      expect(envelope.category).toBe(category);
      expect(envelopeFields(parseEnvelope(JSON.stringify(envelope))).category).toBe(category);
    }
    const plain = createEnvelope(preRendered);
    expect('category' in plain).toBe(false);
    expect(envelopeFields(plain).category).toBeUndefined();
    expect(createMessage({ ...envelopeFields(plain), subject: 'Hi', from: 'a@acme.example' }).category).toBe(
      'transactional',
    );
  });

  it('refuses an unknown category on both sides, naming the field', () => {
    expect(messageField(() => createEnvelope({ ...preRendered, category: 'urgent' as 'security' }))).toBe(
      'category',
    );
    expect(messageField(() => parseEnvelope(JSON.stringify({ ...validEnvelope(), category: 7 })))).toBe(
      'category',
    );
    // A record written by another producer with the default spelled out is read as it says.
    const spelled = parseEnvelope(JSON.stringify({ ...validEnvelope(), category: 'transactional' }));
    expect(spelled.category).toBe('transactional');
  });
});

describe('parseEnvelope: schema and framing', () => {
  it('accepts the valid base it is spoiled from', () => {
    expect(parseWith({})()).toEqual(validEnvelope());
  });

  it('refuses an unknown top-level key, naming it', () => {
    expect(messageField(parseWith({ priority: 'high' }))).toBe('priority');
    expect(messageField(parseWith({ messageId: '<x@evil.example>' }))).toBe('messageId');
  });

  it('refuses version 2, and a missing or string version', () => {
    expect(messageField(parseWith({ version: 2 }))).toBe('version');
    expect(messageField(parseWith({ version: '1' }))).toBe('version');
    const { version: _version, ...unversioned } = validEnvelope();
    expect(messageField(() => parseEnvelope(JSON.stringify(unversioned)))).toBe('version');
  });

  it('refuses what is not JSON, or not a JSON object', () => {
    expect(messageField(() => parseEnvelope('{"version": 1,'))).toBe('envelope');
    expect(messageField(() => parseEnvelope(Buffer.from([0xff, 0xfe, 0x00])))).toBe('envelope');
    expect(messageField(() => parseEnvelope('[1]'))).toBe('envelope');
    expect(messageField(() => parseEnvelope('null'))).toBe('envelope');
  });

  it('refuses an empty or missing value', () => {
    expect(messageField(() => parseEnvelope(''))).toBe('envelope');
    expect(messageField(() => parseEnvelope(new Uint8Array()))).toBe('envelope');
    expect(messageField(() => parseEnvelope(null))).toBe('envelope');
    expect(messageField(() => parseEnvelope(undefined))).toBe('envelope');
  });

  it('refuses a bad id or createdAt', () => {
    expect(messageField(parseWith({ id: '' }))).toBe('id');
    expect(messageField(parseWith({ id: 'a b' }))).toBe('id');
    expect(messageField(parseWith({ createdAt: 'yesterday' }))).toBe('createdAt');
    expect(messageField(() => createEnvelope({ ...preRendered, id: 'has space' }))).toBe('id');
  });

  it('refuses an envelope without idempotencyKey (a required field)', () => {
    const { idempotencyKey: _key, ...keyless } = validEnvelope();
    expect(messageField(() => parseEnvelope(JSON.stringify(keyless)))).toBe('idempotencyKey');
  });

  it('refuses a pre-rendered email without a body, as a send would', () => {
    expect(messageField(parseWith({ text: undefined }))).toBe('html');
    expect(messageField(() => createEnvelope({ subject: 'Hi', to: 'jane@example.com' }))).toBe('html');
  });

  it('refuses an envelope over maxEnvelopeBytes, on both sides, and takes one exactly at it', () => {
    const envelope = createEnvelope({ ...preRendered, text: 'x'.repeat(2_000) });
    const size = Buffer.byteLength(JSON.stringify(envelope));
    expect(parseEnvelope(JSON.stringify(envelope), { maxEnvelopeBytes: size })).toEqual(envelope);
    expect(messageField(() => parseEnvelope(JSON.stringify(envelope), { maxEnvelopeBytes: size - 1 }))).toBe(
      'envelope',
    );
    expect(
      messageField(() =>
        createEnvelope({ ...preRendered, text: 'x'.repeat(2_000) }, { maxEnvelopeBytes: 1_000 }),
      ),
    ).toBe('envelope');
    // The default limit (900 000 bytes) applies without options.
    expect(messageField(() => createEnvelope({ ...preRendered, text: 'x'.repeat(900_001) }))).toBe(
      'envelope',
    );
    expect(
      messageField(() => parseEnvelope(JSON.stringify({ ...validEnvelope(), text: 'x'.repeat(900_001) }))),
    ).toBe('envelope');
  });
});

describe('hostile input is refused with a MessageError naming the field', () => {
  it('CR/LF in the subject', () => {
    expect(
      messageField(() => createEnvelope({ ...preRendered, subject: 'Hi\r\nBcc: victim@example.com' })),
    ).toBe('subject');
    expect(messageField(parseWith({ subject: 'Hi\nBcc: victim@example.com' }))).toBe('subject');
  });

  it('CR/LF in a header value', () => {
    const headers = { 'X-Campaign': 'a\r\nBcc: victim@example.com' };
    expect(messageField(() => createEnvelope({ ...preRendered, headers }))).toBe('headers.X-Campaign');
    expect(messageField(parseWith({ headers }))).toBe('headers.X-Campaign');
  });

  it('a reserved or malformed header name', () => {
    expect(messageField(parseWith({ headers: { Bcc: 'victim@example.com' } }))).toBe('headers.Bcc');
    expect(messageField(parseWith({ headers: { 'X-A: b': 'c' } }))).toBe('headers.X-A: b');
  });

  it('CR/LF in an address display name', () => {
    expect(
      messageField(() =>
        createEnvelope({
          ...preRendered,
          to: { name: 'Eve\r\nBcc: victim@example.com', address: 'eve@example.com' },
        }),
      ),
    ).toBe('to[0].name');
    expect(
      messageField(() =>
        createEnvelope({ ...preRendered, to: 'Eve\r\nBcc: victim@example.com <eve@example.com>' }),
      ),
    ).toBe('to[0]');
    expect(messageField(parseWith({ cc: ['"Eve\r\nBcc: victim@example.com" <eve@example.com>'] }))).toBe(
      'cc[0]',
    );
    expect(messageField(parseWith({ from: 'Eve\n <eve@example.com>' }))).toBe('from');
  });

  it.each([
    ['a@b@c'],
    ['"quoted"@example.com'],
    ['"with space"@example.com'],
    ['user@[127.0.0.1]'],
    ['user@[IPv6:::1]'],
    ['user(comment)@example.com'],
    ['user@localhost'],
  ])('the odd address %s', (address) => {
    expect(messageField(() => createEnvelope({ ...preRendered, to: address }))).toBe('to[0]');
    expect(messageField(parseWith({ to: ['jane@example.com', address] }))).toBe('to[1]');
    expect(messageField(parseWith({ bcc: [address] }))).toBe('bcc[0]');
  });

  it('recipient lists that are not arrays of strings', () => {
    expect(messageField(parseWith({ to: 'jane@example.com' }))).toBe('to');
    expect(messageField(parseWith({ cc: [{ address: 'jane@example.com' }] }))).toBe('cc');
    expect(messageField(parseWith({ to: [] }))).toBe('to');
  });

  it.each(['path', 'href', 'url'])('an attachment with a %s key, on the topic', (key) => {
    const attachments = [{ filename: 'secret.txt', content: 'eA==', [key]: '/etc/passwd' }];
    expect(messageField(parseWith({ attachments }))).toBe(`attachments[0].${key}`);
  });

  it.each([
    ['message/rfc822', 'invoice.eml', 'contentType'],
    ['multipart/mixed; boundary=zzz', 'a.bin', 'contentType'],
    ['application/pdf', 'invoice\u202Efdp.exe', 'filename'],
    ['application/pdf', '=?UTF-8?B?Li4vLi4vLmJhc2hyYw==?=', 'filename'],
  ])('an attachment typed %s named %j, on the topic and when publishing', (contentType, filename, field) => {
    const attachments = [{ filename, content: 'eA==', contentType }];
    expect(messageField(parseWith({ attachments }))).toBe(`attachments[0].${field}`);
    expect(
      messageField(() =>
        createEnvelope({ ...preRendered, attachments: [{ filename, content: 'x', contentType }] }),
      ),
    ).toBe(`attachments[0].${field}`);
  });

  it.each([
    ['{"__proto__":"x","X-A":"1"}', 'headers', 'headers.__proto__'],
    ['{"__proto__":"x"}', 'metadata', 'metadata.__proto__'],
    ['{"X-Mailgun-Drop-Message":"yes"}', 'headers', 'headers.X-Mailgun-Drop-Message'],
    ['{"In-Reply-To":"order 42"}', 'headers', 'headers.In-Reply-To'],
    ['{"X-Ref":"=?UTF-8?B?SGk=?="}', 'headers', 'headers.X-Ref'],
  ])('%s as %s, on the topic', (json, key, field) => {
    // Spliced in as text: an object literal's __proto__ would set the prototype, not a key.
    const record = JSON.stringify(validEnvelope()).replace(/}$/, `,"${key}":${json}}`);
    expect(messageField(() => parseEnvelope(record))).toBe(field);
  });

  it.each(['path', 'href', 'url'])('an attachment with a %s key, when publishing', (key) => {
    const withContent = [{ filename: 'secret.txt', content: 'x', [key]: '/etc/passwd' }];
    expect(messageField(() => createEnvelope({ ...preRendered, attachments: withContent as never }))).toBe(
      `attachments[0].${key}`,
    );
    const withoutContent = [{ filename: 'secret.txt', [key]: 'file:///etc/passwd' }];
    expect(messageField(() => createEnvelope({ ...preRendered, attachments: withoutContent as never }))).toBe(
      `attachments[0].${key}`,
    );
  });

  it.each([['not base64!'], ['eA='], ['e=A='], ['AAAA\n']])(
    'attachment content that is not base64: %j',
    (content) => {
      expect(messageField(parseWith({ attachments: [{ filename: 'a.bin', content }] }))).toBe(
        'attachments[0].content',
      );
    },
  );

  it('attachments that are not objects, or have a path for a file name', () => {
    expect(messageField(parseWith({ attachments: 'eA==' }))).toBe('attachments');
    expect(messageField(parseWith({ attachments: ['eA=='] }))).toBe('attachments[0]');
    expect(
      messageField(parseWith({ attachments: [{ filename: '../../etc/passwd', content: 'eA==' }] })),
    ).toBe('attachments[0].filename');
  });

  it('attachments over maxAttachmentBytes, counted together', () => {
    // 1 023 bytes each: a multiple of 3, so the base64 has no padding.
    const part = new Uint8Array(1023);
    const two = [
      { filename: 'a.bin', content: part },
      { filename: 'b.bin', content: part },
    ];
    expect(
      createEnvelope({ ...preRendered, attachments: two }, { maxAttachmentBytes: 2046 }).attachments,
    ).toHaveLength(2);
    expect(
      messageField(() => createEnvelope({ ...preRendered, attachments: two }, { maxAttachmentBytes: 2045 })),
    ).toBe('attachments');
    const onTopic = JSON.stringify({
      ...validEnvelope(),
      attachments: two.map((a) => ({
        filename: a.filename,
        content: Buffer.from(a.content).toString('base64'),
      })),
    });
    expect(parseEnvelope(onTopic, { maxAttachmentBytes: 2046 }).attachments).toHaveLength(2);
    expect(messageField(() => parseEnvelope(onTopic, { maxAttachmentBytes: 2045 }))).toBe('attachments');
    // The default limit is 512 KiB.
    const big = [{ filename: 'big.bin', content: new Uint8Array(512 * 1024 + 1) }];
    expect(messageField(() => createEnvelope({ ...preRendered, attachments: big }))).toBe('attachments');
  });

  it('counts decoded bytes: an attachment of exactly maxAttachmentBytes is accepted', () => {
    // 10 bytes are 16 base64 characters with "==" padding: still 10 bytes, not 12.
    const ten = [{ filename: 'ten.bin', content: new Uint8Array(10) }];
    expect(
      createEnvelope({ ...preRendered, attachments: ten }, { maxAttachmentBytes: 10 }).attachments,
    ).toHaveLength(1);
    const onTopic = JSON.stringify({
      ...validEnvelope(),
      attachments: [{ filename: 'ten.bin', content: Buffer.alloc(10).toString('base64') }],
    });
    expect(parseEnvelope(onTopic, { maxAttachmentBytes: 10 }).attachments).toHaveLength(1);
  });

  it.each([
    ['not-a-traceparent'],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7'],
    ['00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01'],
    [`${TRACEPARENT}\r\nX-Injected: 1`],
  ])('the traceparent %j', (traceparent) => {
    expect(messageField(() => createEnvelope({ ...preRendered, traceparent }))).toBe('traceparent');
    expect(messageField(parseWith({ traceparent }))).toBe('traceparent');
  });

  it('a traceparent that is not a string', () => {
    expect(messageField(parseWith({ traceparent: 1 }))).toBe('traceparent');
  });

  it.each([['../x'], ['a/b'], ['..'], ['a..b'], ['/etc/passwd'], ['C:\\x'], ['Verification']])(
    'the template name %j (a TemplateError naming it)',
    (template) => {
      const data = { username: 'Jane' };
      expect(templateError(() => createEnvelope({ ...preRendered, template, data })).template).toBe(template);
      expect(templateError(parseWith({ template, data })).template).toBe(template);
    },
  );

  it('template data that is not an object', () => {
    for (const data of [[], 'x', 1, null]) {
      expect(messageField(parseWith({ template: 'welcome', data }))).toBe('data');
    }
    expect(messageField(parseWith({ template: 'welcome' }))).toBe('data');
    expect(
      messageField(() => createEnvelope({ ...preRendered, template: 'welcome', data: [] as never })),
    ).toBe('data');
  });

  it('data without a template', () => {
    expect(messageField(parseWith({ data: { username: 'Jane' } }))).toBe('data');
    expect(messageField(() => createEnvelope({ ...preRendered, data: { username: 'Jane' } }))).toBe('data');
  });

  it('no subject without a template', () => {
    expect(messageField(parseWith({ subject: undefined }))).toBe('subject');
    expect(messageField(parseWith({ subject: 1 }))).toBe('subject');
  });

  it('metadata and tags that a send would refuse', () => {
    expect(messageField(parseWith({ metadata: { nested: { a: 1 } } }))).toBe('metadata.nested');
    expect(messageField(parseWith({ tags: ['ok', 'bad\r\ntag'] }))).toBe('tags[1]');
  });
});

describe('createEnvelope reads each address once, and refuses what a send refuses', () => {
  const from = 'Acme <no-reply@acme.example>';
  // Each spoils one field of a valid email; createMessage (what a send runs) is the reference.
  const spoiled: Array<[string, Partial<QueuedEmail>]> = [
    ['a malformed To', { to: 'not-an-address' }],
    ['no recipient', { to: [] }],
    ['the second To', { to: ['ok@example.com', 'x@'] }],
    ['a Cc', { cc: 'bad' }],
    ['a Bcc with a line break in its name', { bcc: ['a@b.example', 'Jane\r\n <j@x.example>'] }],
    ['a Reply-To', { replyTo: 'nope' }],
    ['the sender', { from: 'x' }],
    ["the sender's name", { from: { name: 'a\nb', address: 'a@acme.example' } }],
    ['an IP-literal domain', { to: 'jane@[127.0.0.1]' }],
    ['the subject', { subject: 'a\r\nb' }],
    ['a header', { headers: { 'X-A': 'a\nb' } }],
    ['a reserved header', { headers: { 'Message-ID': '<a@b>' } }],
    ['the idempotency key', { idempotencyKey: 'a\u0000b' }],
    ['too many tags', { tags: ['a', 'b', 'c', 'd'] }],
    ['metadata', { metadata: { k: {} as never } }],
  ];
  it.each(spoiled)('%s: the same MessageError field as createMessage', (_, change) => {
    const email = { ...preRendered, ...change };
    const expected = messageField(() => createMessage({ from, ...email } as never));
    expect(messageField(() => createEnvelope(email))).toBe(expected);
  });

  it('checks an id and a createdAt the caller gave, not the ones it makes', () => {
    expect(messageField(() => createEnvelope({ ...preRendered, id: 'bad id!' }))).toBe('id');
    expect(createEnvelope(preRendered).id).toMatch(UUID);
    const notADate = { toISOString: () => 'yesterday' } as unknown as Date;
    expect(messageField(() => createEnvelope({ ...preRendered, createdAt: notADate }))).toBe('createdAt');
    expect(Date.parse(createEnvelope(preRendered).createdAt)).not.toBeNaN();
  });

  it('writes each address in the form a send parses back to the same address', () => {
    const { envelope } = buildEnvelope(
      {
        ...preRendered,
        from: { name: 'Acme "Support"', address: 'help@Acme.example' },
        to: ['Jane <Jane@Bücher.example>', { address: 'joe@example.com' }],
        cc: 'Åsa <asa@example.org>',
      },
      {},
    );
    const message = createMessage({ ...envelopeFields(envelope), subject: 'Hi', text: '-' } as never);
    expect(message.from).toEqual({ name: 'Acme "Support"', address: 'help@acme.example' });
    expect(message.to).toEqual([
      { name: 'Jane', address: 'Jane@xn--bcher-kva.example' },
      { address: 'joe@example.com' },
    ]);
    expect(message.cc).toEqual([{ name: 'Åsa', address: 'asa@example.org' }]);
  });

  it("gives the producer the envelope's JSON and its first recipient's address as the key", () => {
    const built = buildEnvelope({ ...preRendered, to: ['Jane <Jane@Example.COM>', 'b@example.net'] }, {});
    expect(built.json).toBe(JSON.stringify(built.envelope));
    expect(parseEnvelope(built.json)).toEqual(built.envelope);
    expect(built.key).toBe(parseAddress(built.envelope.to[0]!, 'to').address.toLowerCase());
    expect(built.key).toBe('jane@example.com');
  });
});
