/**
 * Configuration from the environment, validated once. Every error names the variable.
 * The transport is never a surprise: the one asked for by name, else the one provider configured,
 * else (outside production) the sandbox. A variable that looks like ours but is not is an error.
 */

import { readFileSync } from 'node:fs';
import { closest, isProduction, lookalike, productionSetting } from './env-names.js';
import { ConfigError, isConfigError } from './errors.js';
import { requireLocale } from './locale.js';
import { type Address, configAddress, unsafeText } from './message.js';
import { checkConnectionString, closesWithService } from './postgres.js';
import type { PreferenceStore } from './preferences.js';
import { postgresPreferenceStore } from './preferences-postgres.js';
import type { EmailServiceOptions } from './service.js';
import type { SuppressionStore } from './suppression.js';
import { postgresSuppressionStore } from './suppression-postgres.js';
import { hexColor } from './templates/brand.js';
import { mayCapture, type Transport } from './transport.js';
import { DKIM_ENV_VARIABLES, dkimFromEnv, dkimIdentity } from './transports/dkim.js';
import { holdTransport, isHoldTransport } from './transports/hold.js';
import { mailgunTransport } from './transports/mailgun.js';
import { memoryTransport } from './transports/memory.js';
import { postmarkTransport } from './transports/postmark.js';
import { resendTransport } from './transports/resend.js';
import { sandboxTransport } from './transports/sandbox.js';
import { sendgridTransport } from './transports/sendgrid.js';
import { sendmailTransport } from './transports/sendmail.js';
import { sesTransport } from './transports/ses.js';
import { smtpTransport } from './transports/smtp.js';
import { stagingTransport } from './transports/staging.js';
import { resolveUnsubscribe, type UnsubscribeOptions } from './unsubscribe/headers.js';

/** The providers the environment can configure, in the order they are reported. */
const PROVIDER_NAMES = ['smtp', 'mailgun', 'postmark', 'resend', 'sendgrid', 'sendmail', 'ses'] as const;
/** The transports `MAILROOM_TRANSPORT` can name. */
export const TRANSPORT_NAMES = ['sandbox', 'memory', ...PROVIDER_NAMES] as const;

