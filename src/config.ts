/**
 * Configuration from the environment, validated once. Every error names the variable.
 * With nothing configured, mail goes to the sandbox: never dropped, never sent to a real server.
 */
import { ConfigError, isConfigError, isMessageError } from './errors.js';
import { type Address, parseAddress } from './message.js';
import type { EmailServiceOptions } from './service.js';
import type { Transport } from './transport.js';
import { DKIM_ENV_VARIABLES, dkimFromEnv } from './transports/dkim.js';
import { mailgunTransport } from './transports/mailgun.js';
import { memoryTransport } from './transports/memory.js';
import { sandboxTransport } from './transports/sandbox.js';
import { smtpTransport } from './transports/smtp.js';
import { stagingTransport } from './transports/staging.js';

/** The transports `MAILROOM_TRANSPORT` can name. */
export const TRANSPORT_NAMES = ['sandbox', 'memory', 'smtp', 'mailgun'] as const;

/** The environment variables mailroom reads, with what each is for. */
export const ENV_VARIABLES = {
  APP_NAME: 'Your app’s name, shown in every email. Default "Mailroom".',
  MAILROOM_TRANSPORT: 'sandbox (default), memory, smtp or mailgun.',
  MAILROOM_SANDBOX_DIR: 'Where the sandbox writes mail. Default .mailroom/outbox.',
  SMTP_HOST: 'SMTP server host.',
  SMTP_PORT: 'SMTP server port (1–65535). Default 587, or 465 with SMTP_TLS=implicit.',
  SMTP_TLS:
    'starttls (default; required, not optional), implicit (default on port 465) or none (plain text, local relays only).',
  SMTP_USER: 'SMTP user name.',
  SMTP_PASSWORD: 'SMTP password. Never logged.',
  SMTP_FROM_EMAIL: 'Sender address.',
  SMTP_FROM_NAME: 'Sender display name. Default: the app’s name.',
  ...DKIM_ENV_VARIABLES,
  MAILGUN_API_KEY: 'Mailgun API key. Never logged.',
  MAILGUN_DOMAIN: 'Mailgun sending domain.',
  MAILGUN_FROM_ADDRESS: 'Sender address when using Mailgun.',
  MAILGUN_REGION: 'us (default) or eu: where your Mailgun domain lives.',
  MAILGUN_BASE_URL: 'Another Mailgun API base URL (a proxy); overrides MAILGUN_REGION.',
  MAILROOM_REPLY_TO: 'Reply-To address for every email.',
  MAILROOM_LOGO_URL: 'https URL of a logo for the email header.',
  MAILROOM_APP_URL: 'Your app’s home page.',
  MAILROOM_PRIMARY_COLOR: 'Button and link colour, #RRGGBB. Default #007BFF.',
  MAILROOM_STAGING_ALLOW: 'Staging: comma-separated addresses or @domains that may receive mail.',
  MAILROOM_STAGING_REDIRECT: 'Staging: send all other mail to this address instead.',
  MAILROOM_STAGING_SUBJECT_PREFIX: 'Staging: subject prefix. Default "[STAGING] ".',
  KAFKA_BROKERS: 'Kafka: comma-separated host:port of the brokers (mailroom worker, mailroom-js/kafka).',
  KAFKA_CLIENT_ID: 'Kafka: client id shown in broker logs. Default "mailroom".',
  KAFKA_SSL: 'Kafka: true to connect with TLS. Default false.',
  KAFKA_SASL_MECHANISM: 'Kafka: plain, scram-sha-256 or scram-sha-512.',
  KAFKA_SASL_USERNAME: 'Kafka: SASL user name.',
  KAFKA_SASL_PASSWORD: 'Kafka: SASL password. Never logged.',
  MAILROOM_KAFKA_TOPIC:
    'Kafka: the email topic. Default notifications.email (retry and DLQ topics add .retry and .dlq).',
  MAILROOM_KAFKA_GROUP: "Kafka: the worker's consumer group. Default mailroom-email-worker.",
  MAILROOM_WORKER_CONCURRENCY: 'Kafka: sends in flight per worker. Default 10.',
} as const;

type Env = Readonly<Record<string, string | undefined>>;
type Variable = keyof typeof ENV_VARIABLES;

/** The variable behind each transport option, so a transport's own check names the variable. */
const SMTP_OPTIONS: Record<string, Variable> = {
  host: 'SMTP_HOST',
  port: 'SMTP_PORT',
  tls: 'SMTP_TLS',
  user: 'SMTP_USER',
  password: 'SMTP_PASSWORD',
};
const MAILGUN_OPTIONS: Record<string, Variable> = {
  apiKey: 'MAILGUN_API_KEY',
  domain: 'MAILGUN_DOMAIN',
  region: 'MAILGUN_REGION',
  baseUrl: 'MAILGUN_BASE_URL',
};

/** Builds a transport, renaming a `ConfigError` about one of its options after the variable it came from. */
function asVariables<T>(names: Record<string, Variable>, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (!isConfigError(err) || !(err.option in names)) throw err;
    throw new ConfigError(names[err.option]!, err.message.slice(err.option.length + 2));
  }
}
const COLOR = /^#[0-9a-fA-F]{6}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/**
 * Reads mailroom's configuration from environment variables (see {@link ENV_VARIABLES}) and
 * returns options for `new EmailService()`. Throws a `ConfigError` naming the first variable that
 * is malformed or missing.
 *
 * @example
 * ```ts
 * const mail = new EmailService(configFromEnv());
 * ```
 */
