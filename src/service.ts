/**
 * EmailService: render -> validate -> send -> events. One service per app, built from a
 * transport, templates and defaults.
 */
import { randomUUID } from 'node:crypto';
import {
  type BatchOptions,
  type BatchResult,
  batchSettings,
  batchTally,
  inLanes,
  runBatch,
  sentOutcome,
} from './batch.js';
import { groupByContent } from './batch-groups.js';
import {
  ConfigError,
  type EmailError,
  isEmailError,
  isMailroomError,
  isMessageError,
  MessageError,
} from './errors.js';
import { DEFAULT_LOCALE, requireLocale } from './locale.js';
import { type Logger, logsAt, maskAddress, maskAddresses } from './log.js';
import {
  type Address,
  type AddressInput,
  allRecipients,
  composeMessage,
  configAddress,
  DEFAULT_MAX_MESSAGE_BYTES,
  type EmailCategory,
  type EmailMessage,
  type EmailMessageInput,
  formatAddress,
  unsafeText,
} from './message.js';
import { closeIfOwned } from './postgres.js';
import {
  type ChoosableCategory,
  isChoosable,
  type PreferenceStore,
  preferenceVerdict,
} from './preferences.js';
import type { EmailQueue, QueuedEmail, QueueReceipt } from './queue.js';
import { type RetryOptions, resolveRetry, withRecipientRetries, withRetries } from './retry.js';
import { ALREADY_DUE, checkSendAhead, dueTime, type QuietHours } from './send-at.js';
import type { SuppressionStore } from './suppression.js';
import { type AppInfo, type BrandOptions, resolveBrand } from './templates/brand.js';
import { BUILTIN_FIELDS, type BuiltinTemplates, checkBuiltinRules } from './templates/builtins.js';
import { checkData, type RenderContext, type RenderedEmail, readField } from './templates/compile.js';
import { categoryOf, type TemplateHandle } from './templates/define.js';
import { messageLayer, type Translations } from './templates/i18n.js';
import type { DataFor, MailroomTemplates, TemplateRef } from './templates/names.js';
import { TemplateRegistry } from './templates/registry.js';
import type { SendResult, SuppressedRecipient, Transport } from './transport.js';
import { isHoldTransport } from './transports/hold.js';
import {
  checkNoFooterLinks,
  type FooterFragment,
  LINK_PLACEHOLDER,
  markRenderedAsSent,
  renderedAsSent,
  type UnsubscribeLinks,
} from './unsubscribe/footer.js';
import {
  checkUnsubscribable,
  type ResolvedUnsubscribe,
  resolveUnsubscribe,
  type UnsubscribeOptions,
  withUnsubscribe,
} from './unsubscribe/headers.js';

/** Options for `new EmailService()`. `configFromEnv()` returns these. */
export interface EmailServiceOptions {
  /** Where mail goes: `memoryTransport()`, `sandboxTransport()` … */
  transport: Transport;
  /** The default sender, e.g. `Acme <no-reply@acme.example>`. Without a name, it is named after the app. */
  from: AddressInput;
  /**
   * Your app's name, shown in the built-in emails' subject, header and footer and used as the
   * sender's display name when `from` has none. Default: the sender's name. Required when neither
   * is set and the transport delivers: only a capturing transport (memory, sandbox) falls back to
   * "Mailroom". At most 256 characters, no control characters or line breaks.
   */
  appName?: string;
  /** Default Reply-To for every email. The welcome email says "just reply" only when there is one. */
  replyTo?: AddressInput;
  /**
   * The largest message accepted, in bytes, as providers count it (attachments base64-encoded;
   * see `messageSize`). Checked for every send, direct or queued, before anything goes out.
   * Default 25 000 000: Mailgun and Gmail accept 25 MB per message. A queue's record limit
   * (`maxEnvelopeBytes`) applies on top.
   */
  maxMessageBytes?: number;
  /**
   * Logo, colours (light and dark), company name, postal address and support link of the built-in
   * layout. Checked here: a bad value is a `ConfigError` naming it (`brand.colors.primary`).
   */
  brand?: BrandOptions;
  /** Your templates (from `defineTemplate`); one with a built-in's name replaces it. */
  templates?: readonly TemplateHandle[];
  /** Extra layouts by name; `default` replaces the built-in layout. */
  layouts?: Readonly<Record<string, string>>;
  /** Extra partials by name, used as `<%~ include('@name', { … }) %>`. */
  partials?: Readonly<Record<string, string>>;
  /** CSS inlined into every template, after the default layout's stylesheet. */
  css?: string;
  /**
   * The language emails are written in when a send names none: a BCP 47 tag (`de`, `pt-BR`, `ar`),
   * canonicalised with `Intl.getCanonicalLocales`; anything else is a `ConfigError` naming `locale`.
   * Built-ins ship in `en`, `de`, `fr`, `es`, `pt-BR` and `ar`; a word missing in a locale is
   * looked up along `pt-BR` → `pt` → `en`. Env: `MAILROOM_LOCALE`. Default `en`.
   */
  locale?: string;
  /**
   * Your translations, over mailroom's own: catalogs by locale, ICU MessageFormat strings by key,
   * nested objects read as dotted keys. Override one of ours by its key (`verification.heading`,
   * `layout.questions`: see `templates/locales/en.json`), or add a language. A tag that is not
   * BCP 47 or a message that is not ICU is a `ConfigError` naming it (`messages.de.verification.heading`).
   *
   * @example
   * ```ts
   * new EmailService({ transport, from, messages: { de: { verification: { heading: 'Bitte bestätigen Sie Ihre E-Mail-Adresse' } } } });
   * ```
   */
  messages?: Translations;
  /**
   * The clock templates read: `it.app.year`, the footer's year. Default: the system clock (looked
   * up at most once a minute). Pin it in snapshot tests, so that they do not break on 1 January:
   * `now: () => new Date('2030-06-01T00:00:00Z')`. A function returning a valid `Date`; anything
   * else is a {@link ConfigError} naming `now`.
   */
  now?: () => Date;
  /** Where log lines go (pino-shaped). Default: no logging. */
  logger?: Logger;
  /**
   * How failed sends are retried: transient and ambiguous failures only, with exponential backoff
   * and full jitter, honouring Retry-After. `false` sends once. Default: 3 attempts within 60 s.
   */
  retry?: RetryOptions | false;
  /**
   * Queued delivery: publish every email to this queue (e.g. `createEmailProducer()` from
   * `mailroom-js/kafka`) instead of sending it; a worker renders and sends. Input is validated
   * here first, so a bad address or template field still throws at the call site.
   */
  queue?: EmailQueue;
  /**
   * The suppression list (e.g. `memorySuppressionStore()`, fed by `suppressFromEvents()` from a
   * webhook): every recipient of every send whose `category` is not `security` is looked up
   * first, and a suppressed one is not sent to. The result lists them in `suppressed` and a
   * `suppressed` event fires; when no `to` recipient remains nothing is sent, which is not an
   * error. A store that fails to answer fails the send. With a `queue`, the worker's service
   * checks, when it sends. Default: none.
   */
  suppressions?: SuppressionStore;
  /**
   * Recipients' notification preferences (e.g. `memoryPreferenceStore()`): before every
   * `product` send (on unless the recipient turned it off) and `marketing` send (off until they
   * opted in), each recipient's choice is looked up, and one who does not want it is left out
   * exactly as a suppressed one is (`result.suppressed` with the reason `opted-out` or
   * `not-opted-in`, the `suppressed` event; nothing sent when no `to` recipient remains).
   * `security` and `transactional` mail never asks. A store that fails to answer fails the send.
   * With a `queue`, the worker's service checks, when it sends. Default: none.
   */
  preferences?: PreferenceStore;
  /**
   * One-click unsubscribe (RFC 8058): every `product` and `marketing` email gets
   * `List-Unsubscribe: <url?token=…>` (and `<mailto:…?subject=unsubscribe>` with `mailto`) and
   * `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, the token signed for its one recipient
   * and category; mount `createUnsubscribeHandler()` from `mailroom-js/unsubscribe` at `url`.
   * The headers are added after the suppression and preference screen, just before the
   * transport, so the memory outbox shows what a provider gets; with a `queue`, the worker's
   * service adds them. `security` and `transactional` mail never carries them.
   *
   * The same URL is the footer's "Unsubscribe" link (a GET shows the handler's confirmation page;
   * only the POST unsubscribes, so a mail scanner following links changes nothing), next to
   * "Manage notification settings" with `manageUrl`. Templates see both as `it.unsubscribe`
   * (`{ url, manageUrl? }`, undefined on other mail); the built-in layout shows them through the
   * `@unsubscribe` partial. `render()` prints a placeholder for `it.unsubscribe.url`, which the
   * send replaces with the recipient's link, HTML-escaped in the HTML; an HTML or text part that
   * does not show it (your own HTML, a template's own text part) gets the partial added at its
   * end. A `security`/`transactional` email that carries the placeholder, or any email that does
   * when the service has no `unsubscribe` option, is a `MessageError` naming `html` or `text`.
   *
   * With it set, a `MessageError` refuses, before anything is sent: a `product`/`marketing`
   * email with more than one recipient across to, cc and bcc (naming `to`: send one email per
   * recipient), and a caller's own `List-Unsubscribe` or `List-Unsubscribe-Post` header on any
   * email (naming the header: ours replaces none, and other mail must not offer one). A bad
   * option is a `ConfigError` naming it (`unsubscribe.url`, `unsubscribe.secrets[1]`), and so is
   * `unsubscribe` without `preferences` on a service that sends (naming `preferences`: the
   * opt-outs the handler records would never be read). Default: none.
   */
  unsubscribe?: UnsubscribeOptions;
  /**
   * Quiet hours: asked, for `product` and `marketing` mail only, when each `to` recipient may next
   * get it (see {@link QuietHours}); an email it holds back gets that time as its `sendAt` (the
   * later of the two wins). A direct send then needs a transport that schedules (Mailgun's
   * `o:deliverytime`), else it is refused with a `MessageError` naming `sendAt`; with a `queue`,
   * the worker's service asks when the record comes up and holds it on its delay topics.
   * `security` and `transactional` mail is never asked. A hook that throws, or returns anything
   * but a valid `Date` or undefined (a `MessageError` naming `quietHours`): a direct send rejects
   * with that error, nothing sent; the worker retries the record later and dead-letters it as
   * `max-attempts` when the hook keeps failing. Default: none.
   */
  quietHours?: QuietHours;
}