/** The environment variables mailroom reads, with what each is for. */
export const ENV_VARIABLES = {
  APP_NAME:
    'Your app’s name, shown in every email. Required with a provider (smtp, mailgun, postmark, resend, sendgrid, sendmail, ses) unless the sender has a display name; "Mailroom" only for the sandbox and memory.',
  MAILROOM_TRANSPORT:
    'smtp, mailgun, postmark, resend, sendgrid, sendmail, ses, sandbox or memory. Default: the one provider configured (SMTP_HOST, MAILGUN_API_KEY, POSTMARK_SERVER_TOKEN, RESEND_API_KEY, SENDGRID_API_KEY, SENDMAIL_PATH or SES_FROM_ADDRESS), else sandbox; under NODE_ENV=production (or a NODE_ENV value not known as development, test or staging) it must be named unless a provider is configured.',
  MAILROOM_SANDBOX_DIR: 'Where the sandbox (and the hold) writes mail. Default .mailroom/outbox.',
  MAILROOM_HOLD:
    'true (or 1) to hold every email in MAILROOM_SANDBOX_DIR until a person releases it (mailroom release, mailroom preview) through the transport chosen as usual (a provider), staging rules included. Default false.',
  MAILROOM_PREVIEW_TOKEN:
    'A secret the preview asks of its release, discard and send buttons; required to use them when the preview is reached by a name that is not loopback (mailroom preview --token). Never logged.',
  SMTP_HOST: 'SMTP server host.',
  SMTP_PORT: 'SMTP server port (1–65535). Default 587, or 465 with SMTP_TLS=implicit.',
  SMTP_TLS:
    'starttls (default; required, not optional), implicit (default on port 465) or none (plain text, local relays only).',
  SMTP_USER: 'SMTP user name.',
  SMTP_PASSWORD: 'SMTP password. Never logged.',
  SMTP_FROM_EMAIL: 'Sender address.',
  SMTP_FROM_NAME: 'Sender display name with SMTP. Default: the app’s name.',
  SMTP_CA_FILE: 'A PEM file of extra certificates to trust (a private relay’s CA).',
  ...DKIM_ENV_VARIABLES,
  MAILGUN_API_KEY: 'Mailgun API key. Never logged.',
  MAILGUN_DOMAIN: 'Mailgun sending domain.',
  MAILGUN_FROM_ADDRESS:
    'Sender address when using Mailgun (may include a name: Acme <no-reply@mg.acme.example>).',
  MAILGUN_FROM_NAME:
    'Sender display name with Mailgun. Default: the name in MAILGUN_FROM_ADDRESS, else the app’s name.',
  MAILGUN_REGION: 'us (default) or eu: where your Mailgun domain lives.',
  MAILGUN_BASE_URL: 'Another Mailgun API base URL (a proxy); overrides MAILGUN_REGION.',
  POSTMARK_SERVER_TOKEN: 'Postmark server API token. Never logged.',
  POSTMARK_MESSAGE_STREAM: 'Postmark message stream id. Default: outbound (Postmark’s own default).',
  POSTMARK_FROM_ADDRESS:
    'Sender address when using Postmark, a confirmed sender signature or domain (may include a name).',
  POSTMARK_FROM_NAME:
    'Sender display name with Postmark. Default: the name in POSTMARK_FROM_ADDRESS, else the app’s name.',
  POSTMARK_BASE_URL: 'Another Postmark API base URL (a proxy). Default https://api.postmarkapp.com.',
  RESEND_API_KEY: 'Resend API key (re_…). Never logged.',
  RESEND_FROM_ADDRESS: 'Sender address when using Resend, on a verified domain (may include a name).',
  RESEND_FROM_NAME:
    'Sender display name with Resend. Default: the name in RESEND_FROM_ADDRESS, else the app’s name.',
  RESEND_BASE_URL: 'Another Resend API base URL (a proxy). Default https://api.resend.com.',
  SENDGRID_API_KEY: 'SendGrid API key (SG.…) with Mail Send access. Never logged.',
  SENDGRID_FROM_ADDRESS:
    'Sender address when using SendGrid, a verified sender identity (may include a name).',
  SENDGRID_FROM_NAME:
    'Sender display name with SendGrid. Default: the name in SENDGRID_FROM_ADDRESS, else the app’s name.',
  SENDGRID_SANDBOX_MODE:
    'true (or 1) to send with SendGrid’s sandbox mode: requests are checked, nothing is delivered. Default false.',
  SENDGRID_BASE_URL: 'Another SendGrid API base URL (a proxy). Default https://api.sendgrid.com.',
  SENDMAIL_PATH:
    'The sendmail-compatible binary to pipe mail to, an absolute path (Postfix, Exim, msmtp). Default /usr/sbin/sendmail.',
  SENDMAIL_FROM_ADDRESS:
    'Sender address when using sendmail, also the envelope sender (-f); may include a name.',
  SENDMAIL_FROM_NAME:
    'Sender display name with sendmail. Default: the name in SENDMAIL_FROM_ADDRESS, else the app’s name.',
  SES_FROM_ADDRESS:
    'Sender address when using Amazon SES, a verified identity (may include a name). Credentials come from the AWS SDK’s chain (AWS_ACCESS_KEY_ID…, AWS_PROFILE, roles).',
  SES_FROM_NAME:
    'Sender display name with Amazon SES. Default: the name in SES_FROM_ADDRESS, else the app’s name.',
  SES_CONFIGURATION_SET:
    'Amazon SES configuration set to send with (event publishing, IP pools). Default: none.',
  SES_ENDPOINT_URL:
    'Another Amazon SES API endpoint (a VPC endpoint, a local server). Default: the AWS SDK’s (AWS_ENDPOINT_URL_SESV2, else the region’s).',
  AWS_REGION: 'Amazon SES: the AWS region of your SES identities, e.g. eu-west-1. Required with ses.',
  AWS_DEFAULT_REGION: 'Amazon SES: read when AWS_REGION is not set.',
  MAILROOM_REPLY_TO: 'Reply-To address for every email.',
  MAILROOM_LOCALE:
    'The language emails are written in when a send names none: a BCP 47 tag such as en, de, fr, es, pt-BR or ar. Default en.',
  MAILROOM_LOGO_URL: 'https URL of a logo for the email header.',
  MAILROOM_APP_URL: 'Your app’s home page.',
  MAILROOM_PRIMARY_COLOR: 'Button and link colour, #RRGGBB or #RGB. Default #0B5ED7.',
  MAILROOM_COMPANY: 'The company named in the email footer (© 2026 Acme Inc.). Default: the app’s name.',
  MAILROOM_POSTAL_ADDRESS: 'The company’s postal address, one line in the email footer. Default: none.',
  MAILROOM_SUPPORT_URL: 'An http(s) help page, linked as "Contact support" in the email footer.',
  MAILROOM_SUPPORT_EMAIL:
    'A support address shown in the email footer when there is no MAILROOM_SUPPORT_URL.',
  MAILROOM_UNSUBSCRIBE_URL:
    'One-click unsubscribe: the https URL where createUnsubscribeHandler is mounted; product and marketing mail gets List-Unsubscribe headers (RFC 8058). Set with MAILROOM_UNSUBSCRIBE_SECRETS.',
  MAILROOM_UNSUBSCRIBE_SECRETS:
    'One-click unsubscribe: comma-separated signing secrets, newest first, each at least 32 bytes. Never logged.',
  MAILROOM_UNSUBSCRIBE_MAILTO:
    'One-click unsubscribe: an address also listed in List-Unsubscribe (mailto:…?subject=unsubscribe). Optional.',
  MAILROOM_UNSUBSCRIBE_MANAGE_URL:
    'One-click unsubscribe: your notification settings page (https), linked as "Manage notification settings" next to "Unsubscribe" in the footer of product and marketing mail. Optional.',
  MAILROOM_STAGING_ALLOW: 'Staging: comma-separated addresses or @domains that may receive mail.',
  MAILROOM_STAGING_REDIRECT: 'Staging: send all other mail to this address instead.',
  MAILROOM_STAGING_SUBJECT_PREFIX: 'Staging: subject prefix. Default "[STAGING] ".',
  KAFKA_BROKERS: 'Kafka: comma-separated host:port of the brokers (mailroom worker, mailroom-js/kafka).',
  KAFKA_CLIENT_ID: 'Kafka: client id shown in broker logs. Default "mailroom".',
  KAFKA_SSL:
    'Kafka: true to connect with TLS, trusting the system CAs. Default false; any KAFKA_SSL_* file turns TLS on.',
  KAFKA_SSL_CA_LOCATION:
    "Kafka: a PEM file of CA certificates to trust instead of the system's, for brokers signed by a private CA (librdkafka's ssl.ca.location). Turns TLS on.",
  KAFKA_SSL_CERTIFICATE_LOCATION:
    'Kafka: the client certificate (PEM) for mutual TLS, always with KAFKA_SSL_KEY_LOCATION. Turns TLS on.',
  KAFKA_SSL_KEY_LOCATION:
    "Kafka: the client certificate's private key (PEM), always with KAFKA_SSL_CERTIFICATE_LOCATION.",
  KAFKA_SSL_KEY_PASSWORD: 'Kafka: the passphrase of an encrypted KAFKA_SSL_KEY_LOCATION. Never logged.',
  KAFKA_SASL_MECHANISM: 'Kafka: plain, scram-sha-256 or scram-sha-512, in any case (PLAIN, SCRAM-SHA-256).',
  KAFKA_SASL_USERNAME: 'Kafka: SASL user name.',
  KAFKA_SASL_PASSWORD: 'Kafka: SASL password. Never logged.',
  MAILROOM_KAFKA_TOPIC:
    'Kafka: the email topic. Default notifications.email (retry and DLQ topics add .retry and .dlq).',
  MAILROOM_KAFKA_GROUP: "Kafka: the worker's consumer group. Default mailroom-email-worker.",
  MAILROOM_KAFKA_CLIENT:
    'Kafka: the client package mailroom worker loads, kafkajs or confluent (@confluentinc/kafka-javascript). Default: kafkajs if installed, else confluent.',
  MAILROOM_WORKER_CONCURRENCY: 'Kafka: sends in flight per worker, 1 to 9999. Default 10.',
  MAILROOM_SUPPRESSIONS_URL:
    'The suppression list in PostgreSQL: postgres://user:password@host:5432/database (needs the pg package). Every send but security mail skips the addresses it holds; mailroom suppressions lists and lifts them. Default: none. The password is never logged or shown.',
  MAILROOM_PREFERENCES_URL:
    'Notification preferences in PostgreSQL: postgres://user:password@host:5432/database (needs the pg package). Every product and marketing send asks it first. Default: none. The password is never logged or shown.',
} as const;

type Env = Readonly<Record<string, string | undefined>>;
type Variable = keyof typeof ENV_VARIABLES;
type TransportName = (typeof TRANSPORT_NAMES)[number];
/** Values that are safe to repeat in an error (never a secret). */
const ENUMS = {
  MAILROOM_TRANSPORT: TRANSPORT_NAMES,
  SMTP_TLS: ['starttls', 'implicit', 'none'],
  MAILGUN_REGION: ['us', 'eu'],
  MAILROOM_HOLD: ['true', 'false', '1', '0'],
  SENDGRID_SANDBOX_MODE: ['true', 'false', '1', '0'],
} as const;

