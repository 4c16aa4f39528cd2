/**
 * Internal: reading the environment as deployments write it: `NODE_ENV` in its variants, and
 * "did you mean" for environment variables and their values. A variable mailroom does
 * not read but that looks like one it does (`MAIL_TRANSPORT`, `SMTP_PASS`, `MAILROOM_TRANSPRT`) is
 * a mistake that would otherwise send mail somewhere nobody chose.
 */

import { nearest } from './did-you-mean.js';

/**
 * Names other mail libraries use for the same setting (Laravel's `MAIL_*`, Django's `EMAIL_*`,
 * nodemailer examples' `SMTP_PASS`/`SMTP_SECURE`), mapped to mailroom's.
 */
const ALIASES: Readonly<Record<string, string>> = {
  MAIL_TRANSPORT: 'MAILROOM_TRANSPORT',
  EMAIL_TRANSPORT: 'MAILROOM_TRANSPORT',
  MAILER_TRANSPORT: 'MAILROOM_TRANSPORT',
  MAIL_MAILER: 'MAILROOM_TRANSPORT',
  MAIL_DRIVER: 'MAILROOM_TRANSPORT',
  EMAIL_BACKEND: 'MAILROOM_TRANSPORT',
  MAIL_HOST: 'SMTP_HOST',
  EMAIL_HOST: 'SMTP_HOST',
  SMTP_SERVER: 'SMTP_HOST',
  SMTP_HOSTNAME: 'SMTP_HOST',
  MAIL_PORT: 'SMTP_PORT',
  EMAIL_PORT: 'SMTP_PORT',
  MAIL_USERNAME: 'SMTP_USER',
  EMAIL_HOST_USER: 'SMTP_USER',
  SMTP_USERNAME: 'SMTP_USER',
  SMTP_LOGIN: 'SMTP_USER',
  MAIL_PASSWORD: 'SMTP_PASSWORD',
  EMAIL_HOST_PASSWORD: 'SMTP_PASSWORD',
  SMTP_PASS: 'SMTP_PASSWORD',
  MAIL_ENCRYPTION: 'SMTP_TLS',
  EMAIL_USE_TLS: 'SMTP_TLS',
  EMAIL_USE_SSL: 'SMTP_TLS',
  SMTP_SECURE: 'SMTP_TLS',
  SMTP_SSL: 'SMTP_TLS',
  MAIL_FROM_ADDRESS: 'SMTP_FROM_EMAIL',
  MAIL_FROM: 'SMTP_FROM_EMAIL',
  EMAIL_FROM: 'SMTP_FROM_EMAIL',
  DEFAULT_FROM_EMAIL: 'SMTP_FROM_EMAIL',
  SMTP_FROM: 'SMTP_FROM_EMAIL',
  SMTP_FROM_ADDRESS: 'SMTP_FROM_EMAIL',
  MAIL_FROM_NAME: 'SMTP_FROM_NAME',
  MAILGUN_KEY: 'MAILGUN_API_KEY',
  MAILGUN_SECRET: 'MAILGUN_API_KEY',
  MAILGUN_FROM: 'MAILGUN_FROM_ADDRESS',
  MAILGUN_FROM_EMAIL: 'MAILGUN_FROM_ADDRESS',
  MAILGUN_ENDPOINT: 'MAILGUN_BASE_URL',
  MAILGUN_URL: 'MAILGUN_BASE_URL',
  MAILGUN_API_TOKEN: 'MAILGUN_API_KEY',
  MAILGUN_TOKEN: 'MAILGUN_API_KEY',
  MAILGUN_PRIVATE_KEY: 'MAILGUN_API_KEY',
  MAILGUN_SENDING_KEY: 'MAILGUN_API_KEY',
  POSTMARK_API_TOKEN: 'POSTMARK_SERVER_TOKEN',
  POSTMARK_TOKEN: 'POSTMARK_SERVER_TOKEN',
  POSTMARK_API_KEY: 'POSTMARK_SERVER_TOKEN',
  POSTMARK_SERVER_API_TOKEN: 'POSTMARK_SERVER_TOKEN',
  POSTMARK_FROM: 'POSTMARK_FROM_ADDRESS',
  POSTMARK_FROM_EMAIL: 'POSTMARK_FROM_ADDRESS',
  POSTMARK_STREAM: 'POSTMARK_MESSAGE_STREAM',
  RESEND_KEY: 'RESEND_API_KEY',
  RESEND_TOKEN: 'RESEND_API_KEY',
  RESEND_FROM: 'RESEND_FROM_ADDRESS',
  RESEND_FROM_EMAIL: 'RESEND_FROM_ADDRESS',
  SENDGRID_KEY: 'SENDGRID_API_KEY',
  SENDGRID_TOKEN: 'SENDGRID_API_KEY',
  SENDGRID_API_TOKEN: 'SENDGRID_API_KEY',
  SENDGRID_FROM: 'SENDGRID_FROM_ADDRESS',
  SENDGRID_FROM_EMAIL: 'SENDGRID_FROM_ADDRESS',
  SMTP_PWD: 'SMTP_PASSWORD',
  DKIM_DOMAIN: 'SMTP_DKIM_DOMAIN',
  DKIM_DOMAIN_NAME: 'SMTP_DKIM_DOMAIN',
  DKIM_SELECTOR: 'SMTP_DKIM_SELECTOR',
  DKIM_KEY_SELECTOR: 'SMTP_DKIM_SELECTOR',
  DKIM_KEY: 'SMTP_DKIM_PRIVATE_KEY',
  DKIM_PRIVATE_KEY: 'SMTP_DKIM_PRIVATE_KEY',
  DKIM_PRIVATE_KEY_FILE: 'SMTP_DKIM_PRIVATE_KEY_FILE',
  DKIM_KEY_FILE: 'SMTP_DKIM_PRIVATE_KEY_FILE',
  DKIM_PRIVATE_KEY_PATH: 'SMTP_DKIM_PRIVATE_KEY_FILE',
  SMTP_DKIM_KEY: 'SMTP_DKIM_PRIVATE_KEY',
  SMTP_DKIM_KEY_FILE: 'SMTP_DKIM_PRIVATE_KEY_FILE',
  // nodemailer's option names (domainName, keySelector) and a path for the file.
  SMTP_DKIM_DOMAIN_NAME: 'SMTP_DKIM_DOMAIN',
  SMTP_DKIM_KEY_SELECTOR: 'SMTP_DKIM_SELECTOR',
  SMTP_DKIM_KEY_PATH: 'SMTP_DKIM_PRIVATE_KEY_FILE',
  SMTP_DKIM_PRIVATE_KEY_PATH: 'SMTP_DKIM_PRIVATE_KEY_FILE',
  // Safety switches: misspelt, mail would be delivered for real, or to everyone.
  SENDGRID_SANDBOX: 'SENDGRID_SANDBOX_MODE',
  SENDGRID_SANDBOX_ENABLED: 'SENDGRID_SANDBOX_MODE',
  STAGING_ALLOW: 'MAILROOM_STAGING_ALLOW',
  STAGING_REDIRECT: 'MAILROOM_STAGING_REDIRECT',
  STAGING_SUBJECT_PREFIX: 'MAILROOM_STAGING_SUBJECT_PREFIX',
  MAILROOM_COMPANY_NAME: 'MAILROOM_COMPANY',
  MAILROOM_ADDRESS: 'MAILROOM_POSTAL_ADDRESS',
  MAILROOM_COMPANY_ADDRESS: 'MAILROOM_POSTAL_ADDRESS',
  MAILROOM_SUPPORT: 'MAILROOM_SUPPORT_URL',
  MAILROOM_HELP_URL: 'MAILROOM_SUPPORT_URL',
};

