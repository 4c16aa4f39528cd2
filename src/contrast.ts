/**
 * Internal: colour contrast as WCAG 2.1 defines it, for the built-in layout's colours: a button's
 * label chosen for contrast (brand.ts), the brand's contrast check (preview/brand-check.ts).
 */

/**
 * The least contrast WCAG 2.1 AA asks of text below 18pt (14pt bold): success criterion 1.4.3,
 * https://www.w3.org/TR/WCAG21/#contrast-minimum. Every text the built-in layout draws is smaller.
 */
export const MIN_TEXT_CONTRAST = 4.5;

/** The dark label of a button whose fill is too light for white: the default dark background. */
export const DARK_INK = '#111315';
export const WHITE_INK = '#FFFFFF';

/**
 * The relative luminance of an sRGB colour (`#RGB` or `#RRGGBB`), from 0 (black) to 1 (white), as
 * WCAG 2.1 defines it (https://www.w3.org/TR/WCAG21/#dfn-relative-luminance):
 * L = 0.2126 R + 0.7152 G + 0.0722 B, where each channel C of 0-255 is first C/255 = c, then
 * c / 12.92 when c <= 0.03928, else ((c + 0.055) / 1.055) ^ 2.4.
 */
export function relativeLuminance(color: string): number {
  const [r, g, b] = channels(color).map((value) => {
    const c = value / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/**
 * The contrast ratio of two colours as WCAG 2.1 defines it
 * (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio): (L1 + 0.05) / (L2 + 0.05), L1 the relative
 * luminance of the lighter, L2 of the darker. From 1 (the same) to 21 (black on white); the order
 * of the arguments does not matter.
 *
 * @example
 * ```ts
 * contrastRatio('#007BFF', '#FFFFFF'); // 3.979…: below 4.5, fails AA for text
 * ```
 */
export function contrastRatio(a: string, b: string): number {
  const [light, dark] = [relativeLuminance(a), relativeLuminance(b)].sort((x, y) => y - x) as [
    number,
    number,
  ];
  return (light + 0.05) / (dark + 0.05);
}

/** The label colour for a fill: white or {@link DARK_INK}, whichever contrasts more with it (white on a tie). */
export function inkOn(fill: string): string {
  return contrastRatio(DARK_INK, fill) > contrastRatio(WHITE_INK, fill) ? DARK_INK : WHITE_INK;
}

/**
 * A ratio to show: two decimals, rounded down, so a ratio that fails 4.5 never reads as `4.50`
 * (WCAG: a ratio is not rounded up to meet a threshold).
 */
export function formatRatio(ratio: number): string {
  return (Math.floor(ratio * 100) / 100).toFixed(2);
}

function channels(color: string): number[] {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color)?.[1];
  if (hex === undefined)
    throw new TypeError(`contrast: ${JSON.stringify(color)} is not a hex colour (#RGB or #RRGGBB)`);
  const full = hex.length === 3 ? [...hex].map((d) => d + d).join('') : hex;
  return [0, 2, 4].map((i) => Number.parseInt(full.slice(i, i + 2), 16));
}
