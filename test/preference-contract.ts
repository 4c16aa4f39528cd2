/**
 * What every PreferenceStore promises, run against each (memory, PostgreSQL): the latest choice per
 * address and category by time, addresses compared lower-cased, typed refusals naming the field.
 */
import { describe, expect, it } from 'vitest';
import { isMessageError } from '../src/errors.js';
import type { PreferenceStore } from '../src/preferences.js';
import { rejection } from './helpers/thrown.js';

export type PreferenceStoreFactory = () => Promise<{ store: PreferenceStore; close?: () => Promise<void> }>;

export function preferenceStoreContract(name: string, make: PreferenceStoreFactory): void {
  describe(`${name}: the PreferenceStore contract`, () => {
    const withStore = (test: (store: PreferenceStore) => Promise<void>) => async () => {
      const { store, close } = await make();
      try {
        await test(store);
      } finally {
        await close?.();
      }
    };

    it(
      'keeps each address’s latest choice per category, compared lower-cased',
      withStore(async (store) => {
        expect(await store.get('jane@example.com', 'product')).toBeUndefined();
        await store.set('Jane@Example.com', 'marketing', true, {
          source: 'signup',
          at: new Date('2026-01-01'),
        });
        await store.set('jane@example.com', 'product', false, { at: new Date('2026-01-02') });
        expect(await store.get('JANE@example.com', 'marketing')).toEqual({
          address: 'jane@example.com',
          category: 'marketing',
          allowed: true,
          at: new Date('2026-01-01'),
          source: 'signup',
        });
        expect((await store.list('jane@example.com')).map((c) => [c.category, c.allowed])).toEqual([
          ['product', false],
          ['marketing', true],
        ]);
        expect(await store.list('someone-else@example.com')).toEqual([]);
      }),
    );

    it(
      'ignores a choice older than the one it has (a replayed or delayed request)',
      withStore(async (store) => {
        await store.set('jane@example.com', 'marketing', false, { at: new Date('2026-03-01') });
        await store.set('jane@example.com', 'marketing', true, { at: new Date('2026-02-01') });
        expect((await store.get('jane@example.com', 'marketing'))?.allowed).toBe(false);
        await store.set('jane@example.com', 'marketing', true, {
          at: new Date('2026-04-01'),
          source: 'settings',
        });
        expect(await store.get('jane@example.com', 'marketing')).toMatchObject({
          allowed: true,
          source: 'settings',
        });
      }),
    );

    it(
      'refuses categories no one can turn off, malformed addresses and bad options, naming the field',
      withStore(async (store) => {
        const field = async (fn: () => Promise<unknown>) => {
          const error = await rejection(fn);
          return isMessageError(error) ? error.field : String(error);
        };
        expect(await field(() => store.set('jane@example.com', 'security' as 'product', false))).toBe(
          'category',
        );
        expect(await field(() => store.set('jane@example.com', 'transactional' as 'product', false))).toBe(
          'category',
        );
        expect(await field(() => store.get('jane@example.com', 'security' as 'product'))).toBe('category');
        expect(await field(() => store.set('not an address', 'product', false))).toBe('address');
        expect(await field(() => store.set('jane@example.com', 'product', 'no' as unknown as boolean))).toBe(
          'allowed',
        );
        expect(
          await field(() => store.set('jane@example.com', 'product', false, { at: new Date('x') })),
        ).toBe('at');
        expect(
          await field(() => store.set('jane@example.com', 'product', false, { source: 'x'.repeat(101) })),
        ).toBe('source');
        expect(await store.list('jane@example.com')).toEqual([]);
      }),
    );
  });
}
