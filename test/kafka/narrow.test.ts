/**
 * Unit tests of the narrowing of an envelope to some recipients (a mapping: no broker needed).
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '../../src/kafka/envelope.js';
import { HEADERS } from '../../src/kafka/index.js';
import { narrowedCopies, storeKey } from '../../src/kafka/narrow.js';

const envelope = createEnvelope({
  subject: 'Hi',
  text: 'Hi',
  to: ['Jane <jane@example.com>', 'grey@example.com'],
  cc: ['Cc Grey <cc-grey@example.com>'],
  bcc: ['b1@example.com', 'b2@example.com'],
  idempotencyKey: 'k',
});
const record = (headers: Record<string, string> = {}) => ({
  offset: '0',
  key: null,
  value: null,
  timestamp: '0',
  headers,
});

describe('narrowedCopies', () => {
  it('keeps To and Cc in their places, matching addresses case-insensitively and by address alone', () => {
    const { bcc: _bcc, ...rest } = envelope;
    expect(narrowedCopies(envelope, ['GREY@example.com', 'cc-grey@example.com'])).toEqual([
      { ...rest, to: ['grey@example.com'], cc: ['Cc Grey <cc-grey@example.com>'] },
    ]);
  });

  it('makes Cc the To when no To recipient is left', () => {
    const [copy] = narrowedCopies(envelope, ['cc-grey@example.com', 'b1@example.com']);
    expect(copy).toMatchObject({ to: ['Cc Grey <cc-grey@example.com>'], bcc: ['b1@example.com'] });
    expect(copy?.cc).toBeUndefined();
  });

  it('gives each Bcc recipient left alone a copy of its own, so none sees another', () => {
    const copies = narrowedCopies(envelope, ['b1@example.com', 'b2@example.com']);
    expect(copies.map((c) => [c.to, c.cc, c.bcc])).toEqual([
      [['b1@example.com'], undefined, undefined],
      [['b2@example.com'], undefined, undefined],
    ]);
    expect(copies.every((c) => c.idempotencyKey === 'k')).toBe(true);
  });
});

describe('storeKey', () => {
  it('is the idempotency key for an original, and key plus recipients for a narrowed copy', () => {
    expect(storeKey(envelope, record())).toBe('k');
    const [a] = narrowedCopies(envelope, ['grey@example.com']);
    const [b] = narrowedCopies(envelope, ['jane@example.com']);
    const narrowed = record({ [HEADERS.narrowed]: 'deferred' });
    expect(storeKey(a!, narrowed)).toMatch(/^k#[0-9a-f]{16}$/);
    expect(storeKey(a!, narrowed)).not.toBe(storeKey(b!, narrowed));
    expect(storeKey(a!, narrowed)).toBe(storeKey({ ...a!, to: ['GREY@example.com'] }, narrowed));
  });
});