/** The variable behind each transport option, so a transport's own check names the variable. */
const SMTP_OPTIONS: Record<string, Variable> = {
  host: 'SMTP_HOST',
  port: 'SMTP_PORT',
  tls: 'SMTP_TLS',
  user: 'SMTP_USER',
  password: 'SMTP_PASSWORD',
};
const STAGING_OPTIONS: Record<string, Variable> = {
  allow: 'MAILROOM_STAGING_ALLOW',
  redirectTo: 'MAILROOM_STAGING_REDIRECT',
  subjectPrefix: 'MAILROOM_STAGING_SUBJECT_PREFIX',
};
const MAILGUN_OPTIONS: Record<string, Variable> = {
  apiKey: 'MAILGUN_API_KEY',
  domain: 'MAILGUN_DOMAIN',
  region: 'MAILGUN_REGION',
  baseUrl: 'MAILGUN_BASE_URL',
};
const POSTMARK_OPTIONS: Record<string, Variable> = {
  serverToken: 'POSTMARK_SERVER_TOKEN',
  messageStream: 'POSTMARK_MESSAGE_STREAM',
  baseUrl: 'POSTMARK_BASE_URL',
};
const RESEND_OPTIONS: Record<string, Variable> = { apiKey: 'RESEND_API_KEY', baseUrl: 'RESEND_BASE_URL' };
const SENDGRID_OPTIONS: Record<string, Variable> = {
  apiKey: 'SENDGRID_API_KEY',
  baseUrl: 'SENDGRID_BASE_URL',
  sandboxMode: 'SENDGRID_SANDBOX_MODE',
};
const SENDMAIL_OPTIONS: Record<string, Variable> = { path: 'SENDMAIL_PATH' };
const SES_OPTIONS: Record<string, Variable> = {
  // The SDK package missing: the transport asked for is what cannot be built.
  client: 'MAILROOM_TRANSPORT',
  configurationSetName: 'SES_CONFIGURATION_SET',
  endpoint: 'SES_ENDPOINT_URL',
};

type ProviderName = (typeof PROVIDER_NAMES)[number];
/**
 * Everything the environment knows of one provider: adding a provider is its name in
 * `PROVIDER_NAMES`, one entry in `PROVIDERS`, and its variables in {@link ENV_VARIABLES}.
 */
interface Provider {
  /** Its name in messages: `SMTP`, `Mailgun`. */
  readonly label: string;
  /** The variables whose presence says the provider is meant, in the order they are reported. */
  readonly signs: readonly Variable[];
  /** The sender's address, and its display name. */
  readonly from: Variable;
  readonly fromName: Variable;
  /**
   * The variable holding its credential (never shown: the preview's settings say set or unset), and
   * what to call it; none for sendmail, whose credentials stay in the MTA's own configuration.
   */
  readonly secret?: Variable;
  readonly secretLabel?: string;
  /** The variable that can put it in a test mode that delivers nothing (refused under production). */
  readonly testMode?: Variable;
  /** Builds the transport; `why` says why a missing variable is required. */
  build(read: Reader, env: Env, why: string, needsSender: boolean): Transport;
}

/** Builds a transport, renaming a `ConfigError` about one of its options after the variable it came from. */
function asVariables<T>(names: Record<string, Variable>, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (!isConfigError(err) || !(err.option in names)) throw err;
    throw new ConfigError(names[err.option]!, err.message.slice(err.option.length + 2));
  }
}
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/**
 * Reads mailroom's configuration from environment variables (see {@link ENV_VARIABLES}) and
 * returns options for `new EmailService()`.
 *
 * The transport: `MAILROOM_TRANSPORT` when set; else the one provider whose variables are set
 * (`SMTP_HOST`, `SMTP_USER`… → smtp; `MAILGUN_API_KEY`, `MAILGUN_DOMAIN` → mailgun; both → an
 * error asking which); else the sandbox, except under `NODE_ENV=production` (or any value set that
 * is not a known development, test or staging name: see `isProduction` in env-names.ts), where a
 * transport that delivers nothing must be asked for by name.
 *
 * Throws a `ConfigError` naming the first variable that is malformed, missing, or a look-alike of
 * one mailroom reads (`MAIL_TRANSPORT`, `SMTP_PASS`: "did you mean …?").
 *
 * @example
 * ```ts
 * const mail = new EmailService(configFromEnv());
 * ```
 */
export function configFromEnv(env: Env = process.env): EmailServiceOptions {
  return envOptions(env, undefined) as EmailServiceOptions;
}

/** What code (the CLI's config file) gives besides the environment. Internal. */
export interface CodeOptions {
  /** Where they come from, for errors: the config file. */
  readonly source: string;
  /** A transport built in code: used instead of choosing one from the environment. */
  readonly transport?: Transport | undefined;
  /** Code names the sender, so the provider's sender variable is not required. */
  readonly from: boolean;
  /** Code names the app, so APP_NAME is not required (the service checks the merged options). */
  readonly appName: boolean;
}

/**
 * `configFromEnv()` for options that code completes: the same checks, except that what code gives
 * is not required of the environment. `from` is missing when no variable names a sender. Internal.
 */
export function configFromEnvWith(
  code: CodeOptions,
  env: Env = process.env,
): Omit<EmailServiceOptions, 'from'> & { from?: EmailServiceOptions['from'] } {
  return envOptions(env, code);
}