/** Options every send accepts besides the recipient: `from` and `replyTo` override the service's defaults. */
export interface SendOptions
  extends Pick<
    EmailMessageInput,
    | 'from'
    | 'cc'
    | 'bcc'
    | 'replyTo'
    | 'headers'
    | 'attachments'
    | 'icalEvent'
    | 'tags'
    | 'metadata'
    | 'idempotencyKey'
    | 'category'
    | 'sendAt'
    | 'locale'
  > {
  /** Aborts the send, including any wait between retries. */
  signal?: AbortSignal;
  /** Overrides the service's retry options for this send. */
  retry?: RetryOptions | false;
}

/** Options of `sendTemplate()`: recipients, the template's data, and the common send options. */
export interface SendTemplateOptions<Data extends object> extends SendOptions {
  to: AddressInput | readonly AddressInput[];
  data: Data;
}

/** Options of `sendVerificationEmail()`. */
export type VerificationEmailOptions = SendOptions & { to: AddressInput } & BuiltinTemplates['verification'];
/** Options of `sendPasswordResetEmail()`. */
export type PasswordResetEmailOptions = SendOptions & {
  to: AddressInput;
} & BuiltinTemplates['password-reset'];
/** Options of `sendWelcomeEmail()`. */
export type WelcomeEmailOptions = SendOptions & { to: AddressInput } & BuiltinTemplates['welcome'];
/** Options of `sendSecurityAlert()`. */
export type SecurityAlertOptions = SendOptions & { to: AddressInput } & BuiltinTemplates['security-alert'];
/** Options of `sendProductUpdate()`. */
export type ProductUpdateOptions = SendOptions & { to: AddressInput } & BuiltinTemplates['product-update'];
/** Options of `sendReminder()`. */
export type ReminderOptions = SendOptions & { to: AddressInput } & BuiltinTemplates['reminder'];
/** Options of `sendOrderConfirmation()`. */
export type OrderConfirmationOptions = SendOptions & {
  to: AddressInput;
} & BuiltinTemplates['order-confirmation'];
/** Options of `sendMaintenanceNotice()`. */
export type MaintenanceNoticeOptions = SendOptions & {
  to: AddressInput;
} & BuiltinTemplates['maintenance-notice'];

/** What `on('sent')` listeners receive. */
export interface SentEvent {
  readonly message: EmailMessage;
  readonly result: SendResult;
  /** Attempts it took, the first included. */
  readonly attempts: number;
  readonly durationMs: number;
}

/** What `on('retrying')` listeners receive: an attempt failed and another follows after `delayMs`. */
export interface RetryingEvent {
  readonly message: EmailMessage;
  readonly error: EmailError;
  /** The attempt that failed. */
  readonly attempt: number;
  readonly delayMs: number;
}

/** What `on('failed')` listeners receive. `message` is missing when the failure came before one existed. */
export interface FailedEvent {
  readonly message: EmailMessage | undefined;
  readonly template: string | undefined;
  readonly error: unknown;
  /** Attempts made, the first included (0 when it failed before sending). */
  readonly attempts: number;
  readonly durationMs: number;
}

/** What `on('queued')` listeners receive: the email was handed to the service's queue. */
export interface QueuedEvent {
  /** The validated message; without a template's subject and body, which the worker renders. */
  readonly message: EmailMessage;
  readonly receipt: QueueReceipt;
  readonly durationMs: number;
}

/**
 * What `on('suppressed')` listeners receive: recipients of a send were left out because the
 * suppression list has them. `sent` says whether the others were sent to.
 */
export interface SuppressedEvent {
  readonly message: EmailMessage;
  readonly suppressed: readonly SuppressedRecipient[];
  readonly sent: boolean;
}

/** Events an {@link EmailService} emits. */
export interface EmailServiceEvents {
  sent: SentEvent;
  suppressed: SuppressedEvent;
  queued: QueuedEvent;
  retrying: RetryingEvent;
  failed: FailedEvent;
}

type Listener<T> = (event: T) => void;

/** Marks every `EmailService`, whichever copy of the package (ESM or CJS build) made it. */
const SERVICE_BRAND = Symbol.for('mailroom.email-service');

/**
 * True when `value` is an {@link EmailService}, also one made by the other build of this package:
 * an app that loads `mailroom-js` both as ESM and as CJS (through a framework integration, a
 * bundler, a test runner) has two `EmailService` classes, and `instanceof` fails across them. The
 * check is a `Symbol.for('mailroom.email-service')` brand set by the constructor.
 *
 * @example
 * ```ts
 * import { isEmailService } from 'mailroom-js';
 *
 * if (!isEmailService(options.mail)) throw new TypeError('mail must be an EmailService');
 * ```
 */
export function isEmailService(value: unknown): value is EmailService {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SERVICE_BRAND] === true
  );
}

/**
 * Renders and sends email through one transport.
 *
 * @example
 * ```ts
 * import { EmailService, sandboxTransport } from 'mailroom-js';
 *
 * const mail = new EmailService({
 *   transport: sandboxTransport(),
 *   from: 'Acme <no-reply@acme.example>',
 *   brand: { colors: { primary: '#FF5A00' } },
 * });
 * await mail.sendVerificationEmail({
 *   to: 'jane@example.com',
 *   username: 'Jane',
 *   verificationUrl: 'https://acme.example/verify?token=…',
 * });
 * ```
 */
