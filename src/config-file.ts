/**
 * `defineConfig()`: the shape of `mailroom.config.ts`, the file the `mailroom` command loads so
 * that every command sees the app's own templates and options. Types only here: the loader is
 * the CLI's (src/cli/config-file.ts), so nothing is loaded by `import('mailroom-js')`.
 */
import type { AddressInput } from './message.js';
import type { RetryOptions } from './retry.js';
import type { BrandOptions } from './templates/brand.js';
import type { TemplateHandle } from './templates/define.js';
import type { Translations } from './templates/i18n.js';
import type { Transport } from './transport.js';

/**
 * What `mailroom worker` takes from the config file. Each is overridden by its flag and overrides
 * its variable. Connection secrets (KAFKA_SSL, KAFKA_SASL_*) stay in the environment.
 */
export interface MailroomWorkerConfig {
  /** Kafka brokers, `host:port` each. Flag `--brokers`; else `KAFKA_BROKERS`. */
  brokers?: string | readonly string[];
  /** The consumer group. Flag `--group`; else `MAILROOM_KAFKA_GROUP`; default `mailroom-email-worker`. */
  group?: string;
  /** The email topic. Flag `--topic`; else `MAILROOM_KAFKA_TOPIC`; default `notifications.email`. */
  topic?: string;
  /** Where retries are parked. Flag `--retry-topic`; default `<topic>.retry`. */
  retryTopic?: string;
  /** Where emails that cannot be sent go. Flag `--dlq-topic`; default `<topic>.dlq`. */
  deadLetterTopic?: string;
  /**
   * Send later: also consume `<topic>.delay.1m`, `.10m`, `.1h` and `.6h`, which must exist
   * (see `EmailWorkerOptions.delayTopics`). Flag `--delay-topics`; default false.
   */
  delayTopics?: boolean;
  /** Sends in flight, 1–9999. Flag `--concurrency`; else `MAILROOM_WORKER_CONCURRENCY`; default 10. */
  concurrency?: number;
  /**
   * The Kafka client package: `kafkajs`, or `confluent` for `@confluentinc/kafka-javascript`.
   * Flag `--kafka-client`; else `MAILROOM_KAFKA_CLIENT`; default kafkajs if installed, else confluent.
   */
  client?: 'kafkajs' | 'confluent';
}

/**
 * The `mailroom` command's configuration: what your app passes to `new EmailService()` in code,
 * so that `mailroom templates`, `render`, `send`, `preview` and `worker` see the same templates
 * and options as the app. Everything is optional; what is not set comes from the environment
 * (`configFromEnv()`: transport, sender, brand variables) as without a config file.
 *
 * Precedence: a command's flags, then this file, then the environment. `--templates DIR` adds to
 * `templates` and `templatesDir`; the same template name in two of them is an error naming both.
 *
 * Where mail goes: without `transport`, the environment decides, as without a config file. With
 * one, it is used, wrapped by the staging variables when they are set; `MAILROOM_TRANSPORT` must
 * then be unset or name the same transport (`sandbox` for `sandboxTransport()`). A transport that
 * only captures mail (sandbox, memory) is refused under `NODE_ENV=production` unless
 * `MAILROOM_TRANSPORT` names it, and `mailroom worker` needs `MAILROOM_TRANSPORT=sandbox` for it,
 * as without a config file: a config written for development never captures production mail.
 */
export interface MailroomConfig {
  /** Your templates, from `defineTemplate()`; one with a built-in's name replaces it. */
  templates?: readonly TemplateHandle[];
  /**
   * A folder of templates, one subfolder each (`html.eta`, `subject.eta`, optional `text.eta`,
   * `preheader.eta`, `style.css`, `template.json`), relative to this file's folder.
   */
  templatesDir?: string;
  /** Extra layouts by name (eta source); `default` replaces the built-in layout. */
  layouts?: Readonly<Record<string, string>>;
  /** Extra partials by name (eta source), used as `<%~ include('@name', { … }) %>`. */
  partials?: Readonly<Record<string, string>>;
  /** CSS inlined into every template, after the default layout's stylesheet. */
  css?: string;
  /** Logo, home page and colours of the built-in layout; each overrides its `MAILROOM_*` variable. */
  brand?: BrandOptions;
  /** The sender, e.g. `Acme <no-reply@acme.example>`. Default: SMTP_FROM_EMAIL or MAILGUN_FROM_ADDRESS. */
  from?: AddressInput;
  /** Reply-To for every email. Default: MAILROOM_REPLY_TO. */
  replyTo?: AddressInput;
  /** The language emails are written in (see `EmailServiceOptions.locale`). Default: MAILROOM_LOCALE, else `en`. */
  locale?: string;
  /** Your translations over mailroom's (see `EmailServiceOptions.messages`). */
  messages?: Translations;
  /** Your app's name in every email (see `EmailServiceOptions.appName`). Default: APP_NAME. */
  appName?: string;
  /** The largest message accepted, in bytes. Default 25 000 000. */
  maxMessageBytes?: number;
  /** How failed sends are retried (`false`: once). Default: 3 attempts within 60 s. */
  retry?: RetryOptions | false;
  /**
   * Where mail goes, built in code (`smtpTransport({ … })`, `failoverTransport(…)` …). Default: the
   * one the environment chooses. See above for how it meets `MAILROOM_TRANSPORT`.
   */
  transport?: Transport;
  /** Options of `mailroom worker`. */
  worker?: MailroomWorkerConfig;
}

/**
 * Types the default export of `mailroom.config.ts` (returns it unchanged). The `mailroom` command
 * looks for `--config FILE`, else the first of `mailroom.config.ts`, `.mts`, `.cts`, `.js`, `.mjs`,
 * `.cjs` in the working directory; it may import your own modules.
 *
 * @example
 * ```ts
 * // mailroom.config.ts
 * import { defineConfig } from 'mailroom-js';
 * import { invoice } from './src/emails/invoice';
 *
 * export default defineConfig({
 *   templates: [invoice],
 *   templatesDir: './emails',
 *   brand: { colors: { primary: '#FF5A00' } },
 * });
 * ```
 */
export function defineConfig(config: MailroomConfig): MailroomConfig {
  return config;
}
