/**
 * Notification preferences: which categories of mail a recipient wants. Checked by `EmailService`
 * before every `product` and `marketing` send; `security` and `transactional` mail never asks.
 */

import { MessageError } from './errors.js';
import type { EmailCategory } from './message.js';
import { normalise } from './suppression.js';

/**
 * The categories a recipient can choose: `product` (updates, reminders) is on until they turn it
 * off; `marketing` (offers, newsletters) is off until they opt in.
 */
export type ChoosableCategory = Extract<EmailCategory, 'product' | 'marketing'>;

/** What a recipient gets of each choosable category when they never chose. */
export const PREFERENCE_DEFAULTS: Readonly<Record<ChoosableCategory, boolean>> = Object.freeze({
  product: true,
  marketing: false,
});

const CHOOSABLE: readonly ChoosableCategory[] = ['product', 'marketing'];

/**
 * Why a preference left a recipient out: `opted-out` (they turned the category off, e.g. with
 * the unsubscribe link) or `not-opted-in` (marketing, which needs a yes first).
 */
export type PreferenceReason = 'opted-out' | 'not-opted-in';

/** One recorded choice. */
export interface PreferenceChoice {
  /** The address, lower-cased. */
  readonly address: string;
  readonly category: ChoosableCategory;
  /** `true`: they want it; `false`: they do not. */
  readonly allowed: boolean;
  /** When they chose. */
  readonly at: Date;
  /** Where the choice came from (`one-click-unsubscribe`, `settings-page`, `import`…). */
  readonly source?: string;
}

/** Extra facts {@link PreferenceStore.set} keeps with a choice. */
export interface ChoiceOptions {
  /**
   * When it was made. Default: now. A choice older than the one stored is ignored; one as old
   * replaces it. Not a valid `Date`: a `MessageError` naming `at`.
   */
  at?: Date;
  /** Where it came from, at most 100 characters (else a `MessageError` naming `source`). Default: none. */
  source?: string;
}

/**
 * Where recipients' choices live. Every method is asynchronous, so a database can back it;
 * addresses are compared lower-cased. {@link memoryPreferenceStore} is the in-process one.
 * A store keeps the latest choice per address and category (by `at`): a replayed or delayed
 * older choice never overrides a newer one.
 */
export interface PreferenceStore {
  /**
   * The recipient's choice for `category`, or `undefined` when they never made one (then
   * {@link PREFERENCE_DEFAULTS} applies). A malformed address or category is a `MessageError`
   * naming it.
   */
  get(address: string, category: ChoosableCategory): Promise<PreferenceChoice | undefined>;
  /**
   * Records a choice; resolves once it is stored. A malformed address is a `MessageError` naming
   * `address`; a category other than `product`/`marketing` one naming `category` (security and
   * transactional mail cannot be turned off); `allowed` not a boolean one naming `allowed`; bad
   * `options` name `at` or `source`.
   */
  set(address: string, category: ChoosableCategory, allowed: boolean, options?: ChoiceOptions): Promise<void>;
  /**
   * Every choice one `address` made (`product` first, then `marketing`); `[]` when none. Required:
   * a missing or malformed address is a `MessageError` naming `address`.
   */
  list(address: string): Promise<PreferenceChoice[]>;
}

/**
 * A {@link PreferenceStore} in this process's memory: for tests, a single instance, or as the
 * shape to copy for a database. Lost on restart.
 *
 * @example
 * ```ts
 * const preferences = memoryPreferenceStore();
 * await preferences.set('jane@example.com', 'marketing', true, { source: 'signup-form' });
 * const mail = new EmailService({ transport, from, preferences });
 * ```
 */
export function memoryPreferenceStore(): PreferenceStore {
  const choices = new Map<string, PreferenceChoice>();
  const key = (address: string, category: ChoosableCategory) => `${category} ${address}`;
  return {
    async get(address, category) {
      return choices.get(key(normalise(address), checkChoosable(category)));
    },
    async set(address, category, allowed, options = {}) {
      const choice = makeChoice(address, category, allowed, options);
      const k = key(choice.address, choice.category);
      const stored = choices.get(k);
      if (!stored || stored.at.getTime() <= choice.at.getTime()) choices.set(k, choice);
    },
    async list(address) {
      const normal = normalise(address);
      return CHOOSABLE.map((category) => choices.get(key(normal, category))).filter(
        (choice): choice is PreferenceChoice => choice !== undefined,
      );
    },
  };
}

/**
 * Internal: whether a choice (or its absence) lets `category` mail through, and why not. Only
 * `product` and `marketing` are ever asked about.
 */
export function preferenceVerdict(
  category: ChoosableCategory,
  choice: PreferenceChoice | undefined,
): PreferenceReason | undefined {
  const allowed = choice?.allowed ?? PREFERENCE_DEFAULTS[category];
  if (allowed) return undefined;
  return choice ? 'opted-out' : 'not-opted-in';
}

/** Internal: whether mail of `category` asks the preference store at all. */
export function isChoosable(category: EmailCategory): category is ChoosableCategory {
  return category === 'product' || category === 'marketing';
}

/** Internal: a checked, frozen choice (stores built on a database use it too). */
export function makeChoice(
  address: string,
  category: ChoosableCategory,
  allowed: boolean,
  options: ChoiceOptions,
): PreferenceChoice {
  const normal = normalise(address);
  checkChoosable(category);
  if (typeof allowed !== 'boolean') throw new MessageError('allowed', 'must be true or false');
  const { at, source } = options;
  if (at !== undefined && (!(at instanceof Date) || Number.isNaN(at.getTime())))
    throw new MessageError('at', 'must be a valid Date');
  if (source !== undefined && (typeof source !== 'string' || source.length > 100))
    throw new MessageError('source', 'must be a string of at most 100 characters');
  return Object.freeze({
    address: normal,
    category,
    allowed,
    at: at ?? new Date(),
    ...(source ? { source } : {}),
  });
}

/** Internal: `category` if it is `product` or `marketing`, else a `MessageError` naming `category`. */
export function checkChoosable(category: unknown): ChoosableCategory {
  if (!CHOOSABLE.includes(category as ChoosableCategory))
    throw new MessageError(
      'category',
      `must be product or marketing (security and transactional mail cannot be turned off)`,
    );
  return category as ChoosableCategory;
}
