/**
 * Production delivery: Mailgun first, your own SMTP relay when Mailgun fails, configured from the
 * environment, with retries, logging, and an alert when the setup itself is broken (a revoked
 * key, an expired certificate) rather than the provider having a bad minute.
 *
 * `configFromEnv()` builds one transport, so an app that wants two reads the variables itself:
 *
 *   MAILGUN_API_KEY, MAILGUN_DOMAIN, MAILGUN_FROM_ADDRESS   required
 *   MAILGUN_BASE_URL                                        optional (a proxy; default the US region)
 *   SMTP_HOST, SMTP_USER, SMTP_PASSWORD                     required
 *   SMTP_PORT                                               optional (default 587, STARTTLS)
 *   SMTP_CA_FILE                                            optional: a PEM file, to trust a private relay's CA
 *   APP_NAME                                                optional (default: the sender's name)
 *
 * At start-up, before taking traffic:
 *
 *   const mail = createMailer(process.env, { onAlert: (error) => pager.trigger(error.message) });
 *   await mail.verify();
 *
 * `verify()` asks every transport that can check itself. Here that is the SMTP relay (it connects,
 * does STARTTLS and logs in); Mailgun has no check, so a wrong Mailgun key only shows at the first
 * send, where it is alerted on and the email goes out by SMTP. `verify()` rejects when the relay
 * is unreachable even though Mailgun may be fine: decide whether that should stop a deploy, or
 * only be logged. On shutdown, `await mail.close()` lets SMTP sends in flight finish.
 */
import { readFileSync } from 'node:fs';
import {
  ConfigError,
  type EmailError,
  EmailService,
  failoverTransport,
  isEmailError,
  type Logger,
  mailgunTransport,
  type SendResult,
  smtpTransport,
} from 'mailroom-js';

export interface MailerOptions {
  /**
   * Called when a delivery failure needs a person: bad credentials, an unknown domain or host, a
   * certificate that is not trusted, a suspended account. Not called for a provider's bad minute:
   * that is retried and failed over. Page someone from here.
   */
  onAlert?: (error: EmailError) => void;
  /** Where log lines go. Default: one JSON line per event on the console. */
  logger?: Logger;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The app's mail service: Mailgun, with SMTP taking over whenever Mailgun cannot deliver. */
export function createMailer(env: Env = process.env, options: MailerOptions = {}): EmailService {
  const logger = options.logger ?? consoleLogger;
  const onAlert =
    options.onAlert ??
    ((error: EmailError) =>
      logger.error({ alert: true, transport: error.transport, code: error.code }, error.message));

  const get = (name: string) => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const required = (name: string) => {
    const value = get(name);
    if (value === undefined) throw new ConfigError(name, 'is required');
    return value;
  };
  const port = get('SMTP_PORT');
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    throw new ConfigError('SMTP_PORT', 'must be a port number from 1 to 65535');
  }
  const caFile = get('SMTP_CA_FILE');
  const baseUrl = get('MAILGUN_BASE_URL');
  const appName = get('APP_NAME');

  const mailgun = mailgunTransport({
    apiKey: required('MAILGUN_API_KEY'),
    domain: required('MAILGUN_DOMAIN'),
    ...(baseUrl === undefined ? {} : { baseUrl }),
  });
  const smtp = smtpTransport({
    host: required('SMTP_HOST'),
    ...(port === undefined ? {} : { port: Number(port) }),
    user: required('SMTP_USER'),
    password: required('SMTP_PASSWORD'),
    // The certificate is still checked, against this CA as well as the system's.
    ...(caFile === undefined ? {} : { ca: readCa(caFile) }),
  });