export class EmailService {
  /** The transport mail goes through. */
  readonly transport: Transport;
  /** The templates this service can send. */
  readonly templates: TemplateRegistry;
  /** What every template sees as `it.app`. */
  readonly app: AppInfo;
  readonly #from: Address;
  readonly #locale: string;
  readonly #replyTo: Address | undefined;
  readonly #maxMessageBytes: number;
  readonly #logger: Logger | undefined;
  readonly #retry: Required<RetryOptions>;
  readonly #queue: EmailQueue | undefined;
  readonly #suppressions: SuppressionStore | undefined;
  readonly #preferences: PreferenceStore | undefined;
  readonly #unsubscribe: ResolvedUnsubscribe | undefined;
  /** `it.unsubscribe` for product and marketing templates: the URL a placeholder the send fills in. */
  readonly #links: UnsubscribeLinks | undefined;
  /** The footer alone per locale, rendered once each, for mail whose own HTML or text lacks the links. */
  readonly #footers = new Map<string, FooterFragment>();
  readonly #quietHours: QuietHours | undefined;
  readonly #listeners: { [K in keyof EmailServiceEvents]: Set<Listener<EmailServiceEvents[K]>> } = {
    sent: new Set(),
    suppressed: new Set(),
    queued: new Set(),
    retrying: new Set(),
    failed: new Set(),
  };

  constructor(options: EmailServiceOptions) {
    if (typeof options !== 'object' || options === null)
      throw new TypeError('EmailService: options are required');
    const { transport } = options;
    if (!transport || typeof transport.send !== 'function' || typeof transport.name !== 'string') {
      throw new TypeError('EmailService: transport must be a Transport (e.g. memoryTransport())');
    }
    const sender = serviceAddress(options.from, 'from');
    const appName = checkAppName(options.appName) ?? sender.name ?? fallbackName(transport);
    const from = Object.freeze({ name: sender.name ?? appName, address: sender.address });
    this.transport = transport;
    this.#from = from;
    this.#replyTo = options.replyTo === undefined ? undefined : serviceAddress(options.replyTo, 'replyTo');
    this.#maxMessageBytes = checkMaxBytes(options.maxMessageBytes);
    const now = checkClock(options.now);
    this.#logger = options.logger;
    this.#retry = resolveRetry(options.retry);
    if (options.queue !== undefined && typeof options.queue?.enqueue !== 'function') {
      throw new TypeError('EmailService: queue must be an EmailQueue (e.g. createEmailProducer())');
    }
    this.#queue = options.queue;
    if (options.suppressions !== undefined && typeof options.suppressions?.isSuppressed !== 'function') {
      throw new TypeError(
        'EmailService: suppressions must be a SuppressionStore (e.g. memorySuppressionStore())',
      );
    }
    this.#suppressions = options.suppressions;
    if (options.preferences !== undefined && typeof options.preferences?.get !== 'function') {
      throw new TypeError(
        'EmailService: preferences must be a PreferenceStore (e.g. memoryPreferenceStore())',
      );
    }
    this.#preferences = options.preferences;
    this.#unsubscribe = resolveUnsubscribe(options.unsubscribe);
    // Links that record opt-outs nobody reads would keep mailing whoever used them.
    if (this.#unsubscribe && options.preferences === undefined && options.queue === undefined) {
      throw new ConfigError(
        'preferences',
        'is required with unsubscribe: the opt-outs the unsubscribe handler records must be read before each send (the same PreferenceStore; MAILROOM_PREFERENCES_URL from the environment)',
      );
    }
    const manageUrl = this.#unsubscribe?.manageUrl;
    this.#links = this.#unsubscribe
      ? Object.freeze(manageUrl ? { url: LINK_PLACEHOLDER, manageUrl } : { url: LINK_PLACEHOLDER })
      : undefined;
    if (options.quietHours !== undefined && typeof options.quietHours !== 'function') {
      throw new ConfigError(
        'quietHours',
        'must be a function (recipient, category, now) => Date | undefined',
      );
    }
    this.#quietHours = options.quietHours;
    this.app = Object.freeze({
      name: appName,
      ...resolveBrand(options.brand, appName),
      senderName: from.name,
      senderAddress: from.address,
      // Read at render time, so a long-running service rolls over at New Year (checked once a minute).
      get year() {
        return now ? pinnedYear(now) : currentYear();
      },
    });
    this.#locale = options.locale === undefined ? DEFAULT_LOCALE : configLocale(options.locale);
    this.templates = new TemplateRegistry({
      app: this.app,
      ...(options.messages === undefined
        ? {}
        : {
            messages: messageLayer(options.messages, 'messages', (field, problem) => {
              throw new ConfigError(field, problem);
            }),
          }),
      ...(options.templates ? { templates: options.templates } : {}),
      ...(options.layouts ? { layouts: options.layouts } : {}),
      ...(options.partials ? { partials: options.partials } : {}),
      ...(options.css ? { css: options.css } : {}),
    });
    Object.defineProperty(this, SERVICE_BRAND, { value: true });
    this.#announce();
  }

  /** The quiet-hours hook this service was given, if any (a queue worker asks it before sending). */
  get quietHours(): QuietHours | undefined {
    return this.#quietHours;
  }

  /** The queue this service publishes to instead of sending, if any. */
  get queue(): EmailQueue | undefined {
    return this.#queue;
  }

  /** Subscribes to `sent` or `failed`; returns a function that unsubscribes. */
  on<E extends keyof EmailServiceEvents>(event: E, listener: Listener<EmailServiceEvents[E]>): () => void {
    const set = this.#listeners[event] as Set<Listener<EmailServiceEvents[E]>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Validates and sends a message you composed yourself, retrying transient failures. Throws a
   * `MessageError` (nothing sent) for invalid input and an `EmailError` when delivery fails.
   * Every attempt carries the same Message-ID. Recipients the provider deferred (a 4xx reply to
   * `RCPT TO`) are retried on their own within the retry budget; those still deferred at the end are
   * in `result.deferred`, and when every recipient was deferred it throws an `EmailError` (`deferred`)
   * with each recipient's reply in `refusals`.
   */
  send(
    input: EmailMessageInput & { signal?: AbortSignal; retry?: RetryOptions | false },
  ): Promise<SendResult> {
    try {
      requireOptions(input, 'send', '{ to, subject, html or text }');
    } catch (error) {
      return Promise.reject(error);
    }
    const started = performance.now();
    let message: EmailMessage | undefined;
    // Failures before the transport was asked (those after it, #deliver reports).
    const failed = (error: unknown): never => {
      this.#failed(message, input.template, error, 0, performance.now() - started);
      throw error;
    };
    // Not an async function: this runs once per email (in a queue worker for every record), and an
    // async frame's registers are copied to the heap at each await. Every throw still rejects.
    try {
      const { signal, retry } = input;
      const queue = this.#queue;
      if (queue) {
        const fields = { ...input, idempotencyKey: input.idempotencyKey ?? randomUUID() };
        const queuing = this.#compose(fields);
        message = queuing;
        return this.#enqueue(queue, queuing, toQueued(queuing, fields, true), signal, started).catch(failed);
      }
      // The input is read, not copied.
      const own = this.#compose(input);
      const composed =
        (input as { [ALREADY_DUE]?: boolean })[ALREADY_DUE] === true ? own : this.#schedule(own);
      message = composed;
      const deliver = (screened: EmailMessage): Promise<SendResult> => {
        // Signed for the one recipient left after the screen; every retry carries the same bytes.
        const sending = this.#withUnsubscribe(screened);
        message = sending;
        return this.#deliver(sending, signal, retry, started);
      };
      const lookup = this.#lookup(composed.category);
      if (!lookup) return deliver(composed);
      return this.#screen(lookup, composed).then((screened) => {
        const { suppressed } = screened;
        if (suppressed.length === 0) return deliver(composed);
        this.#suppressed(composed, suppressed, screened.message !== undefined);
        if (!screened.message) return nothingSent(composed, this.transport.name, suppressed);
        message = screened.message;
        return deliver(screened.message).then((result) => ({ ...result, suppressed }));
      }, failed);
    } catch (error) {
      try {
        failed(error); // reports, then throws it again
      } catch {}
      return Promise.reject(error);
    }
  }

  /**
   * Sends many emails, each on its own: one template to a list of recipients, each with its own
   * data (and options), or a list of messages as {@link send} takes them. Each entry is validated,
   * screened (suppressions, preferences) and retried like a single send, with at most
   * `concurrency` in flight (default 10) and at most `perSecond` started per second; with a
   * `queue`, each is published instead. The result has one outcome per entry, in order: `sent`,
   * `suppressed`, `failed` (with the typed error) or `skipped` (aborted): one entry failing never
   * fails the batch. An unknown template or bad options reject at once, before anything is sent.
   *
   * When the transport has a batch API (`Transport.sendBatch`: Mailgun's recipient variables, up to
   * 1 000 recipients a request) and there is no `queue`, entries whose emails come out identical
   * but for their one `to` recipient share a request, after each was screened on its own; the
   * others go alone. The entries of a request share its Message-ID and provider id, and its
   * refusal fails each of them with the same error. `options.batching: false` turns this off.
   *
   * @example
   * ```ts
   * const { outcomes, sent, failed } = await mail.sendBatch('maintenance-notice', users.map((u) => ({
   *   to: u.email, data: { username: u.name, startsAt, endsAt, affected, statusUrl },
   * })), { concurrency: 20, perSecond: 50, onProgress: (p) => log(p.done, p.total) });
   * ```
   */
  sendBatch<T extends TemplateRef>(
    template: T,
    entries: ReadonlyArray<SendTemplateOptions<DataFor<T>>>,
    options?: BatchOptions,
  ): Promise<BatchResult>;
  sendBatch(
    messages: ReadonlyArray<EmailMessageInput & { retry?: RetryOptions | false }>,
    options?: BatchOptions,
  ): Promise<BatchResult>;
  async sendBatch(
    first: string | TemplateHandle | ReadonlyArray<EmailMessageInput>,
    second?: ReadonlyArray<SendTemplateOptions<object>> | BatchOptions,
    third?: BatchOptions,
  ): Promise<BatchResult> {
    if (Array.isArray(first)) {
      const settings = batchSettings(second as BatchOptions | undefined);
      if (this.#batches(settings)) return this.#sendBatched(first, undefined, settings);
      return runBatch(first as ReadonlyArray<EmailMessageInput>, (message) => this.send(message), settings);
    }
    const template = first as string | TemplateHandle;
    this.templates.get(template); // an unknown template: a TemplateError now, not one per entry
    if (!Array.isArray(second))
      throw new TypeError('sendBatch(template, entries): entries must be an array of { to, data }');
    const settings = batchSettings(third);
    if (this.#batches(settings)) return this.#sendBatched(second, template, settings);
    return runBatch(
      second as ReadonlyArray<SendTemplateOptions<object>>,
      (entry) => this.sendTemplate(template as TemplateRef, entry as SendTemplateOptions<never>),
      settings,
    );
  }

  /**
   * Renders a template for a recipient and sends it. The data type-checks against the template: a
   * handle's fields, or a name's declared in {@link MailroomTemplates} (the built-ins are there).
   *
   * @example
   * ```ts
   * await mail.sendTemplate(invoice, { to: 'jane@example.com', data: { number: 'A-1', payUrl } });
   * await mail.sendTemplate('verification', { to, data: { username, verificationUrl } });
   * ```
   */
  sendTemplate<T extends TemplateRef>(
    template: T,
    options: SendTemplateOptions<DataFor<T>>,
  ): Promise<SendResult>;
  async sendTemplate(
    template: string | TemplateHandle,
    options: SendTemplateOptions<object>,
  ): Promise<SendResult> {
    requireOptions(options, 'sendTemplate', '{ to, data }');
    const { data, ...rest } = options;
    const started = performance.now();
    let rendered: RenderedEmail;
    let category: EmailCategory;
    let locale: string;
    let checked: Record<string, unknown>;
    const name = typeof template === 'string' ? template : template.name;
    const queue = this.#queue;
    let message: EmailMessage | undefined;
    try {
      const handle = this.templates.get(template);
      category = categoryOf(handle, rest.category);
      // The data as the template reads it (a getter's value too): what is queued, rendered and
      // scanned for the unsubscribe placeholder.
      checked = checkData(handle.name, handle.fields, data);
      if (queue) {
        const { signal, retry: _retry, ...fields } = rest;
        const idempotencyKey = fields.idempotencyKey ?? randomUUID();
        // Checks every address, header and attachment as the worker will; the body comes later.
        // The worker renders in the send's locale, else its own default: ours is written only when set.
        const locale = fields.locale ?? (this.#locale === DEFAULT_LOCALE ? undefined : this.#locale);
        message = this.#compose({
          ...fields,
          idempotencyKey,
          subject: name,
          text: '-',
          template: name,
          category,
          ...(locale === undefined ? {} : { locale }),
        });
        const queued = { ...toQueued(message, fields, false, handle.category), data: checked };
        return await this.#enqueue(queue, message, queued, signal, started);
      }
      locale = this.#localeOf(rest.locale);
      rendered = this.templates.render(
        template,
        checked,
        this.#renderContext(category, rest.replyTo, locale),
      );
    } catch (error) {
      this.#failed(message, name, error, 0, performance.now() - started);
      throw error;
    }
    const input = { ...rest, ...rendered, template: name, category, locale };
    markRenderedAsSent(input, checked);
    return this.send(input);
  }

  /**
   * Renders subject, HTML and text without sending. The data type-checks as for {@link sendTemplate}.
   * `replyTo` is the Reply-To the email will carry when it is not the service's (the welcome email
   * says "just reply" only when there is one). `category` is the one it will be sent as (default:
   * the template's; a `security` template cannot change it, a `MessageError`): `product` and
   * `marketing` mail renders with the footer's unsubscribe links when the service has the
   * `unsubscribe` option, the Unsubscribe URL a placeholder that {@link send} replaces with the
   * recipient's signed link (see `EmailServiceOptions.unsubscribe`).
   * `locale` is the language to write it in (BCP 47, default the service's `locale`); a malformed
   * tag is a `MessageError` naming `locale`.
   */
  render<T extends TemplateRef>(
    template: T,
    data: DataFor<T>,
    options?: Pick<SendOptions, 'replyTo' | 'category' | 'locale'>,
  ): RenderedEmail;
  render(
    template: string | TemplateHandle,
    data: object,
    options?: Pick<SendOptions, 'replyTo' | 'category' | 'locale'>,
  ): RenderedEmail {
    const category = categoryOf(this.templates.get(template), options?.category);
    return this.templates.render(
      template,
      data,
      this.#renderContext(category, options?.replyTo, this.#localeOf(options?.locale)),
    );
  }

  /** The language a send is written in: its own `locale` (checked, canonical), else the service's. */
  #localeOf(given: string | undefined): string {
    return given === undefined
      ? this.#locale
      : requireLocale(given, (problem) => new MessageError('locale', problem));
  }

  /** The service's default language (canonical BCP 47, `en` unless configured). */
  get locale(): string {
    return this.#locale;
  }

  /**
   * Sends the built-in `verification` email: a button and a plain link to `verificationUrl`, and,
   * with `expiresInMinutes` (optional, 1 to 10 080), when the link expires.
   *
   * @example
   * ```ts
   * await mail.sendVerificationEmail({ to: user.email, username: user.name, verificationUrl, expiresInMinutes: 1440 });
   * ```
   */
  sendVerificationEmail(options: VerificationEmailOptions): Promise<SendResult> {
    requireOptions(options, 'sendVerificationEmail', '{ to, username, verificationUrl }');
    return this.#sendBuiltin('verification', options);
  }

  /**
   * Sends the built-in `password-reset` email: a button and a plain link to `resetUrl`, and when it expires.
   *
   * @example
   * ```ts
   * await mail.sendPasswordResetEmail({ to: user.email, username: user.name, resetUrl, expiresInMinutes: 30 });
   * ```
   */
  sendPasswordResetEmail(options: PasswordResetEmailOptions): Promise<SendResult> {
    requireOptions(options, 'sendPasswordResetEmail', '{ to, username, resetUrl, expiresInMinutes }');
    return this.#sendBuiltin('password-reset', options);
  }

  /**
   * Sends the built-in `welcome` email, with a "Get started" button when `actionUrl` is given.
   *
   * @example
   * ```ts
   * await mail.sendWelcomeEmail({ to: user.email, username: user.name, actionUrl: 'https://acme.example/start' });
   * ```
   */
  sendWelcomeEmail(options: WelcomeEmailOptions): Promise<SendResult> {
    requireOptions(options, 'sendWelcomeEmail', '{ to, username }');
    return this.#sendBuiltin('welcome', options);
  }

  /**
   * Sends the built-in `security-alert` email (category `security`: never held back by a preference
   * or the suppression list, and never sent as another category). `event` says what happened:
   * `'sign-in'` (a new sign-in) or `'password-changed'`. It shows when (`occurredAt`, a `Date` or an
   * ISO 8601 string with an offset, in the reader's IANA `timeZone`, default UTC), the `device`, the
   * approximate `location` if given, "if this was you, there is nothing you need to do", and a
   * danger-toned "This wasn't me" button to `secureAccountUrl`. A bad field is a `TemplateError`
   * naming it.
   *
   * @example
   * ```ts
   * await mail.sendSecurityAlert({
   *   to: user.email, username: user.name, event: 'sign-in', occurredAt: new Date(),
   *   timeZone: user.timeZone, device: 'Firefox on Windows', location: 'Berlin, Germany',
   *   secureAccountUrl: 'https://acme.example/account/security',
   * });
   * ```
   */
  sendSecurityAlert(options: SecurityAlertOptions): Promise<SendResult> {
    requireOptions(
      options,
      'sendSecurityAlert',
      '{ to, username, event, occurredAt, device, secureAccountUrl }',
    );
    return this.#sendBuiltin('security-alert', options);
  }

  /**
   * Sends the built-in `product-update` email (category `product`: a user can turn it off): a
   * feature announcement with a `headline` (also the subject), a `summary` (also the preheader) and
   * a button to `actionUrl` labelled `actionLabel` (default "See what's new").
   * A bad field is a `TemplateError` naming it. Being `product` mail, a recipient who turned it
   * off is left out (`result.suppressed`, reason `opted-out`; nothing sent when none is left), and
   * with the service's `unsubscribe` set it carries `List-Unsubscribe` and goes to one recipient
   * only (more across to, cc and bcc is a `MessageError` naming `to`).
   *
   * @example
   * ```ts
   * await mail.sendProductUpdate({
   *   to: user.email, username: user.name, headline: 'Shared workspaces are here',
   *   summary: 'Invite your team to a shared workspace.', actionUrl: 'https://acme.example/new',
   * });
   * ```
   */
  sendProductUpdate(options: ProductUpdateOptions): Promise<SendResult> {
    requireOptions(options, 'sendProductUpdate', '{ to, headline, summary, actionUrl }');
    return this.#sendBuiltin('product-update', options);
  }

  /**
   * Sends the built-in `reminder` email (category `product`): the `task` left to do ("Finish setting
   * up your profile", also the headline and, after "Reminder:", the subject), optionally what is
   * `remaining` as rows `{ label, value }` (1 to 50), and a button to `actionUrl` labelled
   * `actionLabel` (default "Continue").
   * A bad field is a `TemplateError` naming it. Being `product` mail, a recipient who turned it
   * off is left out (`result.suppressed`, reason `opted-out`; nothing sent when none is left), and
   * with the service's `unsubscribe` set it carries `List-Unsubscribe` and goes to one recipient
   * only (more across to, cc and bcc is a `MessageError` naming `to`).
   *
   * @example
   * ```ts
   * await mail.sendReminder({
   *   to: user.email, username: user.name, task: 'Finish setting up your profile',
   *   remaining: [{ label: 'Profile photo', value: 'Not added yet' }],
   *   actionUrl: 'https://acme.example/settings/profile',
   * });
   * ```
   */
  sendReminder(options: ReminderOptions): Promise<SendResult> {
    requireOptions(options, 'sendReminder', '{ to, username, task, actionUrl }');
    return this.#sendBuiltin('reminder', options);
  }

  /**
   * Sends the built-in `order-confirmation` email (category `transactional`): the `reference`
   * number, a details table of `items` (rows `{ label, value }`, 1 to 50, values as you format
   * them: `'$89.00'`) with the `total` under `totalLabel` (default "Total"), and a "View your
   * order" button to `orderUrl`. A bad field is a `TemplateError` naming it, a bad row by its place
   * (`items[2].value`).
   *
   * @example
   * ```ts
   * await mail.sendOrderConfirmation({
   *   to: user.email, username: user.name, reference: 'A-1042',
   *   items: [{ label: 'Walnut desk lamp', value: '$89.00' }], total: '$89.00',
   *   orderUrl: 'https://acme.example/orders/A-1042',
   * });
   * ```
   */
  sendOrderConfirmation(options: OrderConfirmationOptions): Promise<SendResult> {
    requireOptions(options, 'sendOrderConfirmation', '{ to, username, reference, items, total, orderUrl }');
    return this.#sendBuiltin('order-confirmation', options);
  }

  /**
   * Sends the built-in `maintenance-notice` email (category `product`): the window from `startsAt`
   * to `endsAt` (each a `Date` or an ISO 8601 string with an offset) in the reader's IANA
   * `timeZone` (default UTC), what is `affected` (a sentence, in a warning panel), and a
   * warning-toned "View status page" button to `statusUrl`. An `endsAt` that is not after
   * `startsAt` is a `TemplateError` naming `endsAt` (here and on every other path: `sendTemplate`,
   * `sendBatch`, the Kafka producer); any other bad field one naming it. As `product` mail it
   * follows the recipient's preference and the `unsubscribe` rules of {@link sendProductUpdate}.
   *
   * @example
   * ```ts
   * await mail.sendMaintenanceNotice({
   *   to: user.email, username: user.name, timeZone: user.timeZone,
   *   startsAt: '2026-12-08T02:00:00Z', endsAt: '2026-12-08T04:00:00Z',
   *   affected: 'Sign-in may be unavailable for up to two hours.', statusUrl: 'https://status.acme.example',
   * });
   * ```
   */
  sendMaintenanceNotice(options: MaintenanceNoticeOptions): Promise<SendResult> {
    requireOptions(options, 'sendMaintenanceNotice', '{ to, startsAt, endsAt, affected, statusUrl }');
    // Thrown here, before anything is rendered; the same rule guards every other path (checkData).
    const read = (field: string) => readField('maintenance-notice', options, field);
    checkBuiltinRules('maintenance-notice', { startsAt: read('startsAt'), endsAt: read('endsAt') });
    return this.#sendBuiltin('maintenance-notice', options);
  }

  /** Sends a built-in by name: its fields are the template's data, everything else the send's options. */
  #sendBuiltin<T extends keyof typeof BUILTIN_FIELDS>(
    name: T,
    options: SendOptions & { to: AddressInput } & BuiltinTemplates[T],
  ): Promise<SendResult> {
    const rest: Record<string, unknown> = {};
    // Keys, not entries: a field is not read here (its getter runs in the check below).
    for (const key of Object.keys(options)) {
      if (!Object.hasOwn(BUILTIN_FIELDS[name], key)) rest[key] = (options as Record<string, unknown>)[key];
    }
    // The data is the options seen through an object of its own: the template's check reads each
    // field from them as `options[field]` (a getter too, inside the send, so a failure is reported
    // as any bad field is), and their other keys (to, subject…), inherited, are not taken for data.
    const data: Record<string, unknown> = Object.create(options);
    return this.sendTemplate(name as string, { ...(rest as unknown as SendTemplateOptions<object>), data });
  }

  /**
   * Sends a message that is composed, screened and carries its headers, retrying as the service
   * does, and reports it (`sent`, `retrying`, `failed`). Rejects with the reported error.
   */
  #deliver(
    sending: EmailMessage,
    signal: AbortSignal | undefined,
    retry: RetryOptions | false | undefined,
    started: number,
  ): Promise<SendResult> {
    let attempts = 0;
    const failed = (error: unknown): never => {
      // A queue worker decides by attempts across redeliveries, so the error says how many were made.
      if (isEmailError(error) && attempts > 0)
        (error as { attempts: number | undefined }).attempts = attempts;
      this.#failed(sending, sending.template, error, attempts, performance.now() - started);
      throw error;
    };
    // A retry may go to fewer recipients (those deferred), never to one who accepted.
    // Objects built whole rather than spread: a spread after the first field copies at run time.
    const onRetry = (error: EmailError, attempt: number, delayMs: number) =>
      this.#retrying(sending, error, attempt, delayMs);
    return withRecipientRetries(
      sending,
      (current, attempt) => {
        attempts = attempt;
        return this.transport.send(current, signal ? { attempt, signal } : { attempt });
      },
      retry === undefined ? this.#retry : resolveRetry(retry),
      signal
        ? { transport: this.transport.name, signal, onRetry }
        : { transport: this.transport.name, onRetry },
      this.transport.narrowsRecipients === true,
    ).then((result) => {
      try {
        this.#sent(sending, result, attempts, started);
      } catch (error) {
        failed(error);
      }
      return result;
    }, failed);
  }

  /** Whether `sendBatch` with these options hands shared emails to the transport's batch API. */
  #batches(settings: BatchOptions): boolean {
    const { transport } = this;
    return (
      settings.batching !== false &&
      this.#queue === undefined &&
      typeof transport.sendBatch === 'function' &&
      Number.isInteger(transport.batchLimit) &&
      (transport.batchLimit ?? 0) > 1
    );
  }

  /**
   * `sendBatch` through a transport's batch API: every entry is prepared as a single send would be
   * (rendered, composed, screened, headers added), then entries identical but for the recipient
   * share requests of up to `batchLimit` and the others go alone. Outcomes and events stay per entry.
   */
  async #sendBatched(
    entries: readonly object[],
    template: string | TemplateHandle | undefined,
    settings: ReturnType<typeof batchSettings>,
  ): Promise<BatchResult> {
    const tally = batchTally(entries.length, settings.onProgress);
    const ready: ReadyEntry[] = [];
    const { concurrency, signal } = settings;
    // No rate here: preparing asks only our own stores; `perSecond` is the provider's and paces requests.
    await inLanes(
      entries.map((entry, index) => ({ entry, index })),
      signal ? { concurrency, signal } : { concurrency },
      async ({ entry, index }) => {
        try {
          const prepared = await this.#prepare(entry as BatchEntry, template);
          if ('messageId' in prepared) tally.decided(sentOutcome(index, prepared));
          else ready.push({ ...prepared, index });
        } catch (error) {
          tally.decided({ index, status: 'failed', error });
        }
      },
      ({ index }) => tally.decided({ index, status: 'skipped' }),
    );
    ready.sort((a, b) => a.index - b.index); // lanes finish out of order; requests follow the entries
    const requests = groupByContent(
      ready,
      this.transport.batchLimit ?? 1,
      (entry) => entry.signal === undefined && entry.retry === undefined,
    );
    await inLanes(
      requests,
      settings,
      async (request) => {
        if (request.length > 1) return this.#deliverShared(request, tally);
        const one = request[0]!;
        try {
          const result = await this.#deliver(one.message, one.signal, one.retry, one.started);
          tally.decided(
            sentOutcome(
              one.index,
              one.suppressed.length ? { ...result, suppressed: one.suppressed } : result,
            ),
          );
        } catch (error) {
          tally.decided({ index: one.index, status: 'failed', error });
        }
      },
      (request) => {
        for (const { index } of request) tally.decided({ index, status: 'skipped' });
      },
    );
    return tally.result();
  }

  /**
   * One batch entry as `send` or `sendTemplate` would make it, up to the transport: rendered,
   * composed, screened, with its unsubscribe headers. A `SendResult` when nobody is left to send to;
   * rejects (reported as `failed`) on bad input or a store that fails.
   */
  async #prepare(
    entry: BatchEntry,
    template: string | TemplateHandle | undefined,
  ): Promise<Omit<ReadyEntry, 'index'> | SendResult> {
    const started = performance.now();
    let message: EmailMessage | undefined;
    const name =
      template === undefined ? entry?.template : typeof template === 'string' ? template : template.name;
    try {
      let fields = entry as EmailMessageInput;
      if (template === undefined) requireOptions(entry, 'send', '{ to, subject, html or text }');
      else {
        requireOptions(entry, 'sendTemplate', '{ to, data }');
        const { data, ...rest } = entry as SendTemplateOptions<object>;
        const category = categoryOf(this.templates.get(template), rest.category);
        const locale = this.#localeOf(rest.locale);
        const rendered = this.templates.render(
          template as TemplateRef,
          data as never,
          this.#renderContext(category, rest.replyTo, locale),
        );
        fields = { ...rest, ...rendered, template: name, category, locale };
      }
      // Scheduled as a single send is: quiet hours asked, a transport that cannot hold it refuses.
      message = this.#schedule(this.#compose(fields));
      let suppressed: readonly SuppressedRecipient[] = [];
      const lookup = this.#lookup(message.category);
      if (lookup) {
        const screened = await this.#screen(lookup, message);
        suppressed = screened.suppressed;
        if (suppressed.length) {
          this.#suppressed(message, suppressed, screened.message !== undefined);
          if (!screened.message) return nothingSent(message, this.transport.name, suppressed);
          message = screened.message;
        }
      }
      const sending = this.#withUnsubscribe(message);
      return { message: sending, suppressed, started, signal: entry.signal, retry: entry.retry };
    } catch (error) {
      this.#failed(message, name, error, 0, performance.now() - started);
      throw error;
    }
  }

  /**
   * Entries identical but for their one recipient, in one `transport.sendBatch` request retried as
   * a whole: each is `sent` with the request's result narrowed to its recipient, or each `failed`
   * with the request's error. Every copy carries the first entry's Message-ID (one request, one id).
   */
  async #deliverShared(request: readonly ReadyEntry[], tally: ReturnType<typeof batchTally>): Promise<void> {
    const { transport } = this;
    const first = request[0]!.message;
    const shared: EmailMessage = Object.freeze({
      ...first,
      to: Object.freeze(request.map((entry) => entry.message.to[0]!)),
    });
    let attempts = 0;
    try {
      const result = await withRetries(
        (attempt) => {
          attempts = attempt;
          return transport.sendBatch!(shared, { attempt });
        },
        this.#retry,
        {
          transport: transport.name,
          onRetry: (error, attempt, delayMs) => this.#retrying(shared, error, attempt, delayMs),
        },
      );
      for (const entry of request) {
        const own: SendResult = {
          ...result,
          accepted: allRecipients(entry.message),
          rejected: [],
          attempts,
          ...(entry.suppressed.length ? { suppressed: entry.suppressed } : {}),
        };
        this.#sent({ ...entry.message, messageId: shared.messageId }, own, attempts, entry.started);
        tally.decided({ index: entry.index, status: 'sent', result: own });
      }
    } catch (error) {
      if (isEmailError(error) && attempts > 0)
        (error as { attempts: number | undefined }).attempts = attempts;
      for (const entry of request) {
        this.#failed(
          entry.message,
          entry.message.template,
          error,
          attempts,
          performance.now() - entry.started,
        );
        tally.decided({ index: entry.index, status: 'failed', error });
      }
    }
  }

  /** Checks that the transport can deliver. */
  async verify(): Promise<void> {
    await this.transport.verify?.();
  }

  /**
   * Closes the transport's connections, and the PostgreSQL pools `configFromEnv()` opened for
   * `MAILROOM_SUPPRESSIONS_URL` and `MAILROOM_PREFERENCES_URL`. A store you built and passed in is
   * yours to close: it is left open.
   */
  async close(): Promise<void> {
    try {
      await this.transport.close?.();
    } finally {
      await Promise.all([closeIfOwned(this.#suppressions), closeIfOwned(this.#preferences)]);
    }
  }

  /** The start-up log line: where this service's mail goes, stated once, so it is never a surprise. */
  #announce(): void {
    if (!this.#logger) return;
    const { transport } = this;
    const destination = transport.describe?.() ?? transport.name;
    const captures = transport.captures === true;
    const some = transport.capturesSome === true;
    const queue = this.#queue;
    this.#logger.info(
      {
        event: 'email.transport',
        transport: transport.name,
        destination,
        captures,
        ...(some ? { capturesSome: true } : {}),
        ...(queue ? { queue: queue.name } : {}),
        sender: this.#from.address,
      },
      queue
        ? `mailroom: emails are published to ${queue.name}, for a worker to send`
        : captures
          ? `mailroom: emails are captured, not delivered: ${destination}`
          : some
            ? `mailroom: emails are delivered through ${destination}, but some may be captured instead (a capturing transport is behind it)`
            : `mailroom: emails are delivered through ${destination}`,
    );
  }

  /** Validates a message with the service's default sender and Reply-To filled in. */
  #compose(fields: EmailMessageInput): EmailMessage {
    const message = composeMessage(fields, this.#from, this.#replyTo, this.#maxMessageBytes);
    const ours = renderedAsSent(fields);
    if (this.#unsubscribe) checkUnsubscribable(message, ours);
    else if (!ours) checkNoFooterLinks(message, true);
    return message;
  }

  /**
   * `message` with its one recipient's List-Unsubscribe and footer links when the service has the
   * `unsubscribe` option, in the language it is written in (its `locale`, else the service's).
   */
  #withUnsubscribe(message: EmailMessage): EmailMessage {
    const unsubscribe = this.#unsubscribe;
    return unsubscribe
      ? withUnsubscribe(message, unsubscribe, message.locale ?? this.#locale, this.#footer)
      : message;
  }

  /**
   * The `@unsubscribe` footer alone in `locale` (the message's, else the service's), for product and
   * marketing mail whose own HTML or text lacks the links. Rendered once per locale (at most 32 kept).
   */
  readonly #footer = (locale: string): FooterFragment => {
    let footer = this.#footers.get(locale);
    if (!footer) {
      if (this.#footers.size >= 32) this.#footers.clear();
      footer = this.templates.unsubscribeFooter(this.#links as UnsubscribeLinks, locale);
      this.#footers.set(locale, footer);
    }
    return footer;
  };

  /**
   * What a template sees besides its data, for an email of `category` with these options.
   * `locale`: canonical, as `#localeOf` gives it.
   */
  #renderContext(category: EmailCategory, replyTo: SendOptions['replyTo'], locale: string): RenderContext {
    const hasReplyTo = this.#hasReplyTo(replyTo);
    const messages = this.templates.messageLayers();
    return this.#links && isChoosable(category)
      ? { hasReplyTo, locale, messages, unsubscribe: this.#links }
      : { hasReplyTo, locale, messages };
  }

  /**
   * A direct send's delivery time: its own `sendAt`, moved later by quiet hours. Refused (a
   * `MessageError` naming `sendAt`, nothing sent) through a transport that cannot hold it, and
   * beyond the transport's `scheduling.maxAheadMs`: never sent early.
   */
  #schedule(message: EmailMessage): EmailMessage {
    const own = message.sendAt?.getTime();
    // Asked only when there is a hook: the common send reads one field here.
    const at =
      this.#quietHours === undefined
        ? own
        : dueTime(
            own,
            this.#quietHours,
            message.to.map((a) => a.address),
            message.category,
          );
    if (at === undefined) return message;
    const { name, scheduling } = this.transport;
    const why = at === own ? '' : ` (quiet hours hold it until ${new Date(at).toISOString()})`;
    if (!scheduling) {
      throw new MessageError(
        'sendAt',
        `the ${name} transport cannot hold an email until later${why}: publish it through Kafka (mailroom-js/kafka), whose worker holds it until then, or send through Mailgun (o:deliverytime)`,
      );
    }
    checkSendAhead(at, scheduling.maxAheadMs, `the ${name} transport`);
    return at === own ? message : Object.freeze({ ...message, sendAt: new Date(at) });
  }

  /** Whether an email with these options has a Reply-To: its own, else the service's. */
  #hasReplyTo(replyTo: SendOptions['replyTo']): boolean {
    if (replyTo === undefined) return this.#replyTo !== undefined;
    return Array.isArray(replyTo) ? replyTo.length > 0 : true;
  }

  async #enqueue(
    queue: EmailQueue,
    message: EmailMessage,
    email: QueuedEmail,
    signal: AbortSignal | undefined,
    started: number,
  ): Promise<SendResult> {
    const receipt = await queue.enqueue(email, signal ? { signal } : {});
    const durationMs = performance.now() - started;
    this.#logger?.info(
      {
        event: 'email.queued',
        template: message.template,
        messageId: message.messageId,
        queue: queue.name,
        id: receipt.id,
        to: allRecipients(message).map(maskAddress),
        durationMs: Math.round(durationMs),
      },
      'email queued',
    );
    const result: SendResult = {
      messageId: message.messageId,
      accepted: [],
      rejected: [],
      transport: queue.name,
      attempts: 0,
      queued: receipt,
    };
    this.#emit('queued', { message, receipt, durationMs });
    return result;
  }

  /**
   * How a recipient of `category` mail is looked up before sending: the suppression list unless
   * it is `security`, the recipient's preferences when it is `product` or `marketing`. Undefined
   * when nothing is asked.
   */
  #lookup(
    category: EmailCategory,
  ): ((address: string) => Promise<SuppressedRecipient['reason'] | undefined>) | undefined {
    const suppressions = category === 'security' ? undefined : this.#suppressions;
    const preferences = isChoosable(category) ? this.#preferences : undefined;
    if (!suppressions && !preferences) return undefined;
    if (!preferences) return (address) => suppressions!.isSuppressed(address).then((hit) => hit?.reason);
    const chosen = category as ChoosableCategory;
    return async (address) => {
      const [hit, choice] = await Promise.all([
        suppressions?.isSuppressed(address),
        preferences.get(address, chosen),
      ]);
      return hit?.reason ?? preferenceVerdict(chosen, choice);
    };
  }

  /**
   * The message without the recipients `lookup` leaves out (undefined when no `to` recipient
   * remains), and who was left out and why. Every address is looked up at once.
   */
  async #screen(
    lookup: (address: string) => Promise<SuppressedRecipient['reason'] | undefined>,
    message: EmailMessage,
  ): Promise<{ message: EmailMessage | undefined; suppressed: SuppressedRecipient[] }> {
    const lists = [message.to, message.cc, message.bcc];
    const found = await Promise.all(lists.map((list) => Promise.all(list.map((a) => lookup(a.address)))));
    const suppressed: SuppressedRecipient[] = [];
    const seen = new Set<string>();
    const [to, cc, bcc] = lists.map((list, i) =>
      Object.freeze(
        list.filter((address, j) => {
          const reason = found[i]![j];
          if (!reason) return true;
          const key = address.address.toLowerCase();
          if (!seen.has(key)) suppressed.push(Object.freeze({ address: key, reason }));
          seen.add(key);
          return false;
        }),
      ),
    ) as [readonly Address[], readonly Address[], readonly Address[]];
    if (suppressed.length === 0) return { message, suppressed };
    if (to.length === 0) return { message: undefined, suppressed };
    return { message: Object.freeze({ ...message, to, cc, bcc }), suppressed };
  }

  #suppressed(message: EmailMessage, suppressed: readonly SuppressedRecipient[], sent: boolean): void {
    this.#logger?.info(
      {
        event: 'email.suppressed',
        template: message.template,
        messageId: message.messageId,
        category: message.category,
        suppressed: suppressed.map((s) => ({ to: maskAddress(s.address), reason: s.reason })),
        sent,
      },
      sent ? 'suppressed recipients left out' : 'email suppressed: nothing sent',
    );
    this.#emit('suppressed', { message, suppressed, sent });
  }

  /** `started`: the send's `performance.now()`; the duration is read only for a log line or a listener. */
  #sent(message: EmailMessage, result: SendResult, attempts: number, started: number): void {
    // Once per email: nothing is built (nor the clock read) for a logger that drops info lines.
    const log = logsAt(this.#logger, 'info') ? this.#logger : undefined;
    const listening = this.#listeners.sent.size > 0;
    if (log === undefined && !listening) return;
    const durationMs = performance.now() - started;
    log?.info(
      {
        event: 'email.sent',
        template: message.template,
        messageId: result.messageId,
        transport: result.transport,
        to: allRecipients(message).map(maskAddress),
        rejected: result.rejected.length,
        deferred: result.deferred?.length ?? 0,
        attempts,
        ...(result.failovers?.length ? { failovers: result.failovers.map(describeError) } : {}),
        durationMs: Math.round(durationMs),
      },
      'email sent',
    );
    if (listening) this.#emit('sent', { message, result, attempts, durationMs });
  }

  #retrying(message: EmailMessage, error: EmailError, attempt: number, delayMs: number): void {
    this.#logger?.warn(
      {
        event: 'email.retrying',
        template: message.template,
        messageId: message.messageId,
        transport: error.transport,
        error: describeError(error),
        attempt,
        delayMs,
      },
      'email attempt failed, retrying',
    );
    this.#emit('retrying', { message, error, attempt, delayMs });
  }

  #failed(
    message: EmailMessage | undefined,
    template: string | undefined,
    error: unknown,
    attempts: number,
    durationMs: number,
  ): void {
    this.#logger?.error(
      {
        event: 'email.failed',
        template,
        messageId: message?.messageId,
        // The transport that failed (behind failover, the last one tried).
        transport: isEmailError(error) ? error.transport : this.transport.name,
        to: message ? allRecipients(message).map(maskAddress) : undefined,
        error: describeError(error),
        attempts,
        durationMs: Math.round(durationMs),
      },
      'email failed',
    );
    this.#emit('failed', { message, template, error, attempts, durationMs });
  }

  #emit<E extends keyof EmailServiceEvents>(event: E, payload: EmailServiceEvents[E]): void {
    for (const listener of this.#listeners[event] as Set<Listener<EmailServiceEvents[E]>>) {
      try {
        listener(payload);
      } catch (err) {
        // A broken listener must not turn a delivered email into a failed send.
        this.#logger?.warn(
          { event: 'email.listener_failed', error: maskAddresses(String((err as Error)?.message)) },
          'event listener threw',
        );
      }
    }
  }
}

