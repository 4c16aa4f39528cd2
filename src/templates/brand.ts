/**
 * The brand of the built-in layout: options, their defaults, and their validation. Every value here
 * ends up in CSS or HTML, so each is checked once, when the service is built, and a bad one is a
 * `ConfigError` naming it (`brand.colors.primary`), never a broken stylesheet.
 */
import { inkOn } from '../contrast.js';
import { nearest } from '../did-you-mean.js';
import { ConfigError } from '../errors.js';
import { configAddress, unsafeText } from '../message.js';

/** The colours of the built-in layout, each a hex colour (`#RGB` or `#RRGGBB`). */
export interface Palette {
  /**
   * Buttons and links. Default `#0B5ED7` (5.84:1 with white, WCAG AA asks 4.5:1 of text); dark
   * `#58A6FF` (6.62:1 on the dark card), or your light `primary` when you set one.
   */
  readonly primary: string;
  /** Body text and the headline. Default `#343A40`; dark `#E6E8EB`. */
  readonly text: string;
  /** Secondary text: footer, hints. Default `#697279` (4.65:1 on the background); dark `#A1A7AE`. */
  readonly muted: string;
  /** Page background around the card. Default `#F8F9FA`; dark `#111315`. */
  readonly background: string;
  /** The card the email's body sits on. Default `#FFFFFF`; dark `#1B1E22`. */
  readonly surface: string;
  /** The card's border. Default `#E9ECEF`; dark `#2C3035`. */
  readonly border: string;
  /** Success: the accent of a `success` panel. Default `#28A745`; dark `#3FB950`. */
  readonly success: string;
  /**
   * Danger: the accent of a `danger` panel, and a `danger` button (its label chosen for contrast,
   * see {@link AppInfo.buttonInk}). Default `#DC3545`; dark `#F85149` (a danger button keeps the
   * light colour).
   */
  readonly danger: string;
  /**
   * Warning: the accent of a `warning` panel, and a `warning` button (its label chosen for
   * contrast, see {@link AppInfo.buttonInk}). Default `#FFC107`; dark `#E3B341`.
   */
  readonly warning: string;
  /** Information: the accent of an `info` panel (the default tone). Default `#17A2B8`; dark `#39C5DA`. */
  readonly info: string;
}

/**
 * Brand options: how the built-in layout looks and what its footer says.
 *
 * @example
 * ```ts
 * brand: {
 *   logoUrl: 'https://acme.example/logo.png',
 *   url: 'https://acme.example',
 *   company: 'Acme Inc.',
 *   address: '1 Main Street, Springfield, CA 94000, USA',
 *   supportUrl: 'https://acme.example/help',
 *   colors: { primary: '#FF5A00' },
 *   darkColors: { background: '#0B0B0C' },
 * }
 * ```
 */
export interface BrandOptions {
  /**
   * Logo shown in the header instead of the app's name: an http(s) URL of a hosted image, shown
   * 36 px high. The same image is shown in dark mode, so prefer one that reads on both (a logo
   * with its own background, or a mid-tone mark). From `MAILROOM_LOGO_URL`.
   */
  logoUrl?: string;
  /** The app's home page (http(s)), linked from the company name in the footer. From `MAILROOM_APP_URL`. */
  url?: string;
  /**
   * The company named in the footer (`© 2026 Acme Inc.`). Default: the app's name. One line, at
   * most 256 characters. From `MAILROOM_COMPANY`.
   */
  company?: string;
  /**
   * The company's postal address, one line in the footer (anti-spam laws ask for one in
   * commercial mail; transactional mail may leave it out). Default: none. One line, at most 256
   * characters. From `MAILROOM_POSTAL_ADDRESS`.
   */
  address?: string;
  /**
   * Where a reader gets help: an http(s) page, linked as "Contact support" in the footer. Default:
   * none. Takes precedence over `supportEmail`. From `MAILROOM_SUPPORT_URL`.
   */
  supportUrl?: string;
  /**
   * A support address (`help@acme.example`), shown and linked (mailto) in the footer when there is
   * no `supportUrl`. Default: none. Never the sender's no-reply address. From `MAILROOM_SUPPORT_EMAIL`.
   */
  supportEmail?: string;
  /** Overrides of the light palette; each a hex colour. `primary` from `MAILROOM_PRIMARY_COLOR`. */
  colors?: Partial<Palette>;
  /**
   * Overrides of the dark palette, used by mail apps in dark mode (Apple Mail, Outlook.com and
   * others that honour `prefers-color-scheme` or Outlook's `[data-ogsc]`). Each a hex colour.
   * Default: a neutral dark palette whose `primary` is your light `primary` when you set one, else
   * `#58A6FF`.
   */
  darkColors?: Partial<Palette>;
}