function envOptions(
  env: Env,
  code: CodeOptions | undefined,
): Omit<EmailServiceOptions, 'from'> & { from?: EmailServiceOptions['from'] } {
  const read = reader(env);
  const { get, address } = read;
  refuseLookalikes(env, read);
  refuseBlankSafeguards(env);
  const choice = code?.transport
    ? codeChoice(env, read, code.transport, code.source)
    : chooseTransport(env, read);
  const transportName = choice.name;
  const needsSender = code?.from !== true;
  checkFormats(read);

  const appName = headerText(read, 'APP_NAME');
  const color = get('MAILROOM_PRIMARY_COLOR');
  // Every provider's sender variables are checked, whichever transport is chosen.
  const senders = PROVIDER_NAMES.map((name) => ({
    name,
    from: address(PROVIDERS[name].from),
    fromName: headerText(read, PROVIDERS[name].fromName),
  }));
  const replyTo = address('MAILROOM_REPLY_TO');

  let transport: Transport;
  // A provider takes its own sender variables; the others (capture, code) the first one set.
  let sender: Address | undefined;
  let senderName: string | undefined;
  const provider = isProvider(transportName) ? PROVIDERS[transportName] : undefined;
  if (isProvider(transportName)) {
    transport = PROVIDERS[transportName].build(read, env, choice.why, needsSender);
    refuseForeignDkim(env, PROVIDERS[transportName], transport);
    refuseTestModeInProduction(env, PROVIDERS[transportName], transport);
    const own = senders.find((s) => s.name === transportName);
    [sender, senderName] = [own?.from, own?.fromName ?? own?.from?.name];
  } else {
    transport =
      transportName === 'code'
        ? code!.transport!
        : transportName === 'memory'
          ? memoryTransport()
          : sandboxTransport({ dir: get('MAILROOM_SANDBOX_DIR') ?? '.mailroom/outbox' });
    sender = senders.find((s) => s.from !== undefined)?.from;
    senderName = senders.find((s) => s.fromName !== undefined)?.fromName ?? sender?.name;
  }
  if (provider && appName === undefined && !senderName && code?.appName !== true && code?.from !== true) {
    throw new ConfigError(
      'APP_NAME',
      `is required when mail is delivered (through ${transportName}): it names your app in every email (subject, header, footer); or give the sender a display name (${provider.fromName})`,
    );
  }

  const logoUrl = read.httpUrl('MAILROOM_LOGO_URL');
  const appUrl = read.httpUrl('MAILROOM_APP_URL');
  const company = headerText(read, 'MAILROOM_COMPANY');
  const postalAddress = headerText(read, 'MAILROOM_POSTAL_ADDRESS');
  const supportUrl = read.httpUrl('MAILROOM_SUPPORT_URL');
  const supportEmail = address('MAILROOM_SUPPORT_EMAIL')?.address;
  const locale = localeFromEnv(read);
  transport = withHold(read, withStaging(read, transport));
  const unsubscribe = unsubscribeFromEnv(read);
  const suppressions = suppressionsFromEnv(env);
  const preferences = preferencesFromEnv(env);

  return {
    transport,
    ...(suppressions === undefined ? {} : { suppressions }),
    ...(preferences === undefined ? {} : { preferences }),
    ...(appName === undefined ? {} : { appName }),
    // The provider's name variable, else the name in its sender variable, else the service names it after the app.
    ...(code !== undefined && sender === undefined
      ? {}
      : {
          from: {
            ...(senderName === undefined ? {} : { name: senderName }),
            address: sender?.address ?? 'no-reply@example.com',
          },
        }),
    ...(replyTo === undefined ? {} : { replyTo }),
    ...(locale === undefined ? {} : { locale }),
    ...(unsubscribe === undefined ? {} : { unsubscribe }),
    brand: {
      ...(logoUrl === undefined ? {} : { logoUrl }),
      ...(appUrl === undefined ? {} : { url: appUrl }),
      ...(company === undefined ? {} : { company }),
      ...(postalAddress === undefined ? {} : { address: postalAddress }),
      ...(supportUrl === undefined ? {} : { supportUrl }),
      ...(supportEmail === undefined ? {} : { supportEmail }),
      ...(color === undefined ? {} : { colors: { primary: color } }),
    },
  };
}

type Reader = ReturnType<typeof reader>;

/** `MAILROOM_LOCALE`, canonicalised (`pt-br` → `pt-BR`); a malformed tag is a `ConfigError` naming it. */
function localeFromEnv(read: Reader): string | undefined {
  const value = read.get('MAILROOM_LOCALE');
  if (value === undefined) return undefined;
  return requireLocale(value, (problem) => new ConfigError('MAILROOM_LOCALE', problem));
}

