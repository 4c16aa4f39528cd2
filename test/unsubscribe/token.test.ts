import { describe, expect, it } from 'vitest';
import { isConfigError, isMessageError } from '../../src/errors.js';
import {
  signUnsubscribeToken,
  type UnsubscribeTokenResult,
  verifyUnsubscribeToken,
} from '../../src/unsubscribe/index.js';

const OLD = 'old-secret-old-secret-old-secret-0';
const CURRENT = 'current-secret-current-secret-current';
const NEXT = 'next-secret-next-secret-next-secret-xx';
const SENT = new Date('2026-03-01T12:00:00.789Z');
const day = 86_400_000;
const at = (ms: number) => new Date(SENT.getTime() + ms);

const token = (secret = CURRENT, extra: object = {}) =>
  signUnsubscribeToken(
    { address: 'Jane.Doe@Example.COM', category: 'product', issuedAt: SENT, ...extra },
    secret,
  );

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('signUnsubscribeToken and verifyUnsubscribeToken', () => {
  it('round-trips the lower-cased address, the category and the issue time to the second', () => {
    const result = verifyUnsubscribeToken(token(), { secrets: [CURRENT], now: at(day) });
    expect(result).toEqual({
      ok: true,
      address: 'jane.doe@example.com',
      category: 'product',
      issuedAt: new Date('2026-03-01T12:00:00.000Z'),
    });
    const marketing = signUnsubscribeToken(
      { address: 'a@b.example', category: 'marketing', issuedAt: SENT },
      CURRENT,
    );
    expect(verifyUnsubscribeToken(marketing, { secrets: [CURRENT], now: SENT })).toMatchObject({
      ok: true,
      category: 'marketing',
    });
  });

  it('is URL-safe as it is: base64url segments and one dot', () => {
    expect(token()).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  });

  it('rotation: signs with the secret given, accepts any of the list, refuses one dropped from it', () => {
    const signedOld = token(OLD);
    const signedCurrent = token(CURRENT);
    const rotated = { secrets: [NEXT, CURRENT, OLD], now: at(day) };
    expect(verifyUnsubscribeToken(signedOld, rotated).ok).toBe(true);
    expect(verifyUnsubscribeToken(signedCurrent, rotated).ok).toBe(true);
    const dropped = { secrets: [NEXT, CURRENT], now: at(day) };
    expect(verifyUnsubscribeToken(signedOld, dropped)).toEqual({ ok: false, reason: 'forged' });
  });

  it('a token signed with another secret is forged', () => {
    expect(verifyUnsubscribeToken(token(NEXT), { secrets: [CURRENT], now: SENT })).toEqual({
      ok: false,
      reason: 'forged',
    });
  });

  it('expires after maxAgeDays (default 90), not a second before', () => {
    const t = token();
    const check = (ms: number, maxAgeDays?: number) =>
      verifyUnsubscribeToken(t, { secrets: [CURRENT], now: at(ms), ...(maxAgeDays ? { maxAgeDays } : {}) });
    expect(check(90 * day - 1000).ok).toBe(true);
    expect(check(90 * day + 1000)).toEqual({ ok: false, reason: 'expired' });
    expect(check(7 * day + 1000, 7)).toEqual({ ok: false, reason: 'expired' });
    expect(check(6 * day, 7).ok).toBe(true);
  });

  it('a token issued more than five minutes ahead of the clock is refused as future', () => {
    const t = token();
    expect(verifyUnsubscribeToken(t, { secrets: [CURRENT], now: at(-10 * 60_000) })).toEqual({
      ok: false,
      reason: 'future',
    });
    expect(verifyUnsubscribeToken(t, { secrets: [CURRENT], now: at(-60_000) }).ok).toBe(true);
  });

  it('tampering with any single character is refused, never accepted and never thrown', () => {
    const t = token();
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    let tried = 0;
    for (let i = 0; i < t.length; i++) {
      for (const replacement of [alphabet[(alphabet.indexOf(t[i]!) + 1) % alphabet.length]!, 'A', '_', '.']) {
        if (replacement === t[i]) continue;
        const tampered = t.slice(0, i) + replacement + t.slice(i + 1);
        const result = verifyUnsubscribeToken(tampered, { secrets: [CURRENT], now: SENT });
        expect(result.ok, `position ${i} -> ${replacement}`).toBe(false);
        expect(['forged', 'malformed']).toContain((result as { reason: string }).reason);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(t.length * 3);
  });

  it('the last character of a segment cannot be respelled with the same bytes (base64url slack bits)', () => {
    const t = token();
    const last = t.at(-1)!;
    // 43 characters carry 258 bits for 256: the lowest two bits of the last one are ignored by decoders.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(Buffer.from(t.split('.')[1]!.slice(0, -1) + sibling, 'base64url')).toEqual(
      Buffer.from(t.split('.')[1]!, 'base64url'),
    );
    expect(verifyUnsubscribeToken(t.slice(0, -1) + sibling, { secrets: [CURRENT], now: SENT })).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });

  it('a payload re-signed to say another address or category needs the secret', () => {
    const [body, mac] = token().split('.');
    const text = Buffer.from(body!, 'base64url').toString('utf8');
    for (const changed of [text.replace('jane.doe', 'john.doe'), text.replace('product', 'marketing')]) {
      const forged = `${Buffer.from(changed).toString('base64url')}.${mac}`;
      expect(verifyUnsubscribeToken(forged, { secrets: [CURRENT], now: SENT })).toEqual({
        ok: false,
        reason: 'forged',
      });
    }
  });

  it.each([
    ['nothing', undefined],
    ['a number', 42],
    ['an empty string', ''],
    ['no dot', 'abc'],
    ['two dots', 'a.b.c'],
    ['a cut-short signature', token().slice(0, -5)],
    ['padding', `${token()}=`],
    ['spaces', ` ${token()}`],
    ['a huge string', 'A'.repeat(100_000)],
    ['non-ASCII', 'ä.ö'],
  ])('%s is malformed', (_name, value) => {
    expect(verifyUnsubscribeToken(value, { secrets: [CURRENT], now: SENT })).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });

  it('a payload of ours that is not the current version is malformed, even correctly signed', async () => {
    const { createHmac } = await import('node:crypto');
    const body = Buffer.from('u2:product:1772366400:jane@example.com');
    const mac = createHmac('sha256', CURRENT).update(body).digest('base64url');
    const result: UnsubscribeTokenResult = verifyUnsubscribeToken(`${body.toString('base64url')}.${mac}`, {
      secrets: [CURRENT],
      now: SENT,
    });
    expect(result).toEqual({ ok: false, reason: 'malformed' });
  });

  it('secrets shorter than 32 bytes are a ConfigError naming the place in the list, never the value', () => {
    const short = 'short-secret';
    const error = thrown(() => verifyUnsubscribeToken(token(), { secrets: [CURRENT, short] })) as Error;
    expect(isConfigError(error) && error.option).toBe('secrets[1]');
    expect(error.message).not.toContain(short);
    expect(isConfigError(thrown(() => verifyUnsubscribeToken(token(), { secrets: [] })))).toBe(true);
    const sign = thrown(() => signUnsubscribeToken({ address: 'a@b.example', category: 'product' }, short));
    expect(isConfigError(sign) && sign.option).toBe('secret');
    expect(
      isConfigError(thrown(() => verifyUnsubscribeToken(token(), { secrets: [CURRENT], maxAgeDays: 0 }))),
    ).toBe(true);
  });

  it('32 bytes of binary secret are enough', () => {
    const secret = new Uint8Array(32).fill(7);
    const t = signUnsubscribeToken({ address: 'a@b.example', category: 'product' }, secret);
    expect(verifyUnsubscribeToken(t, { secrets: [secret] }).ok).toBe(true);
  });

  it('a bad payload to sign is a MessageError naming the field', () => {
    const bad = (payload: object) =>
      thrown(() => signUnsubscribeToken(payload as never, CURRENT)) as { field?: string };
    expect(
      isMessageError(bad({ address: 'not an address', category: 'product' })) &&
        bad({ address: 'x', category: 'product' }).field,
    ).toBe('address');
    expect(bad({ address: 'a@b.example', category: 'security' }).field).toBe('category');
    expect(bad({ address: 'a@b.example', category: 'product', issuedAt: new Date('nope') }).field).toBe(
      'issuedAt',
    );
  });
});