/**
 * The label colour of each tone of button, chosen for contrast with its fill: `#FFFFFF` or
 * `#111315`, whichever contrasts more (WCAG 2.1's contrast ratio). A yellow button gets the dark
 * label, a dark blue one white.
 */
export interface ButtonInk {
  readonly primary: string;
  readonly danger: string;
  readonly warning: string;
}

/** What every template sees as `it.app`. */
export interface AppInfo {
  readonly name: string;
  readonly logoUrl: string | undefined;
  readonly url: string | undefined;
  /** The company named in the footer: `brand.company`, else the app's name. */
  readonly company: string;
  readonly address: string | undefined;
  readonly supportUrl: string | undefined;
  readonly supportEmail: string | undefined;
  /** The light palette, each colour `#RRGGBB`. */
  readonly colors: Palette;
  /** The dark palette, each colour `#RRGGBB`. */
  readonly darkColors: Palette;
  /**
   * The label colour of a button of each tone on its fill in the light palette (`colors.primary`,
   * `colors.danger`, `colors.warning`), chosen for contrast when the brand is resolved.
   *
   * @example
   * ```eta
   * <a style="background-color: <%= it.app.colors.primary %>; color: <%= it.app.buttonInk.primary %>">
   * ```
   */
  readonly buttonInk: ButtonInk;
  /**
   * The same in dark mode, on the fills dark mode draws: `darkColors.primary`, `colors.danger` (a
   * danger button keeps its light colour) and `darkColors.warning`.
   */
  readonly darkButtonInk: ButtonInk;
  readonly senderName: string;
  readonly senderAddress: string;
  readonly year: number;
}

export const DEFAULT_PALETTE: Palette = Object.freeze({
  primary: '#0B5ED7',
  text: '#343A40',
  muted: '#697279',
  background: '#F8F9FA',
  surface: '#FFFFFF',
  border: '#E9ECEF',
  success: '#28A745',
  danger: '#DC3545',
  warning: '#FFC107',
  info: '#17A2B8',
});

/** The dark palette's defaults; a light `primary` you set is the dark one too, unless you set that. */
const DEFAULT_DARK: Palette = Object.freeze({
  primary: '#58A6FF',
  text: '#E6E8EB',
  muted: '#A1A7AE',
  background: '#111315',
  surface: '#1B1E22',
  border: '#2C3035',
  success: '#3FB950',
  danger: '#F85149',
  warning: '#E3B341',
  info: '#39C5DA',
});

const HEX = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;
const COLOR_NAMES = Object.keys(DEFAULT_PALETTE);
const BRAND_KEYS = [
  'logoUrl',
  'url',
  'company',
  'address',
  'supportUrl',
  'supportEmail',
  'colors',
  'darkColors',
] as const;
const MAX_LINE = 256;

/** The brand part of {@link AppInfo}: every option checked, colours as `#RRGGBB`. */
export type ResolvedBrand = Pick<
  AppInfo,
  | 'logoUrl'
  | 'url'
  | 'company'
  | 'address'
  | 'supportUrl'
  | 'supportEmail'
  | 'colors'
  | 'darkColors'
  | 'buttonInk'
  | 'darkButtonInk'
>;