/** A `sendBatch` entry: a message as `send` takes it, or a template's `{ to, data }`. */
type BatchEntry = EmailMessageInput & SendOptions & { data?: unknown };

/** A batch entry ready for the transport, and what its outcome needs. */
interface ReadyEntry {
  readonly index: number;
  readonly message: EmailMessage;
  readonly suppressed: readonly SuppressedRecipient[];
  /** `performance.now()` when it was taken up. */
  readonly started: number;
  /** The entry's own, which keep it out of a shared request (one signal or retry rule a request). */
  readonly signal: AbortSignal | undefined;
  readonly retry: RetryOptions | false | undefined;
}

/**
 * A validated message as a queue takes it: addresses formatted, attachments as given. The category
 * travels when it is not the template's (or, without one, `transactional`). The sender
 * and Reply-To travel only when the caller chose them; otherwise the worker's service decides, so
 * the sending side's configuration owns the sender domain.
 */
function toQueued(
  message: EmailMessage,
  given: Pick<EmailMessageInput, 'from' | 'replyTo'>,
  rendered: boolean,
  templateCategory: EmailCategory = 'transactional',
): QueuedEmail {
  const list = (addresses: readonly Address[]) => addresses.map(formatAddress);
  // A queue record has no field for it: refused rather than sent without the invitation.
  if (message.icalEvent) throw new MessageError('icalEvent', 'cannot be sent through a queue yet');
  return {
    // A template's subject and body are the worker's to render.
    ...(rendered ? { subject: message.subject } : {}),
    ...(rendered && message.html !== undefined ? { html: message.html } : {}),
    ...(rendered && message.text !== undefined ? { text: message.text } : {}),
    ...(given.from !== undefined ? { from: formatAddress(message.from) } : {}),
    to: list(message.to),
    ...(message.cc.length ? { cc: list(message.cc) } : {}),
    ...(message.bcc.length ? { bcc: list(message.bcc) } : {}),
    ...(given.replyTo !== undefined ? { replyTo: list(message.replyTo) } : {}),
    ...(Object.keys(message.headers).length ? { headers: message.headers } : {}),
    ...(message.attachments.length ? { attachments: message.attachments } : {}),
    ...(message.tags.length ? { tags: message.tags } : {}),
    ...(Object.keys(message.metadata).length ? { metadata: message.metadata } : {}),
    ...(message.template !== undefined ? { template: message.template } : {}),
    ...(message.idempotencyKey !== undefined ? { idempotencyKey: message.idempotencyKey } : {}),
    ...(message.sendAt !== undefined ? { sendAt: message.sendAt } : {}),
    // Written only when it is not what the worker would take anyway (the template's, or the default).
    ...(message.category !== templateCategory ? { category: message.category } : {}),
    ...(message.locale !== undefined ? { locale: message.locale } : {}),
  };
}