/** Typed, trimmed access to the variables; every failure a `ConfigError` naming the variable. */
function reader(env: Env) {
  const get = (name: Variable): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  return {
    get,
    /** A variable with a fixed set of values; a near miss (`SMTP`, `smpt`) gets a suggestion. */
    oneOf<V extends keyof typeof ENUMS>(name: V): (typeof ENUMS)[V][number] | undefined {
      const value = get(name);
      const allowed: readonly string[] = ENUMS[name];
      if (value === undefined || allowed.includes(value)) return value as (typeof ENUMS)[V][number];
      const near = closest(value, allowed);
      throw new ConfigError(
        name,
        `"${value.slice(0, 40)}" is not one of ${allowed.join(', ')}${near ? `; did you mean ${near}?` : ''}`,
      );
    },
    /** `why` says why the variable is needed: `with MAILROOM_TRANSPORT=smtp`, `because SMTP_PORT is set, …`. */
    required(name: Variable, why: string): string {
      const value = get(name);
      if (value === undefined) throw new ConfigError(name, `is required ${why}`);
      return value;
    },
    address(name: Variable): Address | undefined {
      const value = get(name);
      if (value === undefined) return undefined;
      return configAddress(value, name);
    },
    httpUrl(name: Variable): string | undefined {
      const value = get(name);
      if (value !== undefined && !(/^https?:\/\//i.test(value) && URL.canParse(value))) {
        throw new ConfigError(name, 'must be an http(s) URL');
      }
      return value;
    },
  };
}

/** Which transport the environment asks for (see {@link configFromEnv}). */
function chooseTransport(env: Env, read: Reader): Choice {
  const { configured, sign } = providers(read);
  const production = isProduction(env.NODE_ENV);
  const named = read.oneOf('MAILROOM_TRANSPORT');
  if (named !== undefined) {
    // Capturing on purpose beside a configured provider, in production, is the .env template
    // left as it was, not a choice: the provider's mail would never be delivered.
    if (production && (named === 'sandbox' || named === 'memory'))
      refuseCaptureBesideProvider(env, read, named);
    return { name: named, why: `with MAILROOM_TRANSPORT=${named}` };
  }
  if (configured.length > 1) {
    const named = configured.map((p) => `${PROVIDERS[p].label} (${sign(p)})`);
    const which =
      configured.length === 2
        ? `both ${named[0]} and ${named[1]} are configured`
        : `${named.slice(0, -1).join(', ')} and ${named.at(-1)} are all configured`;
    throw new ConfigError(
      'MAILROOM_TRANSPORT',
      `is required: ${which}; set MAILROOM_TRANSPORT=${orList(configured)}`,
    );
  }
  const provider = configured[0];
  if (provider) {
    return {
      name: provider,
      why: `because ${sign(provider)} is set, so mail goes through ${provider} (set MAILROOM_TRANSPORT=sandbox to capture it instead)`,
    };
  }
  if (production) {
    throw new ConfigError(
      'MAILROOM_TRANSPORT',
      `is required under ${productionSetting(env.NODE_ENV)}: no mail provider is configured, and mail would only be captured in the sandbox folder. Configure ${orList(PROVIDER_NAMES)}, or set MAILROOM_TRANSPORT=sandbox to capture on purpose`,
    );
  }
  return { name: 'sandbox', why: 'with the sandbox' };
}

/**
 * A transport built in code decides where mail goes, so one place decides: `MAILROOM_TRANSPORT`
 * may only name the same transport. One that captures is held to the environment's rule: under
 * production it must be named there too, and not beside a configured provider.
 */
function codeChoice(env: Env, read: Reader, transport: Transport, source: string): Choice {
  const named = read.oneOf('MAILROOM_TRANSPORT');
  if (named !== undefined && named !== transport.name) {
    throw new ConfigError(
      'MAILROOM_TRANSPORT',
      `is ${named}, but ${source} sets transport (${transport.name}): where mail goes is decided in one place, so unset MAILROOM_TRANSPORT or remove the config's transport`,
    );
  }
  checkCodeDkim(env, transport, source);
  // A failover or round robin with a capturing transport behind one that delivers: some mail
  // would be kept, and no variable can ask for that on purpose.
  if (transport.capturesSome === true && isProduction(env.NODE_ENV)) {
    throw new ConfigError(
      'transport',
      `${source} sets transport ${transport.name}, which keeps some mail instead of delivering it (a capturing transport such as memory or sandbox, or a provider's test mode, is behind it): under ${productionSetting(env.NODE_ENV)} every email must be delivered. Remove it from ${transport.name}`,
    );
  }
  // A hold releases through its transport: one that keeps mail would lose every release.
  if (isHoldTransport(transport) && mayCapture(transport.transport) && isProduction(env.NODE_ENV)) {
    throw new ConfigError(
      'transport',
      `${source} sets a hold that releases through ${transport.transport.name}, which keeps mail instead of delivering it: under ${productionSetting(env.NODE_ENV)} a released email would be lost. Give the hold a transport that delivers`,
    );
  }
  // The hold captures on purpose and delivers on release: choosing it in code is the choice.
  if (transport.captures === true && !isHoldTransport(transport) && isProduction(env.NODE_ENV)) {
    // A provider that captures is in its test mode: naming the provider is no wish to capture.
    if (isProvider(transport.name)) {
      throw new ConfigError(
        'transport',
        `${source} sets transport ${transport.name} in its test mode, which delivers nothing: under ${productionSetting(env.NODE_ENV)} every email must be delivered. Turn the test mode off (sandboxMode, testMode, the POSTMARK_API_TEST token)`,
      );
    }
    if (named === undefined) {
      throw new ConfigError(
        'MAILROOM_TRANSPORT',
        `is required under ${productionSetting(env.NODE_ENV)}: ${source} sets transport ${transport.name}, which only captures mail. Give the config a transport that delivers, or set MAILROOM_TRANSPORT=${transport.name} to capture on purpose`,
      );
    }
    refuseCaptureBesideProvider(env, read, named);
  }
  return { name: 'code', why: `because ${source} sets transport` };
}

function providers(read: Reader) {
  const configured = PROVIDER_NAMES.filter((provider) =>
    PROVIDERS[provider].signs.some((name) => read.get(name) !== undefined),
  );
  const sign = (provider: ProviderName) =>
    PROVIDERS[provider].signs.find((name) => read.get(name) !== undefined);
  return { configured, sign };
}

function isProvider(name: string): name is ProviderName {
  return (PROVIDER_NAMES as readonly string[]).includes(name);
}

/** `a or b or c`: the alternatives a message offers. */
function orList(names: readonly string[]): string {
  return names.join(' or ');
}

function refuseCaptureBesideProvider(env: Env, read: Reader, named: string): void {
  const { configured, sign } = providers(read);
  const provider = configured[0];
  if (provider === undefined) return;
  throw new ConfigError(
    'MAILROOM_TRANSPORT',
    `is ${named}, but ${sign(provider)} is set: under ${productionSetting(env.NODE_ENV)} its mail would be captured, not delivered. Unset MAILROOM_TRANSPORT to send through ${provider}, or unset the ${provider} variables to capture on purpose`,
  );
}

/** The SMTP_DKIM_* variables set, in the order they are reported. */
function dkimVariablesSet(env: Env): string[] {
  return Object.keys(DKIM_ENV_VARIABLES).filter((name) => env[name]?.trim());
}

/**
 * SMTP_DKIM_* set for a provider whose transport does not sign with them (an HTTP API sends no
 * message bytes: the provider signs with the key in its account), so the variables are refused.
 * smtp, sendmail and ses read them when they are built, and say so in `transport.dkim`.
 */
function refuseForeignDkim(env: Env, provider: Provider, transport: Transport): void {
  const set = dkimVariablesSet(env);
  if (set.length === 0 || transport.dkim !== undefined) return;
  throw new ConfigError(
    set[0]!,
    `is set, but mail goes through ${provider.label}'s API, which signs with the DKIM key set up in your ${provider.label} account, never this one: set up DKIM there and unset the SMTP_DKIM_* variables (or send through smtp, sendmail or ses, which sign with them)`,
  );
}

/**
 * A provider's test mode (SendGrid's sandbox mode, Postmark's test token) delivers nothing: under
 * production that is the .env of a test left as it was, not a choice.
 */
function refuseTestModeInProduction(env: Env, provider: Provider, transport: Transport): void {
  if (transport.captures !== true || !isProduction(env.NODE_ENV) || provider.testMode === undefined) return;
  throw new ConfigError(
    provider.testMode,
    `puts ${provider.label} in its test mode, which delivers nothing: under ${productionSetting(env.NODE_ENV)} every email must be delivered. Unset it (or give the production token) to deliver`,
  );
}

/**
 * SMTP_DKIM_* beside a transport built in code: the variables sign only a transport the
 * environment builds, so the code's must sign as they say (its own dkim option, which may read
 * them), else mail they were meant to sign would go out unsigned. Mail that is only captured is
 * not signed and goes nowhere, so a capturing transport is left alone.
 */
function checkCodeDkim(env: Env, transport: Transport, source: string): void {
  const set = dkimVariablesSet(env);
  // The hold captures now and delivers on release, through its transport: that one must sign.
  if (set.length === 0 || (transport.captures === true && !isHoldTransport(transport))) return;
  const options = dkimFromEnv(env);
  const wanted = options === undefined ? undefined : dkimIdentity(options);
  const has = transport.dkim;
  if (wanted && has && has.domainName === wanted.domainName && has.keySelector === wanted.keySelector) return;
  throw new ConfigError(
    set[0]!,
    `is set, but ${source} sets transport ${transport.name}, which ${has ? `signs as d=${has.domainName}, s=${has.keySelector}` : 'does not sign with it'}: the SMTP_DKIM_* variables sign only a transport the environment builds. Give the config's transport the dkim option (smtpTransport({ dkim: { domainName, keySelector, privateKey } })), or unset the SMTP_DKIM_* variables`,
  );
}

/**
 * Variables whose absence lets mail go further than asked, with what a blank one would do. Elsewhere
 * a blank value is as good as unset; for these it is refused, because a blank most often comes
 * from a deployment's template whose value went missing (`MAILROOM_STAGING_ALLOW=${QA_ALLOW}`),
 * and reading it as unset would send a staging environment's mail to every customer, unsigned or
 * at once.
 */
const SAFEGUARDS: Readonly<Partial<Record<Variable, string>>> = {
  MAILROOM_STAGING_ALLOW: 'leave staging off: mail would reach every recipient',
  MAILROOM_STAGING_REDIRECT: 'leave staging off: mail would reach every recipient',
  MAILROOM_HOLD: 'hold nothing: mail would be sent at once',
  SENDGRID_SANDBOX_MODE: "turn SendGrid's sandbox off: mail would be delivered",
  SMTP_DKIM_DOMAIN: 'turn DKIM signing off: mail would go out unsigned',
  SMTP_DKIM_SELECTOR: 'turn DKIM signing off: mail would go out unsigned',
  SMTP_DKIM_PRIVATE_KEY: 'turn DKIM signing off: mail would go out unsigned',
  SMTP_DKIM_PRIVATE_KEY_FILE: 'turn DKIM signing off: mail would go out unsigned',
};

/** A safeguard variable set to a blank value is a `ConfigError` naming it (see {@link SAFEGUARDS}). */
function refuseBlankSafeguards(env: Env): void {
  for (const [name, consequence] of Object.entries(SAFEGUARDS)) {
    const value = env[name];
    if (value === undefined || value.trim() !== '') continue;
    throw new ConfigError(
      name,
      `is set but blank, which would ${consequence}. Give it a value, or remove the variable`,
    );
  }
}

/** Look-alike variables are refused first: `MAIL_TRANSPORT=smtp` must not quietly mean the sandbox. */
function refuseLookalikes(env: Env, read: Reader): void {
  const known = Object.keys(ENV_VARIABLES);
  for (const name of Object.keys(env).sort()) {
    if (!env[name]?.trim()) continue;
    const like = lookalike(name, known);
    if (like === undefined) continue;
    // Another component's variable of the same name is left alone when ours is set too.
    if (like.suggestion !== undefined && read.get(like.suggestion as Variable) !== undefined) continue;
    throw new ConfigError(
      name,
      like.hint !== undefined
        ? `is not a variable mailroom reads; ${like.hint}`
        : like.suggestion === undefined
          ? 'is not a variable mailroom reads (see ENV_VARIABLES)'
          : `is not a variable mailroom reads; did you mean ${like.suggestion}?`,
    );
  }
}

/** The transport chosen (`code`: the one code gave), and why, for the errors that follow from the choice. */
interface Choice {
  readonly name: TransportName | 'code';
  /** `with MAILROOM_TRANSPORT=smtp`, or `because SMTP_PORT is set, …`. */
  readonly why: string;
}

/** Malformed values are refused even when the transport that would read them is not the one chosen. */
function checkFormats(read: Reader): void {
  const port = read.get('SMTP_PORT');
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    throw new ConfigError('SMTP_PORT', 'must be a port number from 1 to 65535');
  }
  const domain = read.get('MAILGUN_DOMAIN');
  if (domain !== undefined && !DOMAIN.test(domain)) {
    throw new ConfigError('MAILGUN_DOMAIN', 'must be a domain name such as mg.example.com');
  }
  const color = read.get('MAILROOM_PRIMARY_COLOR');
  if (color !== undefined) hexColor(color, 'MAILROOM_PRIMARY_COLOR');
  read.oneOf('SMTP_TLS');
  read.oneOf('MAILGUN_REGION');
  read.oneOf('MAILROOM_HOLD');
  read.httpUrl('MAILGUN_BASE_URL');
  read.httpUrl('POSTMARK_BASE_URL');
  read.httpUrl('RESEND_BASE_URL');
  read.httpUrl('SENDGRID_BASE_URL');
  read.oneOf('SENDGRID_SANDBOX_MODE');
  read.httpUrl('SES_ENDPOINT_URL');
  const stream = read.get('POSTMARK_MESSAGE_STREAM');
  if (stream !== undefined && !/^[A-Za-z0-9_-]{1,100}$/.test(stream)) {
    throw new ConfigError(
      'POSTMARK_MESSAGE_STREAM',
      'must be a message stream id such as outbound (letters, digits, - and _)',
    );
  }
}

