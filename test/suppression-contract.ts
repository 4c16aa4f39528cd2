/**
 * The contract every SuppressionStore meets, run against each one (the memory store, PostgreSQL on
 * a real server): what EmailService, suppressFromEvents and `mailroom suppressions` rely on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isMessageError } from '../src/errors.js';
import type { SuppressionStore } from '../src/suppression.js';
import { rejection } from './helpers/thrown.js';

/** A fresh, empty store for one test, and how to let it go. */
export type StoreFactory = () => Promise<{ store: SuppressionStore; close?: () => Promise<void> }>;

export function suppressionStoreContract(name: string, make: StoreFactory): void {
  describe(`${name}: the SuppressionStore contract`, () => {
    const closers: (() => Promise<void>)[] = [];
    afterEach(async () => {
      while (closers.length) await closers.pop()!();
    });
    const fresh = async () => {
      const { store, close } = await make();
      if (close) closers.push(close);
      return store;
    };

    it('answers undefined and lists nothing when empty', async () => {
      const store = await fresh();
      expect(await store.isSuppressed('jane@example.com')).toBeUndefined();
      expect(await store.list()).toEqual([]);
      expect(await store.lift('jane@example.com')).toBe(false);
    });

    it('suppresses an address, found in any case, with its reason, date and detail', async () => {
      const store = await fresh();
      const since = new Date('2026-12-01T10:00:00.123Z');
      await store.suppress(' Jane@Example.COM ', 'hard-bounce', { detail: 'mailgun: 550 5.1.1', since });
      const expected = {
        address: 'jane@example.com',
        reason: 'hard-bounce',
        since,
        detail: 'mailgun: 550 5.1.1',
      };
      expect(await store.isSuppressed('jane@example.com')).toEqual(expected);
      expect(await store.isSuppressed('JANE@EXAMPLE.COM')).toEqual(expected);
      expect(await store.isSuppressed('john@example.com')).toBeUndefined();
      expect(await store.list()).toEqual([expected]);
    });

    it('dates a suppression now when no date is given, and has no detail when none is given', async () => {
      const store = await fresh();
      const before = Date.now();
      await store.suppress('jane@example.com', 'manual');
      const after = Date.now();
      const found = await store.isSuppressed('jane@example.com');
      expect(found).not.toHaveProperty('detail');
      expect(found!.since).toBeInstanceOf(Date);
      expect(found!.since.getTime()).toBeGreaterThanOrEqual(before);
      expect(found!.since.getTime()).toBeLessThanOrEqual(after);
    });

    it('keeps the first reason, date and detail when suppressed again', async () => {
      const store = await fresh();
      const first = new Date('2026-11-01T00:00:00Z');
      await store.suppress('jane@example.com', 'hard-bounce', { detail: 'first', since: first });
      await store.suppress('JANE@example.com', 'complaint', {
        detail: 'second',
        since: new Date('2026-11-02T00:00:00Z'),
      });
      expect(await store.list()).toEqual([
        { address: 'jane@example.com', reason: 'hard-bounce', since: first, detail: 'first' },
      ]);
    });

    it('keeps exactly one of two suppressions of the same address made at once', async () => {
      const store = await fresh();
      await Promise.all([
        store.suppress('jane@example.com', 'hard-bounce'),
        store.suppress('Jane@example.com', 'complaint'),
        store.suppress('jane@EXAMPLE.com', 'manual'),
      ]);
      const list = await store.list();
      expect(list).toHaveLength(1);
      expect(['hard-bounce', 'complaint', 'manual']).toContain(list[0]!.reason);
    });

    it('lifts an address (true once, then false), which may then be suppressed anew', async () => {
      const store = await fresh();
      await store.suppress('jane@example.com', 'hard-bounce');
      await store.suppress('john@example.com', 'complaint');
      expect(await store.lift('Jane@Example.com')).toBe(true);
      expect(await store.lift('jane@example.com')).toBe(false);
      expect(await store.isSuppressed('jane@example.com')).toBeUndefined();
      expect((await store.list()).map((s) => s.address)).toEqual(['john@example.com']);
      await store.suppress('jane@example.com', 'manual', { detail: 'asked us to stop' });
      expect(await store.isSuppressed('jane@example.com')).toMatchObject({
        reason: 'manual',
        detail: 'asked us to stop',
      });
    });

    it('lists oldest first, and those of the same instant in the order they were made', async () => {
      const store = await fresh();
      const at = (day: number) => new Date(Date.UTC(2026, 10, day));
      await store.suppress('c@example.com', 'manual', { since: at(3) });
      await store.suppress('z@example.com', 'complaint', { since: at(1) });
      await store.suppress('a@example.com', 'complaint', { since: at(1) });
      await store.suppress('b@example.com', 'hard-bounce', { since: at(2) });
      expect((await store.list()).map((s) => s.address)).toEqual([
        'z@example.com',
        'a@example.com',
        'b@example.com',
        'c@example.com',
      ]);
    });

    it('stores any text as the detail, as written', async () => {
      const store = await fresh();
      const detail = `it's "quoted"; DROP TABLE x; -- \\ ünïcødé ✉ ${'x'.repeat(900)}`;
      await store.suppress("o'brien+tag@example.com", 'manual', { detail });
      expect(await store.isSuppressed("O'Brien+tag@example.com")).toMatchObject({
        address: "o'brien+tag@example.com",
        detail,
      });
    });

    it('never takes \\u212Aevin@ (Kelvin sign) for kevin@: refused as an address, on write and on lookup', async () => {
      const store = await fresh();
      await store.suppress('kevin@acme.example', 'manual');
      for (const address of ['\u212Aevin@acme.example', '\u0130van@acme.example']) {
        const write = await rejection(() => store.suppress(address, 'hard-bounce'));
        expect(isMessageError(write) && write.field, address).toBe('address');
        const lookup = await rejection(() => store.isSuppressed(address));
        expect(isMessageError(lookup) && lookup.field, address).toBe('address');
      }
      expect(await store.isSuppressed('ivan@acme.example')).toBeUndefined();
      expect((await store.list()).map((s) => [s.address, s.reason])).toEqual([
        ['kevin@acme.example', 'manual'],
      ]);
    });

    it('refuses a malformed address, reason, detail or date, naming the field, and stores nothing', async () => {
      const store = await fresh();
      const field = async (fn: () => Promise<unknown>) => {
        const error = await rejection(fn);
        return isMessageError(error) ? error.field : error;
      };
      expect(await field(() => store.suppress('not an address', 'manual'))).toBe('address');
      expect(await field(() => store.isSuppressed('not an address'))).toBe('address');
      expect(await field(() => store.lift('jane@'))).toBe('address');
      expect(await field(() => store.suppress('jane@example.com', 'bored' as 'manual'))).toBe('reason');
      expect(
        await field(() => store.suppress('jane@example.com', 'manual', { detail: 'x'.repeat(1001) })),
      ).toBe('detail');
      expect(
        await field(() => store.suppress('jane@example.com', 'manual', { since: new Date('nope') })),
      ).toBe('since');
      expect(await store.list()).toEqual([]);
    });
  });
}