/** The result of a send whose every `to` recipient is suppressed: nothing went out. */
function nothingSent(
  message: EmailMessage,
  transport: string,
  suppressed: readonly SuppressedRecipient[],
): SendResult {
  return { messageId: message.messageId, accepted: [], rejected: [], transport, attempts: 0, suppressed };
}

/** An error as a log field: our errors' own (secret-free) messages and codes, only the name of others. */
function describeError(error: unknown): Record<string, unknown> {
  if (isEmailError(error)) {
    return {
      name: error.name,
      // Our messages may quote a refused address or a provider's reply naming one.
      message: maskAddresses(error.message),
      code: error.code,
      failure: error.failure,
      status: error.status,
      transport: error.transport,
      ...(error.endpoint ? { endpoint: error.endpoint } : {}),
      ...(error.causeCode ? { causeCode: error.causeCode } : {}),
      ...(error.refusals?.length ? { refusals: error.refusals.length } : {}),
    };
  }
  if (isMailroomError(error)) {
    return {
      name: error.name,
      message: maskAddresses(error.message),
      ...(isMessageError(error) ? { field: error.field } : {}),
      retryable: error.retryable,
    };
  }
  return { name: (error as Error)?.name ?? 'Error' };
}

/** Throws a TypeError naming the method when its options object is missing. */
function requireOptions(options: unknown, method: string, shape: string): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${method}: expected an options object ${shape}`);
  }
}

/** The service's sender or Reply-To: a missing or malformed one is a configuration mistake. */
function serviceAddress(input: AddressInput | undefined, option: 'from' | 'replyTo'): Address {
  if (input === undefined) {
    throw new ConfigError(option, 'a default sender is required, e.g. "Acme <no-reply@acme.example>"');
  }
  return configAddress(input, option);
}

/** `appName` reaches the subject and the sender's display name: the header rule applies. */
function checkAppName(appName: unknown): string | undefined {
  if (appName === undefined) return undefined;
  if (typeof appName !== 'string' || appName.trim() === '')
    throw new ConfigError('appName', 'must be a non-empty string');
  const unsafe = unsafeText(appName);
  if (unsafe) throw new ConfigError('appName', unsafe);
  if (appName.length > 256) throw new ConfigError('appName', 'longer than 256 characters');
  return appName.trim();
}

/**
 * "Mailroom" only where nobody reads it: a capturing transport. A real recipient would get
 * "Welcome to Mailroom" from a sender named Mailroom.
 */
function fallbackName(transport: Transport): string {
  // A hold captures now but delivers on release: its readers are real.
  if (transport.captures === true && !isHoldTransport(transport)) return 'Mailroom';
  throw new ConfigError(
    'appName',
    `required with the ${transport.name} transport when from has no display name: the built-in emails and the sender are named after it`,
  );
}

function checkMaxBytes(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_MESSAGE_BYTES;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    throw new ConfigError('maxMessageBytes', 'must be a positive whole number of bytes');
  return value;
}

function checkClock(value: unknown): (() => Date) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new ConfigError('now', 'must be a function returning a Date');
  pinnedYear(value as () => Date); // a clock that returns no date fails here, not at the first render
  return value as () => Date;
}

/** The year of a clock the app gave (`now`), checked each time: a pinned clock is a test's. */
function pinnedYear(now: () => Date): number {
  const date = now();
  if (!(date instanceof Date) || Number.isNaN(date.getTime()))
    throw new ConfigError('now', 'must be a function returning a valid Date');
  return date.getFullYear();
}

let year = { value: 0, until: 0 };
/** The service's `locale` option, checked: a `ConfigError` naming `locale`. */
function configLocale(value: unknown): string {
  return requireLocale(value, (problem) => new ConfigError('locale', problem));
}

/** The current year, looked up at most once a minute (every render shows it in the footer). */
function currentYear(): number {
  const now = Date.now();
  if (now >= year.until) year = { value: new Date(now).getFullYear(), until: now + 60_000 };
  return year.value;
}