export function configFromEnv(env: Env = process.env): EmailServiceOptions {
  const get = (name: keyof typeof ENV_VARIABLES) => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const address = (name: keyof typeof ENV_VARIABLES): Address | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    try {
      return parseAddress(value, name);
    } catch (err) {
      throw isMessageError(err) ? new ConfigError(name, err.message.replace(`${name}: `, '')) : err;
    }
  };
  const httpUrl = (name: keyof typeof ENV_VARIABLES) => {
    const value = get(name);
    if (value !== undefined && !(/^https?:\/\//i.test(value) && URL.canParse(value))) {
      throw new ConfigError(name, 'must be an http(s) URL');
    }
    return value;
  };

  const appName = get('APP_NAME');
  const transportName = get('MAILROOM_TRANSPORT') ?? 'sandbox';
  if (!(TRANSPORT_NAMES as readonly string[]).includes(transportName)) {
    throw new ConfigError('MAILROOM_TRANSPORT', `must be one of ${TRANSPORT_NAMES.join(', ')}`);
  }
  const port = get('SMTP_PORT');
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    throw new ConfigError('SMTP_PORT', 'must be a port number from 1 to 65535');
  }
  const mailgunDomain = get('MAILGUN_DOMAIN');
  if (mailgunDomain !== undefined && !DOMAIN.test(mailgunDomain)) {
    throw new ConfigError('MAILGUN_DOMAIN', 'must be a domain name such as mg.example.com');
  }
  const color = get('MAILROOM_PRIMARY_COLOR');
  if (color !== undefined && !COLOR.test(color))
    throw new ConfigError('MAILROOM_PRIMARY_COLOR', 'must look like #1A2B3C');
  const smtpFrom = address('SMTP_FROM_EMAIL');
  const mailgunFrom = address('MAILGUN_FROM_ADDRESS');
  const replyTo = address('MAILROOM_REPLY_TO');
  const fromName = get('SMTP_FROM_NAME');
  if (fromName !== undefined && /[\u0000-\u001f\u007f]/.test(fromName)) {
    throw new ConfigError('SMTP_FROM_NAME', 'control characters are not allowed');
  }

  const required = (name: keyof typeof ENV_VARIABLES) => {
    const value = get(name);
    if (value === undefined)
      throw new ConfigError(name, `is required with MAILROOM_TRANSPORT=${transportName}`);
    return value;
  };
  let sender = smtpFrom ?? mailgunFrom;
  let transport: Transport;
  switch (transportName) {
    case 'smtp': {
      if (!smtpFrom) required('SMTP_FROM_EMAIL');
      const tls = get('SMTP_TLS');
      if (tls !== undefined && !['starttls', 'implicit', 'none'].includes(tls)) {
        throw new ConfigError('SMTP_TLS', 'must be starttls, implicit or none');
      }
      const user = get('SMTP_USER');
      const password = get('SMTP_PASSWORD');
      const host = required('SMTP_HOST');
      // Checked here (key parsed, variables named) so a partial or broken DKIM setup never starts.
      const dkim = dkimFromEnv(env);
      transport = asVariables(SMTP_OPTIONS, () =>
        smtpTransport({
          host,
          ...(port === undefined ? {} : { port: Number(port) }),
          ...(tls === undefined ? {} : { tls: tls as 'starttls' | 'implicit' | 'none' }),
          ...(user === undefined ? {} : { user }),
          ...(password === undefined ? {} : { password }),
          ...(dkim === undefined ? {} : { dkim }),
        }),
      );
      break;
    }
    case 'mailgun': {
      if (!mailgunFrom) required('MAILGUN_FROM_ADDRESS');
      sender = mailgunFrom;
      const region = get('MAILGUN_REGION');
      if (region !== undefined && region !== 'us' && region !== 'eu') {
        throw new ConfigError('MAILGUN_REGION', 'must be us or eu');
      }
      const baseUrl = httpUrl('MAILGUN_BASE_URL');
      const apiKey = required('MAILGUN_API_KEY');
      const domain = required('MAILGUN_DOMAIN');
      transport = asVariables(MAILGUN_OPTIONS, () =>
        mailgunTransport({
          apiKey,
          domain,
          ...(region === undefined ? {} : { region }),
          ...(baseUrl === undefined ? {} : { baseUrl }),
        }),
      );
      break;
    }
    case 'memory':
      transport = memoryTransport();
      break;
    default:
      transport = sandboxTransport({ dir: get('MAILROOM_SANDBOX_DIR') ?? '.mailroom/outbox' });
  }

  const logoUrl = httpUrl('MAILROOM_LOGO_URL');
  const appUrl = httpUrl('MAILROOM_APP_URL');
  const prefix = get('MAILROOM_STAGING_SUBJECT_PREFIX');
  const allow = get('MAILROOM_STAGING_ALLOW');
  const redirect = address('MAILROOM_STAGING_REDIRECT');
  if (allow !== undefined || redirect !== undefined) {
    transport = stagingTransport({
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
    });
  }

  return {
    transport,
    ...(appName === undefined ? {} : { appName }),
    // SMTP_FROM_NAME, else the name in the sender variable, else the service names it after the app.
    from: {
      ...((fromName ?? sender?.name) === undefined ? {} : { name: fromName ?? sender?.name }),
      address: sender?.address ?? 'no-reply@example.com',
    },
    ...(replyTo === undefined ? {} : { replyTo }),
    brand: {
      ...(logoUrl === undefined ? {} : { logoUrl }),
      ...(appUrl === undefined ? {} : { url: appUrl }),
      ...(color === undefined ? {} : { colors: { primary: color } }),
    },
  };
}