/** Checks `brand` and fills in the defaults; a bad value is a `ConfigError` naming it (`brand.colors.primary`). */
export function resolveBrand(brand: BrandOptions | undefined, appName: string): ResolvedBrand {
  if (brand !== undefined && !isRecord(brand)) throw new ConfigError('brand', 'must be an object');
  const options = brand ?? {};
  refuseUnknown(options, BRAND_KEYS, 'brand', 'a brand option');
  const light = palette(options.colors, 'brand.colors');
  const colors = Object.freeze({ ...DEFAULT_PALETTE, ...light });
  const darkColors: Palette = Object.freeze({
    ...DEFAULT_DARK,
    // A brand colour carries over into dark mode (as documented); the default has its own.
    ...(light.primary === undefined ? {} : { primary: light.primary }),
    ...palette(options.darkColors, 'brand.darkColors'),
  });
  return {
    logoUrl: httpUrl(options.logoUrl, 'brand.logoUrl'),
    url: httpUrl(options.url, 'brand.url'),
    company: line(options.company, 'brand.company') ?? appName,
    address: line(options.address, 'brand.address'),
    supportUrl: httpUrl(options.supportUrl, 'brand.supportUrl'),
    supportEmail:
      options.supportEmail === undefined
        ? undefined
        : configAddress(text(options.supportEmail, 'brand.supportEmail'), 'brand.supportEmail').address,
    colors,
    darkColors,
    buttonInk: buttonInk(colors.primary, colors.danger, colors.warning),
    darkButtonInk: buttonInk(darkColors.primary, colors.danger, darkColors.warning),
  };
}

/** A hex colour as `#RRGGBB` (upper case), or a `ConfigError` naming `option`. */
export function hexColor(value: unknown, option: string): string {
  if (typeof value !== 'string' || !HEX.test(value.trim())) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value;
    throw new ConfigError(option, `must be a hex colour such as #1A2B3C or #ABC (got ${shown})`);
  }
  const digits = value.trim().slice(1).toUpperCase();
  return `#${digits.length === 3 ? [...digits].map((d) => d + d).join('') : digits}`;
}

function buttonInk(primary: string, danger: string, warning: string): ButtonInk {
  return Object.freeze({ primary: inkOn(primary), danger: inkOn(danger), warning: inkOn(warning) });
}

function palette(value: unknown, option: string): Partial<Palette> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new ConfigError(option, 'must be an object of colours');
  refuseUnknown(value, COLOR_NAMES, option, 'a colour of the palette');
  const out: Record<string, string> = {};
  for (const [name, color] of Object.entries(value)) {
    if (color !== undefined) out[name] = hexColor(color, `${option}.${name}`);
  }
  return out;
}

function refuseUnknown(value: object, known: readonly string[], option: string, what: string): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const shown = key.slice(0, 40);
    const { candidate, distance } = nearest(shown, known);
    const hint =
      candidate !== undefined && distance <= 2 ? `did you mean ${candidate}?` : `known: ${known.join(', ')}`;
    throw new ConfigError(`${option}.${shown}`, `is not ${what} (${hint})`);
  }
}

function text(value: unknown, option: string): string {
  if (typeof value !== 'string') throw new ConfigError(option, 'must be a string');
  return value;
}

/** One line of footer text: trimmed, not blank, no control characters or line breaks, at most 256 characters. */
function line(value: unknown, option: string): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = text(value, option).trim();
  if (trimmed === '') throw new ConfigError(option, 'must not be empty (leave it out instead)');
  const problem = unsafeText(trimmed);
  if (problem) throw new ConfigError(option, problem);
  if (trimmed.length > MAX_LINE) throw new ConfigError(option, `must be at most ${MAX_LINE} characters`);
  return trimmed;
}

function httpUrl(value: unknown, option: string): string | undefined {
  if (value === undefined) return undefined;
  const url = text(value, option).trim();
  if (!/^https?:\/\/[^\s\u0000-\u001f\u007f]+$/i.test(url) || !URL.canParse(url)) {
    throw new ConfigError(option, 'must be an http(s) URL');
  }
  return url;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