/**
 * A variable that reaches a header (a display name, the app's name, a subject prefix) or one line
 * of the footer (company, postal address): the one rule every header string meets (no control
 * characters or line separators), after trimming.
 */
function headerText(read: Reader, name: Variable): string | undefined {
  const value = read.get(name);
  const problem = value === undefined ? undefined : unsafeText(value);
  if (problem) throw new ConfigError(name, problem);
  return value;
}

/** `unsubscribe` from MAILROOM_UNSUBSCRIBE_*: URL and secrets together, each mistake naming its variable. */
function unsubscribeFromEnv(read: Reader): UnsubscribeOptions | undefined {
  const url = read.get('MAILROOM_UNSUBSCRIBE_URL');
  const secrets = read.get('MAILROOM_UNSUBSCRIBE_SECRETS');
  const mailto = read.get('MAILROOM_UNSUBSCRIBE_MAILTO');
  const manageUrl = read.get('MAILROOM_UNSUBSCRIBE_MANAGE_URL');
  if (url === undefined && secrets === undefined && mailto === undefined && manageUrl === undefined)
    return undefined;
  if (url === undefined)
    read.required('MAILROOM_UNSUBSCRIBE_URL', 'with the other MAILROOM_UNSUBSCRIBE_* variables');
  if (secrets === undefined)
    read.required('MAILROOM_UNSUBSCRIBE_SECRETS', 'with MAILROOM_UNSUBSCRIBE_URL: the signing secrets');
  const options: UnsubscribeOptions = {
    url: url as string,
    secrets: (secrets as string).split(',').map((secret) => secret.trim()),
    ...(mailto === undefined ? {} : { mailto }),
    ...(manageUrl === undefined ? {} : { manageUrl }),
  };
  try {
    resolveUnsubscribe(options);
  } catch (error) {
    if (!isConfigError(error)) throw error;
    // The option's name becomes the variable's; a secret is named by its place, never shown.
    const secret = /^unsubscribe\.secrets\[(\d+)\]$/.exec(error.option);
    const variable = secret
      ? 'MAILROOM_UNSUBSCRIBE_SECRETS'
      : error.option === 'unsubscribe.mailto'
        ? 'MAILROOM_UNSUBSCRIBE_MAILTO'
        : error.option === 'unsubscribe.manageUrl'
          ? 'MAILROOM_UNSUBSCRIBE_MANAGE_URL'
          : error.option === 'unsubscribe.url'
            ? 'MAILROOM_UNSUBSCRIBE_URL'
            : 'MAILROOM_UNSUBSCRIBE_SECRETS';
    const problem = error.message.slice(error.option.length + 2);
    throw new ConfigError(variable, secret ? `secret ${Number(secret[1]) + 1}: ${problem}` : problem);
  }
  return options;
}

