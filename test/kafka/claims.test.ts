import { describe, expect, it } from 'vitest';
import { isPending, KeyClaims } from '../../src/kafka/claims.js';
import {
  type IdempotencyStore,
  type IdempotencyStoreError,
  memoryIdempotencyStore,
} from '../../src/kafka/idempotency.js';

function claimsOn(store: IdempotencyStore) {
  const said: Array<{ kind: 'systemic' | 'storeFailed'; error: IdempotencyStoreError }> = [];
  const claims = new KeyClaims(store, 'worker-a', {
    systemic: (error) => void said.push({ kind: 'systemic', error: error as IdempotencyStoreError }),
    storeFailed: (error) => void said.push({ kind: 'storeFailed', error }),
  });
  return { claims, said };
}

describe('claims on the idempotency store', () => {
  it('answers from the memory store at once, without a promise, and marks and releases the same way', () => {
    const { claims } = claimsOn(memoryIdempotencyStore());
    const claim = claims.claim('k1');
    expect(isPending(claim)).toBe(false);
    expect(claim).toEqual({ status: 'claimed' });
    expect(claims.markSent('k1')).toBe('marked');
    claims.done('k1');
    expect(claims.claim('k1')).toEqual({ status: 'sent' });
    claims.done('k1');
    expect(claims.claim('k2')).toEqual({ status: 'claimed' });
    expect(claims.release('k2')).toBeUndefined();
    claims.done('k2');
    expect(claims.claim('k2')).toEqual({ status: 'claimed' });
  });

  it('makes a copy of a key in hand wait until the first is done, then finds it sent', async () => {
    const { claims } = claimsOn(memoryIdempotencyStore());
    expect(claims.claim('k')).toEqual({ status: 'claimed' });
    const copy = claims.claim('k');
    expect(isPending(copy)).toBe(true);
    let answered = false;
    void (copy as Promise<unknown>).then(() => {
      answered = true;
    });
    await Promise.resolve();
    expect(answered).toBe(false);
    claims.markSent('k');
    claims.done('k');
    expect(await copy).toEqual({ status: 'sent' });
  });

  it('reports a store that throws or rejects as an IdempotencyStoreError, and claims nothing', async () => {
    const failing = (how: 'throw' | 'reject'): IdempotencyStore => {
      const fail = () => {
        const error = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        if (how === 'throw') throw error;
        return Promise.reject(error);
      };
      return { name: 'flaky', claim: fail, markSent: fail, release: fail } as unknown as IdempotencyStore;
    };
    for (const how of ['throw', 'reject'] as const) {
      const { claims, said } = claimsOn(failing(how));
      const claim = claims.claim('k');
      expect(how === 'reject' ? await claim : claim).toBeUndefined();
      const marked = claims.markSent('k');
      expect(how === 'reject' ? await marked : marked).toBeUndefined();
      await claims.release('k');
      expect(said.map((s) => [s.kind, s.error.operation, s.error.code, s.error.name])).toEqual([
        ['systemic', 'claim', 'ECONNREFUSED', 'IdempotencyStoreError'],
        ['storeFailed', 'markSent', 'ECONNREFUSED', 'IdempotencyStoreError'],
        ['storeFailed', 'release', 'ECONNREFUSED', 'IdempotencyStoreError'],
      ]);
    }
  });
});