/** Connection URLs other tools read: mailroom takes the parts, each in its own variable. */
const URL_VARIABLES = new Set(['SMTP_URL', 'SMTP_DSN', 'MAIL_URL', 'EMAIL_URL', 'MAILER_DSN', 'MAILER_URL']);
const URL_HINT =
  'mailroom reads no connection URL: set SMTP_HOST, SMTP_PORT, SMTP_TLS, SMTP_USER and SMTP_PASSWORD';
/** Switches other libraries read that mailroom has none of: set, they would be ignored and mail delivered. */
const MAILGUN_TEST_HINT =
  'mailroom reads no Mailgun test-mode variable, so mail would be delivered: set MAILROOM_TRANSPORT=sandbox to capture it, or give mailgunTransport({ testMode: true }) in code';
const NO_SUCH_SWITCH: Readonly<Record<string, string>> = {
  MAILGUN_TEST_MODE: MAILGUN_TEST_HINT,
  MAILGUN_TESTMODE: MAILGUN_TEST_HINT,
};

/**
 * The prefixes only mailroom's variables use: an unknown name with one is a typo of ours (a DKIM
 * variable misspelt would send mail unsigned). (`SMTP_` and `MAILGUN_` are shared with other
 * software, such as a webhook's `MAILGUN_WEBHOOK_SIGNING_KEY`: only near misses count there.)
 */