function smtpFromEnv(read: Reader, env: Env, why: string, needsSender: boolean): Transport {
  const port = read.get('SMTP_PORT');
  const tls = read.oneOf('SMTP_TLS');
  const user = read.get('SMTP_USER');
  const password = read.get('SMTP_PASSWORD');
  const host = read.required('SMTP_HOST', why);
  // The server before the sender: what is missing first is where mail would go.
  if (needsSender) read.required('SMTP_FROM_EMAIL', why);
  const caFile = read.get('SMTP_CA_FILE');
  const ca = caFile === undefined ? undefined : readPem('SMTP_CA_FILE', caFile);
  // Checked here (key parsed, variables named) so a partial or broken DKIM setup never starts.
  const dkim = dkimFromEnv(env);
  return asVariables(SMTP_OPTIONS, () =>
    smtpTransport({
      host,
      ...(port === undefined ? {} : { port: Number(port) }),
      ...(tls === undefined ? {} : { tls }),
      ...(user === undefined ? {} : { user }),
      ...(password === undefined ? {} : { password }),
      ...(ca === undefined ? {} : { ca }),
      ...(dkim === undefined ? {} : { dkim }),
    }),
  );
}

function mailgunFromEnv(read: Reader, why: string, needsSender: boolean): Transport {
  const region = read.oneOf('MAILGUN_REGION');
  const baseUrl = read.httpUrl('MAILGUN_BASE_URL');
  const apiKey = read.required('MAILGUN_API_KEY', why);
  const domain = read.required('MAILGUN_DOMAIN', why);
  if (needsSender) read.required('MAILGUN_FROM_ADDRESS', why);
  return asVariables(MAILGUN_OPTIONS, () =>
    mailgunTransport({
      apiKey,
      domain,
      ...(region === undefined ? {} : { region }),
      ...(baseUrl === undefined ? {} : { baseUrl }),
    }),
  );
}

function postmarkFromEnv(read: Reader, why: string, needsSender: boolean): Transport {
  const serverToken = read.required('POSTMARK_SERVER_TOKEN', why);
  if (needsSender) read.required('POSTMARK_FROM_ADDRESS', why);
  const messageStream = read.get('POSTMARK_MESSAGE_STREAM');
  const baseUrl = read.get('POSTMARK_BASE_URL');
  return asVariables(POSTMARK_OPTIONS, () =>
    postmarkTransport({
      serverToken,
      ...(messageStream === undefined ? {} : { messageStream }),
      ...(baseUrl === undefined ? {} : { baseUrl }),
    }),
  );
}

function resendFromEnv(read: Reader, why: string, needsSender: boolean): Transport {
  const apiKey = read.required('RESEND_API_KEY', why);
  if (needsSender) read.required('RESEND_FROM_ADDRESS', why);
  const baseUrl = read.get('RESEND_BASE_URL');
  return asVariables(RESEND_OPTIONS, () =>
    resendTransport({ apiKey, ...(baseUrl === undefined ? {} : { baseUrl }) }),
  );
}

function sendgridFromEnv(read: Reader, why: string, needsSender: boolean): Transport {
  const apiKey = read.required('SENDGRID_API_KEY', why);
  if (needsSender) read.required('SENDGRID_FROM_ADDRESS', why);
  const baseUrl = read.get('SENDGRID_BASE_URL');
  const sandbox = read.oneOf('SENDGRID_SANDBOX_MODE');
  return asVariables(SENDGRID_OPTIONS, () =>
    sendgridTransport({
      apiKey,
      ...(baseUrl === undefined ? {} : { baseUrl }),
      ...(sandbox === 'true' || sandbox === '1' ? { sandboxMode: true } : {}),
    }),
  );
}

function sendmailFromEnv(read: Reader, env: Env, why: string, needsSender: boolean): Transport {
  const path = read.get('SENDMAIL_PATH');
  if (needsSender) read.required('SENDMAIL_FROM_ADDRESS', why);
  // Checked here (key parsed, variables named), as for SMTP: the MTA gets the message signed.
  const dkim = dkimFromEnv(env);
  return asVariables(SENDMAIL_OPTIONS, () =>
    sendmailTransport({ ...(path === undefined ? {} : { path }), ...(dkim === undefined ? {} : { dkim }) }),
  );
}

/**
 * Amazon SES: the region from AWS_REGION (or AWS_DEFAULT_REGION, which the SDK itself does not read),
 * credentials from the AWS SDK's own chain (the process environment, profiles, roles: never required
 * here, since roles have no key), an endpoint from SES_ENDPOINT_URL, else the SDK's
 * (AWS_ENDPOINT_URL_SESV2).
 */
function sesFromEnv(read: Reader, env: Env, why: string, needsSender: boolean): Transport {
  const region = read.get('AWS_REGION') ?? read.get('AWS_DEFAULT_REGION');
  if (region === undefined) read.required('AWS_REGION', `${why} (or AWS_DEFAULT_REGION)`);
  if (needsSender) read.required('SES_FROM_ADDRESS', why);
  const configurationSetName = read.get('SES_CONFIGURATION_SET');
  const endpoint = read.get('SES_ENDPOINT_URL');
  const regionVariable = read.get('AWS_REGION') === undefined ? 'AWS_DEFAULT_REGION' : 'AWS_REGION';
  // Your own key besides SES's Easy DKIM, when the SMTP_DKIM_* variables give one.
  const dkim = dkimFromEnv(env);
  return asVariables({ ...SES_OPTIONS, region: regionVariable }, () =>
    sesTransport({
      ...(dkim === undefined ? {} : { dkim }),
      ...(region === undefined ? {} : { region }),
      ...(configurationSetName === undefined ? {} : { configurationSetName }),
      ...(endpoint === undefined ? {} : { endpoint }),
    }),
  );
}

