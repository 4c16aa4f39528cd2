/**
 * The brand's colours as resolved: defaults that pass WCAG AA in both palettes, the dark primary
 * (its own default, or the brand's light one carried over), and button labels chosen for contrast.
 */
import { describe, expect, it } from 'vitest';
import { contrastRatio } from '../../src/contrast.js';
import { checkBrand } from '../../src/preview/brand-check.js';
import { DEFAULT_PALETTE, resolveBrand } from '../../src/templates/brand.js';

describe('the default palettes', () => {
  const { colors, darkColors, buttonInk, darkButtonInk } = resolveBrand(undefined, 'Acme');

  it('pass 4.5:1 for every text the layout draws, light and dark', () => {
    const pairs: [string, string, string][] = [];
    for (const [name, p, ink] of [
      ['light', colors, buttonInk],
      ['dark', darkColors, darkButtonInk],
    ] as const) {
      pairs.push(
        [`${name} text on surface`, p.text, p.surface],
        [`${name} text on background`, p.text, p.background],
        [`${name} muted on surface`, p.muted, p.surface],
        [`${name} muted on background`, p.muted, p.background],
        [`${name} links on surface`, p.primary, p.surface],
        [`${name} primary button`, ink.primary, p.primary],
        [`${name} warning button`, ink.warning, p.warning],
      );
    }
    // A danger button keeps its light colour in dark mode.
    pairs.push(['light danger button', buttonInk.danger, colors.danger]);
    pairs.push(['dark danger button', darkButtonInk.danger, colors.danger]);
    const failing = pairs
      .map(([what, fg, bg]) => [what, contrastRatio(fg, bg)] as const)
      .filter(([, ratio]) => ratio < 4.5);
    expect(failing).toEqual([]);
    expect(checkBrand({ colors, darkColors, buttonInk, darkButtonInk }).findings).toEqual([]);
  });

  it('are the documented colours', () => {
    expect(DEFAULT_PALETTE).toMatchObject({ primary: '#0B5ED7', muted: '#697279' });
    expect(contrastRatio(colors.primary, '#FFFFFF')).toBeCloseTo(5.84, 2);
    expect(contrastRatio(colors.muted, colors.background)).toBeCloseTo(4.65, 2);
    expect(darkColors.primary).toBe('#58A6FF');
    expect(contrastRatio(darkColors.primary, darkColors.surface)).toBeCloseTo(6.62, 2);
  });
});

describe('the dark primary', () => {
  it('is your light primary when you set one, and your dark one when you set that', () => {
    expect(resolveBrand({ colors: { primary: '#FF5A00' } }, 'A').darkColors.primary).toBe('#FF5A00');
    const both = resolveBrand({ colors: { primary: '#FF5A00' }, darkColors: { primary: '#fa8' } }, 'A');
    expect(both.darkColors.primary).toBe('#FFAA88');
    expect(resolveBrand({ darkColors: { primary: '#ABCDEF' } }, 'A').colors.primary).toBe('#0B5ED7');
  });
});

describe('button labels', () => {
  it('are dark on a yellow primary and white on a dark one, per tone and palette', () => {
    const yellow = resolveBrand({ colors: { primary: '#FFC107' } }, 'A');
    expect(yellow.buttonInk.primary).toBe('#111315');
    expect(yellow.darkButtonInk.primary).toBe('#111315');
    const navy = resolveBrand({ colors: { primary: '#1A2B3C', warning: '#7A1F00' } }, 'A');
    expect(navy.buttonInk).toEqual({ primary: '#FFFFFF', danger: '#FFFFFF', warning: '#FFFFFF' });
    // The dark palette's warning is its own (#E3B341): dark ink there.
    expect(navy.darkButtonInk).toEqual({ primary: '#FFFFFF', danger: '#FFFFFF', warning: '#111315' });
    const defaults = resolveBrand(undefined, 'A');
    expect(defaults.buttonInk).toEqual({ primary: '#FFFFFF', danger: '#FFFFFF', warning: '#111315' });
    expect(defaults.darkButtonInk).toEqual({ primary: '#111315', danger: '#FFFFFF', warning: '#111315' });
  });
});
