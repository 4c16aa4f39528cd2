/**
 * The brand's check: whether every text the built-in layout draws contrasts enough with what it is
 * drawn on, in both palettes. A failing pair is a warning, never an error: a brand is its owner's
 * choice, and the same for every email, so it is checked once rather than per email.
 */
import { contrastRatio, formatRatio, MIN_TEXT_CONTRAST } from '../contrast.js';
import type { AppInfo, Palette } from '../templates/brand.js';
import { type CheckFinding, type CheckReport, report } from './checks.js';

/** What {@link checkBrand} reads: an `EmailService`'s `app` has it all. */
export type CheckableBrand = Pick<AppInfo, 'colors' | 'darkColors' | 'buttonInk' | 'darkButtonInk'>;

/** One text on one fill, as the layout draws it, and the option to change. */
interface Pair {
  readonly option: string;
  readonly color: string;
  /** `on brand.colors.surface`, `behind its label` */
  readonly against: string;
  readonly on: string;
  readonly use: string;
}

/**
 * Checks the contrast of every text the built-in layout draws, in the light and the dark palette:
 * body text, hints and footer, links, and each button's label on its fill. A pair below the 4.5:1
 * WCAG 2.1 AA asks of text (success criterion 1.4.3) is a `warning` naming the option to change,
 * both colours and the ratio. `mailroom check` prints them before the emails' checks.
 *
 * @example
 * ```ts
 * import { checkBrand } from 'mailroom-js/preview';
 *
 * const report = checkBrand(service.app);
 * for (const f of report.findings) console.log(f.severity, f.message, f.where);
 * // warning brand.colors.primary #FFC107 on brand.colors.surface #FFFFFF: 1.63:1, below … (links)
 * ```
 */
export function checkBrand(brand: CheckableBrand): CheckReport {
  return report(contrastCheck(brand));
}

/** The findings of {@link checkBrand}. Internal. */
export function contrastCheck(brand: CheckableBrand): CheckFinding[] {
  const { colors, darkColors, buttonInk, darkButtonInk } = (brand ?? {}) as Partial<CheckableBrand>;
  if (![colors, darkColors, buttonInk, darkButtonInk].every(hasPrimary)) {
    throw new TypeError(
      'checkBrand: brand must be an EmailService’s app (colors, darkColors, buttonInk and darkButtonInk)',
    );
  }
  const seen = new Set<string>();
  const out: CheckFinding[] = [];
  for (const pair of pairs(brand)) {
    const ratio = contrastRatio(pair.color, pair.on);
    const key = `${pair.option} ${pair.color} ${pair.on}`;
    if (ratio >= MIN_TEXT_CONTRAST || seen.has(key)) continue;
    seen.add(key);
    out.push({
      check: 'contrast',
      severity: 'warning',
      message:
        `${pair.option} ${pair.color} ${pair.against} ${pair.on}: ${formatRatio(ratio)}:1, ` +
        `below the ${MIN_TEXT_CONTRAST}:1 WCAG AA asks of text`,
      where: pair.use,
    });
  }
  return out;
}

/** Every text-on-fill pair of the built-in layout (templates/style.css and the partials). */
function pairs({ colors, darkColors, buttonInk, darkButtonInk }: CheckableBrand): Pair[] {
  // The dark primary is the light one unless set: say where it came from.
  const optionName = (palette: 'colors' | 'darkColors', color: keyof Palette) =>
    palette === 'darkColors' && color === 'primary' && darkColors.primary === colors.primary
      ? 'brand.darkColors.primary (your brand.colors.primary)'
      : `brand.${palette}.${color}`;
  const text = (
    palette: 'colors' | 'darkColors',
    p: Palette,
    color: keyof Palette,
    on: keyof Palette,
    use: string,
  ): Pair => ({
    option: optionName(palette, color),
    color: p[color],
    against: `on brand.${palette}.${on}`,
    on: p[on],
    use,
  });
  // The label is chosen for contrast: only the fill can be changed.
  const button = (option: string, fill: string, ink: string, use: string): Pair => ({
    option,
    color: fill,
    against: 'behind its label',
    on: ink,
    use,
  });
  const dark = ' in dark mode';
  return [
    text('colors', colors, 'text', 'surface', 'body text and headline'),
    text('colors', colors, 'text', 'background', "the app's name, panels and codes"),
    text('colors', colors, 'muted', 'surface', 'hints and detail labels'),
    text('colors', colors, 'muted', 'background', 'the footer'),
    text('colors', colors, 'primary', 'surface', 'links'),
    button('brand.colors.primary', colors.primary, buttonInk.primary, 'buttons'),
    button('brand.colors.danger', colors.danger, buttonInk.danger, 'danger buttons'),
    button('brand.colors.warning', colors.warning, buttonInk.warning, 'warning buttons'),
    text('darkColors', darkColors, 'text', 'surface', `body text and headline${dark}`),
    text('darkColors', darkColors, 'text', 'background', `the app's name, panels and codes${dark}`),
    text('darkColors', darkColors, 'muted', 'surface', `hints and detail labels${dark}`),
    text('darkColors', darkColors, 'muted', 'background', `the footer${dark}`),
    text('darkColors', darkColors, 'primary', 'surface', `links${dark}`),
    button(optionName('darkColors', 'primary'), darkColors.primary, darkButtonInk.primary, `buttons${dark}`),
    // A danger button keeps its light colour in dark mode.
    button('brand.colors.danger', colors.danger, darkButtonInk.danger, `danger buttons${dark}`),
    button('brand.darkColors.warning', darkColors.warning, darkButtonInk.warning, `warning buttons${dark}`),
  ];
}

function hasPrimary(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as Palette).primary === 'string';
}