/** The providers, by the name `MAILROOM_TRANSPORT` gives them. */
const PROVIDERS: Readonly<Record<ProviderName, Provider>> = {
  smtp: {
    label: 'SMTP',
    signs: ['SMTP_HOST', 'SMTP_USER', 'SMTP_PASSWORD', 'SMTP_PORT'],
    from: 'SMTP_FROM_EMAIL',
    fromName: 'SMTP_FROM_NAME',
    secret: 'SMTP_PASSWORD',
    secretLabel: 'SMTP password',
    build: smtpFromEnv,
  },
  mailgun: {
    label: 'Mailgun',
    signs: ['MAILGUN_API_KEY', 'MAILGUN_DOMAIN'],
    from: 'MAILGUN_FROM_ADDRESS',
    fromName: 'MAILGUN_FROM_NAME',
    secret: 'MAILGUN_API_KEY',
    secretLabel: 'Mailgun API key',
    build: (read, _env, why, needsSender) => mailgunFromEnv(read, why, needsSender),
  },
  postmark: {
    label: 'Postmark',
    signs: ['POSTMARK_SERVER_TOKEN', 'POSTMARK_MESSAGE_STREAM'],
    from: 'POSTMARK_FROM_ADDRESS',
    fromName: 'POSTMARK_FROM_NAME',
    secret: 'POSTMARK_SERVER_TOKEN',
    secretLabel: 'Postmark server token',
    testMode: 'POSTMARK_SERVER_TOKEN',
    build: (read, _env, why, needsSender) => postmarkFromEnv(read, why, needsSender),
  },
  resend: {
    label: 'Resend',
    signs: ['RESEND_API_KEY'],
    from: 'RESEND_FROM_ADDRESS',
    fromName: 'RESEND_FROM_NAME',
    secret: 'RESEND_API_KEY',
    secretLabel: 'Resend API key',
    build: (read, _env, why, needsSender) => resendFromEnv(read, why, needsSender),
  },
  sendgrid: {
    label: 'SendGrid',
    signs: ['SENDGRID_API_KEY'],
    from: 'SENDGRID_FROM_ADDRESS',
    fromName: 'SENDGRID_FROM_NAME',
    secret: 'SENDGRID_API_KEY',
    secretLabel: 'SendGrid API key',
    testMode: 'SENDGRID_SANDBOX_MODE',
    build: (read, _env, why, needsSender) => sendgridFromEnv(read, why, needsSender),
  },
  sendmail: {
    label: 'sendmail',
    signs: ['SENDMAIL_PATH'],
    from: 'SENDMAIL_FROM_ADDRESS',
    fromName: 'SENDMAIL_FROM_NAME',
    build: sendmailFromEnv,
  },
  ses: {
    label: 'Amazon SES',
    // Only SES's own variables: AWS_REGION and the AWS credentials are set for every AWS client.
    signs: ['SES_FROM_ADDRESS', 'SES_CONFIGURATION_SET', 'SES_ENDPOINT_URL'],
    from: 'SES_FROM_ADDRESS',
    fromName: 'SES_FROM_NAME',
    build: sesFromEnv,
  },
};

/**
 * Internal (the preview's settings view): each provider's name and the variables that sign it,
 * name its sender and hold its credential, in `PROVIDER_NAMES` order.
 */
export function providerVariables(): ReadonlyArray<
  { readonly name: ProviderName } & Omit<Provider, 'build'>
> {
  return PROVIDER_NAMES.map((name) => {
    const { build: _build, ...rest } = PROVIDERS[name];
    return { name, ...rest };
  });
}

/**
 * Internal (the worker's refusal): the variable that puts the provider named `transport` in its
 * test mode (`SENDGRID_SANDBOX_MODE`, `POSTMARK_SERVER_TOKEN`), if the environment has one.
 */
export function testModeVariable(transport: string): string | undefined {
  return isProvider(transport) ? PROVIDERS[transport].testMode : undefined;
}

/** Wraps the transport in the staging interceptor when a staging variable is set. */
function withStaging(read: Reader, transport: Transport): Transport {
  const prefix = headerText(read, 'MAILROOM_STAGING_SUBJECT_PREFIX');
  const allow = read.get('MAILROOM_STAGING_ALLOW');
  const redirect = read.address('MAILROOM_STAGING_REDIRECT');
  if (allow === undefined && redirect === undefined) return transport;
  return asVariables(STAGING_OPTIONS, () =>
    stagingTransport({
      transport,
      ...(allow === undefined
        ? {}
        : {
            allow: allow
              .split(',')
              .map((entry) => entry.trim())
              .filter(Boolean),
          }),
      ...(redirect === undefined ? {} : { redirectTo: redirect }),
      ...(prefix === undefined ? {} : { subjectPrefix: `${prefix} ` }),
    }),
  );
}

/**
 * Wraps the transport (staging included, so its allowlist applies on release) in the hold when
 * `MAILROOM_HOLD` is on. The hold releases through a transport that delivers: behind the sandbox
 * or the memory outbox a release would go nowhere anyone reads.
 */
function withHold(read: Reader, transport: Transport): Transport {
  const on = read.oneOf('MAILROOM_HOLD');
  if ((on !== 'true' && on !== '1') || isHoldTransport(transport)) return transport;
  if (transport.captures === true) {
    throw new ConfigError(
      'MAILROOM_HOLD',
      `holds mail until it is released through a transport that delivers, but mail goes to ${transport.name}: configure ${orList(PROVIDER_NAMES)} (${PROVIDER_NAMES.map((p) => PROVIDERS[p].signs[0]).join(', ')} …), or unset MAILROOM_HOLD`,
    );
  }
  return holdTransport({ transport, dir: read.get('MAILROOM_SANDBOX_DIR') ?? '.mailroom/outbox' });
}

/**
 * Internal (configFromEnv, `mailroom suppressions`): the PostgreSQL suppression store
 * `MAILROOM_SUPPRESSIONS_URL` names, or undefined when it is unset. A value that is not a
 * postgres:// URL is a `ConfigError` naming the variable (never repeating it: it holds a password);
 * a missing pg package one naming `pg`. The store's pool does not keep a process alive when idle.
 */
export function suppressionsFromEnv(
  env: Env = process.env,
): (SuppressionStore & { close(): Promise<void> }) | undefined {
  return storeFromEnv(env, 'MAILROOM_SUPPRESSIONS_URL', postgresSuppressionStore);
}

/**
 * Internal (configFromEnv): the PostgreSQL preference store `MAILROOM_PREFERENCES_URL` names, or
 * undefined when it is unset; checked as {@link suppressionsFromEnv} checks its URL.
 */
function preferencesFromEnv(
  env: Env = process.env,
): (PreferenceStore & { close(): Promise<void> }) | undefined {
  return storeFromEnv(env, 'MAILROOM_PREFERENCES_URL', postgresPreferenceStore);
}

/** The store `open` makes on the connection string in `variable`, closed with the service; undefined when unset. */
function storeFromEnv<S extends { close(): Promise<void> }>(
  env: Env,
  variable: 'MAILROOM_SUPPRESSIONS_URL' | 'MAILROOM_PREFERENCES_URL',
  open: (options: { connectionString: string }) => S,
): S | undefined {
  const url = reader(env).get(variable);
  if (url === undefined) return undefined;
  checkConnectionString(url, variable);
  return closesWithService(open({ connectionString: url }));
}

function readPem(name: Variable, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(name, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
