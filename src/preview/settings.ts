/**
 * The preview's settings view: the configuration the preview's service runs with, read-only, with
 * where each value came from, and the transport's `verify()` behind a button. Secrets are reported
 * as set or unset only: their values never leave this file.
 */
import { type ENV_VARIABLES, providerVariables } from '../config.js';
import { isEmailError } from '../errors.js';
import { DEFAULT_TOPIC } from '../kafka/producer.js';
import type { EmailService } from '../service.js';
import { DEFAULT_PALETTE } from '../templates/brand.js';
import { isHoldTransport } from '../transports/hold.js';
import type { ActionAnswer } from './actions.js';

/** Where a value came from. */
export type SettingSource = 'environment' | 'config file' | 'code' | 'default';

/** One line of the settings view. */
export interface Setting {
  readonly name: string;
  /** The value as shown; for a secret, `set` or `unset`. Undefined: not configured. */
  readonly value: string | undefined;
  readonly source: SettingSource;
  /** The environment variable read, or the config file's name, when that is the source. */
  readonly from?: string;
  readonly secret?: true;
}

/** A titled group of settings. */
export interface SettingsGroup {
  readonly title: string;
  readonly settings: readonly Setting[];
}

/** How the preview got its service options. */
export interface SettingsOrigin {
  /** The options were given in code (`service` option), not read from the environment by the preview. */
  readonly code: boolean;
  /** The config file they came from (the CLI's `mailroom.config.ts`), when there is one. */
  readonly configFile: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;
type Variable = keyof typeof ENV_VARIABLES;

/** The variables whose values are never shown. */
const PROVIDERS = providerVariables();
const SECRETS: readonly Variable[] = [
  ...PROVIDERS.flatMap((p) => (p.secret ? [p.secret] : [])),
  'KAFKA_SASL_PASSWORD',
  'KAFKA_SSL_KEY_PASSWORD',
  'SMTP_DKIM_PRIVATE_KEY',
  'MAILROOM_PREVIEW_TOKEN',
  'MAILROOM_UNSUBSCRIBE_SECRETS',
];

/**
 * The settings of `service` in groups. A value is the environment's when its variable is set and
 * says the same; otherwise it came from code (or the config file) when code gave options and the
 * value is not the default; otherwise it is the default.
 */
export function settingsView(service: EmailService, origin: SettingsOrigin, env: Env = process.env) {
  const get = (name: Variable) => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const code: Setting['source'] = origin.configFile ? 'config file' : 'code';
  const codeFrom = origin.configFile ? { from: origin.configFile } : {};
  /** A value and the first of `variables` that is set; `matches` says whether that variable's value is what runs. */
  const row = (
    name: string,
    value: string | undefined,
    variables: readonly Variable[],
    fallback: string | undefined,
    matches: (variableValue: string) => boolean = (v) => v === value,
  ): Setting => {
    const variable = variables.find((v) => get(v) !== undefined);
    if (variable !== undefined && matches(get(variable)!))
      return { name, value, source: 'environment', from: variable };
    if (origin.code && value !== fallback) return { name, value, source: code, ...codeFrom };
    return { name, value, source: 'default' };
  };
  const app = service.app;
  const transport = service.transport;
  const hold = isHoldTransport(transport) ? transport : undefined;
  const behind = hold ? hold.transport : transport;
  const described = behind.describe?.() ?? behind.name;
  const staged = /, staged \(/.test(described);
  const innerName = described.split(' ')[0] ?? behind.name;
  const named = get('MAILROOM_TRANSPORT');
  // The provider the environment chose by its variables (config.ts: the one whose variables are set).
  const signed = PROVIDERS.find((p) => p.name === innerName && p.signs.some((v) => get(v) !== undefined));
  const sign = signed?.signs.find((v) => get(v) !== undefined);
  const transportSource: Setting =
    named !== undefined && named === innerName
      ? { name: 'Sends through', value: described, source: 'environment', from: 'MAILROOM_TRANSPORT' }
      : sign !== undefined
        ? { name: 'Sends through', value: described, source: 'environment', from: sign }
        : origin.code
          ? { name: 'Sends through', value: described, source: code, ...codeFrom }
          : { name: 'Sends through', value: described, source: 'default' };
  const secret = (label: string, name: Variable): Setting => ({
    name: label,
    value: get(name) === undefined ? 'unset' : 'set',
    source: get(name) === undefined ? 'default' : 'environment',
    ...(get(name) === undefined ? {} : { from: name }),
    secret: true,
  });
  const topic = get('MAILROOM_KAFKA_TOPIC') ?? DEFAULT_TOPIC;
  const groups: SettingsGroup[] = [
    {
      title: 'Transport',
      settings: [
        transportSource,
        {
          name: 'Delivers',
          value: hold
            ? 'when a person releases it'
            : transport.captures === true
              ? 'no: captures mail'
              : transport.capturesSome === true
                ? 'some: a capturing transport is behind it'
                : 'yes',
          source: transportSource.source,
          ...(transportSource.from ? { from: transportSource.from } : {}),
        },
        row('SMTP user', get('SMTP_USER'), ['SMTP_USER'], undefined),
        ...PROVIDERS.flatMap((p) => (p.secret ? [secret(p.secretLabel ?? p.secret, p.secret)] : [])),
        row('DKIM domain', get('SMTP_DKIM_DOMAIN'), ['SMTP_DKIM_DOMAIN'], undefined),
        secret('DKIM private key', 'SMTP_DKIM_PRIVATE_KEY'),
      ],
    },
    {
      title: 'Sender',
      settings: [
        row(
          'From address',
          app.senderAddress,
          PROVIDERS.map((p) => p.from),
          'no-reply@example.com',
          (v) => v.includes(app.senderAddress),
        ),
        row('From name', app.senderName, [...PROVIDERS.map((p) => p.fromName), 'APP_NAME'], 'Mailroom'),
        row('App name', app.name, ['APP_NAME'], 'Mailroom'),
        row('Reply-To', get('MAILROOM_REPLY_TO'), ['MAILROOM_REPLY_TO'], undefined),
        row('Language', service.locale, ['MAILROOM_LOCALE'], 'en'),
        row('Unsubscribe URL', get('MAILROOM_UNSUBSCRIBE_URL'), ['MAILROOM_UNSUBSCRIBE_URL'], undefined),
        secret('Unsubscribe secrets', 'MAILROOM_UNSUBSCRIBE_SECRETS'),
        row(
          'Notification settings URL',
          get('MAILROOM_UNSUBSCRIBE_MANAGE_URL'),
          ['MAILROOM_UNSUBSCRIBE_MANAGE_URL'],
          undefined,
        ),
      ],
    },
    {
      title: 'Brand',
      settings: [
        row('Logo URL', app.logoUrl, ['MAILROOM_LOGO_URL'], undefined),
        row('App URL', app.url, ['MAILROOM_APP_URL'], undefined),
        row('Primary colour', app.colors.primary, ['MAILROOM_PRIMARY_COLOR'], DEFAULT_PALETTE.primary, (v) =>
          sameColor(v, app.colors.primary),
        ),
        row('Company', app.company, ['MAILROOM_COMPANY'], app.name),
        row('Postal address', app.address, ['MAILROOM_POSTAL_ADDRESS'], undefined),
        row('Support URL', app.supportUrl, ['MAILROOM_SUPPORT_URL'], undefined),
        row('Support email', app.supportEmail, ['MAILROOM_SUPPORT_EMAIL'], undefined),
      ],
    },
    {
      title: 'Staging',
      settings: staged
        ? [
            row('Allowed', get('MAILROOM_STAGING_ALLOW'), ['MAILROOM_STAGING_ALLOW'], undefined),
            row('Redirect to', get('MAILROOM_STAGING_REDIRECT'), ['MAILROOM_STAGING_REDIRECT'], undefined),
            row(
              'Subject prefix',
              get('MAILROOM_STAGING_SUBJECT_PREFIX') ?? '[STAGING]',
              ['MAILROOM_STAGING_SUBJECT_PREFIX'],
              '[STAGING]',
            ),
          ]
        : [{ name: 'Staging rules', value: 'off', source: 'default' }],
    },
    {
      title: 'Hold',
      settings: [
        hold
          ? row('Hold', 'on', ['MAILROOM_HOLD'], 'off', (v) => v === 'true' || v === '1')
          : {
              name: 'Hold',
              value: 'off',
              source: get('MAILROOM_HOLD') ? 'environment' : 'default',
              ...(get('MAILROOM_HOLD') ? { from: 'MAILROOM_HOLD' } : {}),
            },
        ...(hold
          ? [
              row('Folder', hold.dir, ['MAILROOM_SANDBOX_DIR'], undefined, (v) =>
                hold.dir.endsWith(v.replace(/^\.\//, '').replace(/\/$/, '')),
              ),
            ]
          : []),
        secret('Preview token', 'MAILROOM_PREVIEW_TOKEN'),
      ],
    },
    {
      title: 'Kafka (mailroom worker, mailroom-js/kafka)',
      settings: [
        row('Brokers', get('KAFKA_BROKERS'), ['KAFKA_BROKERS'], undefined),
        row('Topic', topic, ['MAILROOM_KAFKA_TOPIC'], DEFAULT_TOPIC),
        {
          name: 'Retry topic',
          value: `${topic}.retry`,
          source: get('MAILROOM_KAFKA_TOPIC') ? 'environment' : 'default',
          ...(get('MAILROOM_KAFKA_TOPIC') ? { from: 'MAILROOM_KAFKA_TOPIC' } : {}),
        },
        {
          name: 'Dead-letter topic',
          value: `${topic}.dlq`,
          source: get('MAILROOM_KAFKA_TOPIC') ? 'environment' : 'default',
          ...(get('MAILROOM_KAFKA_TOPIC') ? { from: 'MAILROOM_KAFKA_TOPIC' } : {}),
        },
        row(
          'Consumer group',
          get('MAILROOM_KAFKA_GROUP') ?? 'mailroom-email-worker',
          ['MAILROOM_KAFKA_GROUP'],
          'mailroom-email-worker',
        ),
        row('Client id', get('KAFKA_CLIENT_ID') ?? 'mailroom', ['KAFKA_CLIENT_ID'], 'mailroom'),
        row('TLS CA file', get('KAFKA_SSL_CA_LOCATION'), ['KAFKA_SSL_CA_LOCATION'], undefined),
        row(
          'TLS client certificate',
          get('KAFKA_SSL_CERTIFICATE_LOCATION'),
          ['KAFKA_SSL_CERTIFICATE_LOCATION'],
          undefined,
        ),
        row('TLS client key', get('KAFKA_SSL_KEY_LOCATION'), ['KAFKA_SSL_KEY_LOCATION'], undefined),
        secret('TLS key password', 'KAFKA_SSL_KEY_PASSWORD'),
        row('SASL user', get('KAFKA_SASL_USERNAME'), ['KAFKA_SASL_USERNAME'], undefined),
        secret('SASL password', 'KAFKA_SASL_PASSWORD'),
      ],
    },
  ];
  const storeRow = (variable: 'MAILROOM_SUPPRESSIONS_URL' | 'MAILROOM_PREFERENCES_URL') => {
    const url = get(variable);
    return url === undefined
      ? { name: 'Store', value: 'none (or given in code)', source: 'default' as const }
      : {
          name: 'Store',
          value: `PostgreSQL ${maskedDatabaseUrl(url)}`,
          source: 'environment' as const,
          from: variable,
        };
  };
  groups.push({ title: 'Suppression list', settings: [storeRow('MAILROOM_SUPPRESSIONS_URL')] });
  groups.push({ title: 'Notification preferences', settings: [storeRow('MAILROOM_PREFERENCES_URL')] });
  // Belt and braces: a secret's value that reached any other line (a describe() that printed it) is masked.
  // A list of secrets is masked secret by secret too.
  const values = [
    ...SECRETS.flatMap((name) => {
      const value = get(name);
      return value === undefined
        ? []
        : [value, ...(name === 'MAILROOM_UNSUBSCRIBE_SECRETS' ? value.split(',') : [])];
    }),
    ...databasePasswords(get('MAILROOM_SUPPRESSIONS_URL')),
    ...databasePasswords(get('MAILROOM_PREFERENCES_URL')),
  ]
    .filter((v): v is string => v !== undefined)
    .map((v) => v.trim())
    .filter((v) => v.length >= 4);
  return {
    groups: groups.map((g) => ({
      ...g,
      settings: g.settings.map((s) =>
        s.value !== undefined && values.some((v) => s.value!.includes(v))
          ? { ...s, value: values.reduce((text, v) => text.split(v).join('•••'), s.value) }
          : s,
      ),
    })),
  };
}

/**
 * `postgres://app:•••@db.internal:5432/app`: user, host and database; the password masked, the
 * query (which may carry `password=`, `sslkey=` …) left out.
 */
function maskedDatabaseUrl(value: string): string {
  if (!URL.canParse(value)) return '(set, not a URL)';
  const url = new URL(value);
  const user = url.username ? `${url.username}${url.password ? ':•••' : ''}@` : '';
  return `${url.protocol}//${user}${url.host}${url.pathname}`;
}

/** The password of a database URL, as written and decoded, to mask wherever else it shows up. */
function databasePasswords(value: string | undefined): string[] {
  if (value === undefined || !URL.canParse(value)) return [];
  const url = new URL(value);
  const query = url.searchParams.get('password');
  const raw = [url.password, query ?? ''].filter(Boolean);
  return raw.flatMap((p) => {
    try {
      return [p, decodeURIComponent(p)];
    } catch {
      return [p];
    }
  });
}

function sameColor(a: string, b: string): boolean {
  const long = (c: string) =>
    (c.length === 4 ? `#${[...c.slice(1)].map((x) => x + x).join('')}` : c).toLowerCase();
  return long(a) === long(b);
}

/**
 * `POST api/settings/verify`: runs the transport's `verify()`. 200 `{ ok: true, transport }` when it
 * passes or the transport has nothing to verify (`verified: false`); 502 with the typed error when
 * it fails.
 */
export async function verifyTransport(service: EmailService): Promise<ActionAnswer> {
  const transport = service.transport;
  const described = transport.describe?.() ?? transport.name;
  if (!transport.verify) return { status: 200, body: { ok: true, verified: false, transport: described } };
  try {
    await transport.verify();
    return { status: 200, body: { ok: true, verified: true, transport: described } };
  } catch (error) {
    const e = error as Error;
    return {
      status: 502,
      body: {
        ok: false,
        transport: described,
        error: isEmailError(error)
          ? { name: error.name, code: error.code, status: error.status, message: error.message }
          : { name: e?.name ?? 'Error', message: e?.message ?? String(error) },
      },
    };
  }
}
