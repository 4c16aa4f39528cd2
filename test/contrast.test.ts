/** WCAG 2.1's relative luminance and contrast ratio, on pairs whose ratios are known. */
import { describe, expect, it } from 'vitest';
import { contrastRatio, formatRatio, inkOn, relativeLuminance } from '../src/contrast.js';

describe('contrastRatio', () => {
  it('is 21 for black on white and 1 for a colour on itself, in either order', () => {
    expect(contrastRatio('#FFFFFF', '#000000')).toBe(21);
    expect(contrastRatio('#000000', '#FFFFFF')).toBe(21);
    expect(contrastRatio('#0B5ED7', '#0B5ED7')).toBe(1);
  });

  it('gives the ratios contrast checkers give', () => {
    // The old default primary: white on it fails AA (4.5:1).
    expect(contrastRatio('#007BFF', '#FFFFFF')).toBeCloseTo(3.98, 2);
    expect(contrastRatio('#6C757D', '#F8F9FA')).toBeCloseTo(4.45, 2);
    expect(contrastRatio('#767676', '#FFFFFF')).toBeCloseTo(4.54, 2);
    expect(contrastRatio('#FFC107', '#FFFFFF')).toBeCloseTo(1.63, 2);
  });

  it('reads #RGB as #RRGGBB, in either case', () => {
    expect(contrastRatio('#fff', '#000')).toBe(21);
    expect(relativeLuminance('#abc')).toBe(relativeLuminance('#AABBCC'));
  });

  it('refuses what is not a hex colour', () => {
    expect(() => relativeLuminance('red')).toThrow(TypeError);
    expect(() => contrastRatio('#12345', '#FFFFFF')).toThrow(/not a hex colour/);
  });
});

describe('inkOn', () => {
  it('is white on a dark fill and the dark ink on a light one', () => {
    expect(inkOn('#0B5ED7')).toBe('#FFFFFF');
    expect(inkOn('#1A2B3C')).toBe('#FFFFFF');
    expect(inkOn('#FFC107')).toBe('#111315');
    expect(inkOn('#58A6FF')).toBe('#111315');
    // Orange: white is 3.12:1, the dark ink 5.95:1.
    expect(inkOn('#FF5A00')).toBe('#111315');
  });
});

describe('formatRatio', () => {
  it('rounds down, so a ratio below 4.5 never reads 4.50', () => {
    expect(formatRatio(4.4999)).toBe('4.49');
    expect(formatRatio(21)).toBe('21.00');
    expect(formatRatio(contrastRatio('#007BFF', '#FFFFFF'))).toBe('3.97');
  });
});