const OWN_PREFIXES = ['MAILROOM_', 'SMTP_DKIM_'];

/**
 * The candidate closest to `input` (case-insensitive), if it is close enough to be a slip of the
 * keyboard: one edit for short words, two for words of eight or more characters.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const { candidate, distance } = nearest(input, candidates);
  const allowed = Math.max(input.length, candidate?.length ?? 0) >= 8 ? 2 : 1;
  return distance <= allowed ? candidate : undefined;
}

/**
 * The variable `name` looks like, when it is not one of `known` itself: another library's name for
 * the same setting, a near miss of one of ours, or an unknown name with our prefix (then the
 * suggestion may be undefined). `hint` replaces "did you mean" where one variable is not the answer.
 */
export function lookalike(
  name: string,
  known: readonly string[],
): { suggestion: string | undefined; hint?: string } | undefined {
  if (known.includes(name)) return undefined;
  if (URL_VARIABLES.has(name)) return { suggestion: 'SMTP_HOST', hint: URL_HINT };
  const none = NO_SUCH_SWITCH[name];
  if (none !== undefined) return { suggestion: undefined, hint: none };
  const alias = ALIASES[name];
  if (alias !== undefined) return { suggestion: alias };
  const near = closest(name, known);
  if (near !== undefined) return { suggestion: near };
  if (OWN_PREFIXES.some((prefix) => name.startsWith(prefix))) return { suggestion: undefined };
  return undefined;
}

/**
 * `NODE_ENV` values known not to be production: development, test and staging as deployments
 * name them. Any other value set is held to production's rules (see {@link isProduction}).
 */
const NOT_PRODUCTION: ReadonlySet<string> = new Set([
  'development',
  'dev',
  'develop',
  'local',
  'test',
  'testing',
  'e2e',
  'ci',
  'staging',
  'stage',
  'qa',
  'uat',
  'preview',
  'integration',
]);

/** `NODE_ENV` as a deployment meant it: trimmed and unquoted (an env file may keep the quotes). */
function unquoted(value: string | undefined): string {
  return (
    value
      ?.trim()
      .replace(/^(['"])(.*)\1$/, '$2')
      .trim() ?? ''
  );
}

function nodeEnv(value: string | undefined): string {
  return unquoted(value).toLowerCase();
}

/**
 * Whether `NODE_ENV` holds mailroom to production's rules (no silent sandbox, no capturing
 * transport, no preview without `force`): `production` in any case, `prod`, quoted or not, and
 * any other value set that is not a known development, test or staging name (`live`, `prd`,
 * `production2`): a safeguard that has to guess guesses production, and says so. Unset or blank
 * is not production. Apps guard what must not run in production (a mounted preview) with the
 * same rule, so that a `NODE_ENV` mailroom refuses under is never one the app lets through.
 *
 * @param value A `NODE_ENV` value. Default `process.env.NODE_ENV`.
 * @example
 * ```ts
 * if (!isProduction()) app.use('/_mail', createPreviewHandler({ enabled: true, service: mailOptions }));
 * ```
 */
export function isProduction(value: string | undefined = process.env.NODE_ENV): boolean {
  const bare = nodeEnv(value);
  return bare !== '' && !NOT_PRODUCTION.has(bare);
}

/**
 * How an error names the production setting it refused under: `NODE_ENV=production`, or for a
 * value mailroom does not know, that value and why it counts (`NODE_ENV=live (a value mailroom
 * does not know as development, test or staging, so held to production's rules; …)`).
 */
export function productionSetting(value: string | undefined): string {
  const bare = nodeEnv(value);
  if (bare === 'production' || bare === 'prod') return 'NODE_ENV=production';
  const shown = JSON.stringify(unquoted(value).slice(0, 40)).slice(1, -1);
  return `NODE_ENV=${shown} (a value mailroom does not know as development, test or staging, so held to production's rules; set NODE_ENV=development, test or production to say which)`;
}
