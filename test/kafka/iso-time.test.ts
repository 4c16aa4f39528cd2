/**
 * The quick read of an envelope's createdAt gives Date.parse's answer, for toISOString()'s form
 * (read with integer arithmetic) and for everything else (left to Date.parse).
 */
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/kafka/iso-time.js';

describe('isoTime', () => {
  it('agrees with Date.parse on toISOString() of times from year 100 to 9999, every day of every month', () => {
    const first = Date.UTC(100, 0, 1);
    const last = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    let checked = 0;
    // Every day of a leap and a common year around now, and of 1600, 1900 and 2000 (the 100/400 rules).
    for (const year of [1600, 1900, 2000, 2024, 2026]) {
      for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += 86_400_000 + 3_723_456) {
        const text = new Date(t).toISOString();
        expect(isoTime(text), text).toBe(Date.parse(text));
        checked++;
      }
    }
    // And times spread over the whole range, by a fixed sequence (no flakiness).
    let seed = 12345;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const t = first + Math.floor((seed / 2 ** 31) * (last - first));
      const text = new Date(t).toISOString();
      expect(isoTime(text), text).toBe(Date.parse(text));
      checked++;
    }
    expect(checked).toBeGreaterThan(20_000);
  });

  it('reads toISOString() of a time (not only agrees with Date.parse when both are wrong)', () => {
    expect(isoTime('2026-12-05T19:04:05.678Z')).toBe(Date.UTC(2026, 11, 5, 19, 4, 5, 678));
    expect(isoTime('1969-12-31T23:59:59.999Z')).toBe(-1);
    expect(isoTime('2000-02-28T00:00:00.000Z')).toBe(951_696_000_000);
  });

  it("gives Date.parse's answer, NaN included, for what is not toISOString()'s form or out of range", () => {
    for (const text of [
      '2026-02-31T00:00:00.000Z', // Date.parse rolls it over to March
      '2026-02-29T00:00:00.000Z',
      '2026-01-01T24:00:00.000Z', // the end of the day, as Date.parse reads it
      '2026-13-01T00:00:00.000Z',
      '2026-00-01T00:00:00.000Z',
      '2026-01-00T00:00:00.000Z',
      '2026-01-01T00:60:00.000Z',
      '2026-01-01T00:00:60.000Z',
      '0050-01-01T00:00:00.000Z',
      '2026-01-01T00:00:00Z',
      '2026-01-01T00:00:00.000+01:00',
      '+002026-01-01T00:00:00.000Z',
      '2026-01-01',
      '2026-0a-01T00:00:00.000Z',
      '2026-01-01T00:00:00.0-0Z',
      '2026/01/01T00:00:00.000Z',
      'Sat, 05 Dec 2026 19:00:00 GMT',
      'yesterday',
      '',
    ]) {
      expect(isoTime(text), text).toBe(Date.parse(text));
    }
    expect(isoTime('2026-13-01T00:00:00.000Z')).toBeNaN();
  });
});