  const mail = new EmailService({
    // The same sender whichever transport delivers: the relay must be allowed to send for the
    // domain too (SPF, DKIM), or the emails it takes over will land in spam.
    from: required('MAILGUN_FROM_ADDRESS'),
    ...(appName === undefined ? {} : { appName }),
    transport: failoverTransport([mailgun, smtp], {
      // Mailgun is skipped for this long after a systemic failure, so a revoked key costs one
      // request and one alert a minute, not one per email.
      cooldownMs: 60_000,
      onFailover(failed, error, next) {
        logger.warn(
          {
            event: 'email.failover',
            from: failed.name,
            to: next.name,
            code: error.code,
            failure: error.failure,
          },
          'transport failed, trying the next one',
        );
        // The email may still go out through the next transport, in which case the service
        // reports it as sent and no `failed` event ever shows this error: alert here.
        if (error.failure === 'systemic') onAlert(error);
      },
    }),
    // One attempt is one pass through the failover. When it fails retryably (Mailgun and SMTP both
    // failed transiently, or Mailgun's answer was lost after it had the message), the send is tried
    // again after a random wait of up to 0.5 s, then 1 s, then 2 s (never sooner than a Retry-After),
    // and given up after 4 attempts or 30 s. Sends are awaited in request handlers here; a queue
    // worker can afford a longer `maxElapsedMs`.
    retry: { maxAttempts: 4, maxElapsedMs: 30_000, baseDelayMs: 500, maxDelayMs: 10_000 },
    logger,
  });

  // The service already logs every retry (as a warning) and every failure (as an error), with the
  // template, Message-ID, masked recipients and the error's code: listeners are for acting on them.
  mail.on('retrying', ({ error, attempt, delayMs }) => {
    // Only transient and ambiguous failures are retried, never a systemic one, so there is nothing
    // to alert on here. An ambiguous failure may already have been delivered; the retry carries the
    // same Message-ID, so the receiving side can drop the duplicate.
    if (error.possibleDuplicate) {
      logger.info(
        { event: 'email.possible_duplicate', attempt, delayMs },
        'retrying a send that may have gone out',
      );
    }
  });
  mail.on('failed', ({ error }) => {
    // Both transports failed, and the last one (SMTP) systemically: nothing goes out until someone
    // fixes the setup. (A transient failure that ran out of attempts is the caller's to handle:
    // queue it, or answer 503.)
    if (isEmailError(error) && error.failure === 'systemic') onAlert(error);
  });

  return mail;
}

export interface SignupUser {
  id: string;
  email: string;
  name: string;
}

/** A verification link: its URL, and the id of the token in it (never the token itself). */
export interface VerificationLink {
  url: string;
  /** Names this link, e.g. the token's database id: a new link gets a new id. */
  id: string;
}

/**
 * Sends the address-verification email after sign-up, or again with a new link.
 *
 * The idempotency key makes the Message-ID a hash of `verify:<user id>:<link id>`: if this send is
 * repeated (a retry after a dropped connection, a job redelivered by a queue, a request replayed),
 * every copy carries the same Message-ID and the receiving side can keep one. A "send me the link
 * again" button makes a new link, so its email gets a new key and a new Message-ID; reusing the
 * first key would let a mail server that dedupes drop the second email. The key holds the link's
 * id, not its token: keys travel in queues and logs.
 */
export function sendSignupEmail(
  mail: EmailService,
  user: SignupUser,
  link: VerificationLink,
): Promise<SendResult> {
  return mail.sendVerificationEmail({
    to: user.email,
    username: user.name,
    verificationUrl: link.url,
    idempotencyKey: `verify:${user.id}:${link.id}`,
  });
}

function readCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError('SMTP_CA_FILE', `cannot be read (${(error as NodeJS.ErrnoException).code})`);
  }
}

/** A pino-shaped logger on the console: one JSON line per call. Use pino itself in a real app. */
const consoleLogger: Logger = {
  debug: (fields, msg) => console.debug(JSON.stringify({ level: 'debug', msg, ...fields })),
  info: (fields, msg) => console.info(JSON.stringify({ level: 'info', msg, ...fields })),
  warn: (fields, msg) => console.warn(JSON.stringify({ level: 'warn', msg, ...fields })),
  error: (fields, msg) => console.error(JSON.stringify({ level: 'error', msg, ...fields })),
};
