/**
 * Amazon SES, API v2 `SendEmail` with raw content (docs.aws.amazon.com/ses/latest/APIReference-V2/
 * API_SendEmail.html), through the official AWS SDK client `@aws-sdk/client-sesv2`, an optional
 * peer dependency loaded when the transport is built.
 *
 * Why the SDK rather than signing requests ourselves (SigV4 over our HTTP layer): AWS users expect
 * the SDK's default credential chain (environment, shared profiles, SSO, ECS and EC2 roles, web
 * identity) with its refreshing of temporary credentials, the SDK's region and endpoint resolution
 * (`AWS_REGION`, profiles, FIPS and dual-stack, `AWS_ENDPOINT_URL_SESV2`), and they often already
 * have a configured `SESv2Client` to hand over. Re-implementing the chain would be the larger and
 * riskier part; the signer alone would not give it. The price: the SDK cannot tell us whether a
 * dropped connection happened before or after the request body left, so such a drop is treated as
 * ambiguous (a possible duplicate) unless the connection was never made.
 */
import { ConfigError, connectionFailure, EmailError, type EmailErrorCode, MessageError } from '../errors.js';
import { lazyRequire } from '../lazy-deps.js';
import { oneLine } from '../log.js';
import { deliveryRecipients, type EmailMessage, envelopeRecipients } from '../message.js';
import { parseRetryAfter } from '../retry.js';
import { type SendResult, type Transport, throwIfAborted } from '../transport.js';
import { type DkimOptions, dkimSigner } from './dkim.js';
import {
  checkBaseUrl,
  checkTimeout,
  type HttpApi,
  hostAndPort,
  providerMetadata,
  requestError,
} from './http-api.js';
import { wireBytes } from './nodemailer-mapping.js';

/** The part of a `SESv2Client` (from `@aws-sdk/client-sesv2`) this transport uses. */
export interface SesClient {
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
  destroy?(): void;
}

/** Static AWS credentials, as the SDK takes them. */
export interface SesCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** For temporary credentials (STS). */
  sessionToken?: string;
}

/** Options of {@link sesTransport}. */
export interface SesTransportOptions {
  /**
   * Your own `SESv2Client`: its region, credentials, endpoint and retry settings are used as they
   * are (give it `maxAttempts: 1`, or its retries add to the service's). Not closed by `close()`.
   * Default: a client built from `region`, `credentials` and `endpoint`, with `maxAttempts: 1`.
   */
  client?: SesClient;
  /**
   * The AWS region of your SES identities, e.g. `eu-west-1`. Default: the SDK's (`AWS_REGION`, the
   * profile's `region`). Not with `client`.
   */
  region?: string;
  /**
   * Credentials, or a function returning them (any provider from `@aws-sdk/credential-providers`).
   * Default: the SDK's default chain (environment, profile, SSO, container and instance roles, web
   * identity). Never logged, never in an error. Not with `client`.
   */
  credentials?: SesCredentials | (() => Promise<SesCredentials>);
  /**
   * Another API endpoint (a VPC endpoint, a local test server), e.g. `https://vpce-….email.eu-west-1.vpce.amazonaws.com`.
   * `https:` unless the host is this machine; no user name, password, query or fragment. Default:
   * the SDK's (`AWS_ENDPOINT_URL_SESV2`, else `https://email.<region>.amazonaws.com`). Not with `client`.
   */
  endpoint?: string;
  /** The configuration set to send with (`ConfigurationSetName`): event publishing, IP pools. Default: none. */
  configurationSetName?: string;
  /**
   * Sending authorization: the ARN of the identity whose policy lets you send as the From address
   * (`FromEmailAddressIdentityArn`), e.g. `arn:aws:ses:eu-west-1:123456789012:identity/acme.example`.
   */
  fromEmailAddressIdentityArn?: string;
  /** How long one request may take, credentials and answer included (ms). Default 15 000. */
  timeoutMs?: number;
  /**
   * Sign every message with your own DKIM key too (SES's Easy DKIM signs on its own; see
   * `SmtpTransportOptions.dkim`). Default: none.
   */
  dkim?: DkimOptions;
}

/** An Amazon SES transport. */
export interface SesTransport extends Transport {
  readonly name: 'ses';
  /** Checks credentials and that the account may send (`GetAccount`); nothing is sent. */
  verify(): Promise<void>;
  /** Releases the client's connections, when the transport built the client. */
  close(): Promise<void>;
}

/** What we use of `@aws-sdk/client-sesv2`. */
interface SesSdk {
  SESv2Client: new (config: Record<string, unknown>) => SesClient;
  SendEmailCommand: new (input: Record<string, unknown>) => unknown;
  GetAccountCommand: new (input: Record<string, unknown>) => unknown;
}

const SES_PACKAGE = '@aws-sdk/client-sesv2';
/** SES as the shared HTTP API helpers name it: the endpoint's rule and a request with no answer. */
const API: HttpApi = {
  transport: 'ses',
  label: 'Amazon SES',
  defaultBaseUrl: 'https://email.eu-west-1.amazonaws.com',
  keyOption: 'credentials',
  hostHint: 'check region and endpoint',
};
const loadSdk = lazyRequire<SesSdk>(SES_PACKAGE);

/**
 * SES v2's documented errors (docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
 * "Errors", and CommonErrors.html beside it: the errors of every AWS API),
 * by the name the SDK gives them; any other 4xx is `rejected` (permanent), any 5xx `provider`
 * (transient).
 */
const ERROR_CODES: Readonly<Record<string, EmailErrorCode>> = {
  /** Too many requests, the sending rate or the daily quota exceeded. */
  TooManyRequestsException: 'rate-limit',
  LimitExceededException: 'rate-limit',
  ThrottlingException: 'rate-limit',
  Throttling: 'rate-limit',
  /** Invalid content, an invalid address, an unverified sender (or recipient, in the sandbox). */
  MessageRejected: 'rejected',
  BadRequestException: 'rejected',
  /** The account may not send: restricted for good, or paused (account or configuration set). */
  AccountSuspendedException: 'account',
  SendingPausedException: 'account',
  OptInRequired: 'account',
  /** The custom MAIL FROM domain is not verified; the configuration set (or another resource) does not exist. */
  MailFromDomainNotVerifiedException: 'config',
  NotFoundException: 'config',
  /** Unknown access key, wrong secret, no permission, expired session token, clock skew. */
  UnrecognizedClientException: 'auth',
  InvalidClientTokenId: 'auth',
  InvalidSignatureException: 'auth',
  SignatureDoesNotMatch: 'auth',
  IncompleteSignature: 'auth',
  MissingAuthenticationToken: 'auth',
  AccessDeniedException: 'auth',
  AccessDenied: 'auth',
  NotAuthorized: 'auth',
  ExpiredTokenException: 'auth',
  ExpiredToken: 'auth',
  RequestExpired: 'auth',
  /** No credentials anywhere in the SDK's chain (thrown before any request). */
  CredentialsProviderError: 'auth',
};
/** HTTP statuses, for errors without a known name (a proxy's answer). */
const STATUS_CODES: Readonly<Record<number, EmailErrorCode>> = {
  401: 'auth',
  403: 'auth',
  404: 'config',
  429: 'rate-limit',
};
/** SES message tag names and values (API_MessageTag): ASCII letters, digits, `_` and `-`, at most 256. */
const TAG = /^[A-Za-z0-9_-]{1,256}$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
const CONFIGURATION_SET = /^[A-Za-z0-9_-]{1,64}$/;
const IDENTITY_ARN = /^arn:aws[a-z-]*:ses:[a-z0-9-]+:\d{12}:identity\/[^\s]{1,512}$/;
/** An access key id in the provider's words is not a secret, but has no place in our logs. */
const ACCESS_KEY_ID = /\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b/g;

/**
 * Sends through Amazon SES (API v2 `SendEmail`).
 *
 * Mapping: the message is sent as `Content.Raw`, the MIME the SMTP transport sends (built by
 * nodemailer's composer, optionally DKIM-signed), so attachments, inline images, the calendar
 * invitation, custom headers such as List-Unsubscribe, and our Message-ID arrive as they are;
 * `Destination` lists the recipients (To, Cc and Bcc: Bcc never appears in the headers), and a
 * retry meant for some recipients only lists only those (with `Destination`, SES ignores the
 * addresses in the headers). Message tags become `EmailTags` `{ Name: tag, Value: 'true' }`, metadata
 * `{ Name: key, Value: String(value) }`, the email's category as `{ Name: 'category', Value }` (as
 * the other HTTP providers carry it; a contradicting `metadata.category` is a `MessageError`): a tag, key or value SES cannot carry (letters, digits, `_`
 * and `-`, at most 256) is refused with a `MessageError` before anything is sent. Returns SES's
 * `MessageId` as `providerMessageId` (what SES events and SNS notifications name).
 *
 * Errors (API_SendEmail "Errors"; AWS common errors): `TooManyRequestsException`,
 * `LimitExceededException`, `ThrottlingException`, 429 → `rate-limit` (Retry-After honoured when
 * given); 5xx → `provider` (transient); `MessageRejected`, `BadRequestException` and other 4xx →
 * `rejected` (permanent); `AccountSuspendedException`, `SendingPausedException` → `account`;
 * `MailFromDomainNotVerifiedException`, `NotFoundException` (configuration set) → `config`;
 * `UnrecognizedClientException`, `InvalidSignatureException`, `AccessDeniedException`,
 * `ExpiredTokenException`, 401/403, no credentials found → `auth` (all systemic). A connection that
 * could not be made → `network` (transient); one dropped once made, or no answer in `timeoutMs`
 * → ambiguous.
 *
 * Idempotency: SES has no idempotency key, so a retry after a dropped connection may deliver
 * twice; every attempt carries the same Message-ID header, so a receiver can tell.
 *
 * Throws a `ConfigError` when `@aws-sdk/client-sesv2` is not installed, naming the package, and for
 * malformed options, naming the option.
 *
 * @example
 * ```ts
 * // Credentials and region from the AWS SDK's usual places (env, profile, role).
 * const transport = sesTransport({ region: 'eu-west-1', configurationSetName: 'transactional' });
 * // Or your own client:
 * const transport = sesTransport({ client: new SESv2Client({ region: 'eu-west-1', maxAttempts: 1 }) });
 * ```
 */
export function sesTransport(options: SesTransportOptions = {}): SesTransport {
  const { timeoutMs, endpoint } = checkOptions(options);
  const sdk = requireSdk();
  const own = options.client === undefined;
  const client =
    options.client ??
    new sdk.SESv2Client({
      maxAttempts: 1,
      ...(options.region === undefined ? {} : { region: options.region }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      ...(endpoint === undefined ? {} : { endpoint: endpoint.href }),
    });
  const where = endpoint
    ? hostAndPort(endpoint)
    : options.region
      ? `email.${options.region}.amazonaws.com:443`
      : undefined;
  const dkim = options.dkim === undefined ? undefined : dkimSigner(options.dkim);

  /** One SDK call, bounded by `timeoutMs` and the caller's signal; failures become our errors. */
  async function call<T>(command: unknown, signal?: AbortSignal): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const abortSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      return (await client.send(command, { abortSignal })) as T;
    } catch (error) {
      throw sesError(error, where, signal?.aborted === true, timeout.aborted);
    }
  }

  return {
    name: 'ses',
    // Destination is the envelope: a retry for some recipients reaches only them.
    narrowsRecipients: true,
    ...(dkim === undefined ? {} : { dkim: dkim.identity }),
    describe: () =>
      `ses ${where ?? (own ? 'region from the AWS config' : 'your SESv2Client')}${options.configurationSetName ? ` (configuration set ${options.configurationSetName})` : ''}${dkim ? ', DKIM-signed' : ''}`,
    check: (message) => void emailTags(message),
    async send(message, context) {
      throwIfAborted(context, 'ses');
      const tags = emailTags(message);
      const raw = await wireBytes(message, dkim);
      const input = {
        Destination: destination(message),
        Content: { Raw: { Data: new Uint8Array(raw) } },
        ...(tags.length ? { EmailTags: tags } : {}),
        ...(options.configurationSetName ? { ConfigurationSetName: options.configurationSetName } : {}),
        ...(options.fromEmailAddressIdentityArn
          ? { FromEmailAddressIdentityArn: options.fromEmailAddressIdentityArn }
          : {}),
      };
      throwIfAborted(context, 'ses');
      const output = await call<{ MessageId?: unknown }>(new sdk.SendEmailCommand(input), context.signal);
      return {
        messageId: message.messageId,
        accepted: [...deliveryRecipients(message)],
        rejected: [],
        transport: 'ses',
        response: output,
        ...(typeof output?.MessageId === 'string' ? { providerMessageId: output.MessageId } : {}),
      } satisfies SendResult;
    },
    /**
     * Checks credentials, region and endpoint with `GetAccount` (nothing is sent), and that the
     * account may send: `SendingEnabled: false` or `EnforcementStatus: SHUTDOWN` reject as
     * `account`. Rejects with the same errors as a send otherwise.
     */
    async verify() {
      const account = await call<{ SendingEnabled?: unknown; EnforcementStatus?: unknown }>(
        new sdk.GetAccountCommand({}),
      );
      const stopped =
        account?.SendingEnabled === false
          ? 'sending is paused for this account (GetAccount SendingEnabled: false)'
          : account?.EnforcementStatus === 'SHUTDOWN'
            ? 'this account may no longer send (GetAccount EnforcementStatus: SHUTDOWN)'
            : undefined;
      if (stopped) {
        throw new EmailError(`Amazon SES: ${stopped}`, {
          code: 'account',
          transport: 'ses',
          ...(where ? { endpoint: where } : {}),
        });
      }
    },
    async close() {
      if (own) client.destroy?.();
    },
  };
}

/**
 * Maps what the SDK threw to our error: a service error by its name (`ERROR_CODES`), else its
 * status; a request that got no answer as every HTTP API transport maps it (`requestError`): the
 * SDK cannot say whether the body went out, so only a connection never made counts as not sent.
 */
function sesError(
  error: unknown,
  endpoint: string | undefined,
  aborted: boolean,
  timedOut: boolean,
): EmailError {
  if (aborted) return requestError(API, error, endpoint, { reason: 'aborted', sent: false });
  if (timedOut) return requestError(API, error, endpoint, { reason: 'timeout', sent: true });
  const base = { transport: 'ses', cause: error, ...(endpoint ? { endpoint } : {}) };
  const at = endpoint ? ` at ${endpoint}` : '';
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    message?: unknown;
    $fault?: unknown;
    $metadata?: { httpStatusCode?: unknown };
    $response?: { headers?: Record<string, string | undefined> };
  };
  const name = typeof e.name === 'string' ? e.name : undefined;
  const said = typeof e.message === 'string' ? oneLine(e.message.replace(ACCESS_KEY_ID, '…'), 200) : '';
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const known = name === undefined ? undefined : ERROR_CODES[name];
  if (status !== undefined && status >= 300) {
    const code = status >= 500 ? 'provider' : (known ?? STATUS_CODES[status] ?? 'rejected');
    const headers = e.$response?.headers ?? {};
    const retryAfterMs = parseRetryAfter(headers['retry-after'] ?? headers['Retry-After']);
    return new EmailError(`Amazon SES ${status}${name ? ` ${name}` : ''}${at}${said ? `: ${said}` : ''}`, {
      ...base,
      code,
      status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  if (status !== undefined) {
    // SES answered 2xx but the SDK could not read it: SES may well have accepted the message.
    return new EmailError(`Amazon SES${at} sent an answer that could not be read: ${said}`, {
      ...base,
      code: 'network',
      status,
      handedOver: true,
    });
  }
  if (name === 'CredentialsProviderError') {
    return new EmailError(
      `Amazon SES: no AWS credentials found (${said}): give credentials, or set them where the AWS SDK looks (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a container or instance role)`,
      { ...base, code: 'auth' },
    );
  }
  if (known !== undefined) {
    return new EmailError(`Amazon SES: ${said || name}`, { ...base, code: known });
  }
  if (/region is missing/i.test(said)) {
    return new EmailError(`Amazon SES: no region: set region (or AWS_REGION, or the profile's region)`, {
      ...base,
      code: 'config',
    });
  }
  if (connectionFailure(error)) return requestError(API, error, endpoint);
  return new EmailError(`Amazon SES${at}: ${said || 'the request failed'}`, { ...base, code: 'provider' });
}

/** To, Cc and Bcc as SES's `Destination`, narrowed to this attempt's recipients when it is a partial retry. */
function destination(message: EmailMessage): Record<string, string[]> {
  const only = envelopeRecipients(message);
  const keep = only ? new Set(only.map((a) => a.toLowerCase())) : undefined;
  const pick = (list: EmailMessage['to']) =>
    list.map((a) => a.address).filter((a) => keep === undefined || keep.has(a.toLowerCase()));
  const lists = {
    ToAddresses: pick(message.to),
    CcAddresses: pick(message.cc),
    BccAddresses: pick(message.bcc),
  };
  return Object.fromEntries(Object.entries(lists).filter(([, list]) => list.length > 0));
}

/** Tags and metadata as SES message tags (API_MessageTag), refused before sending when SES could not carry them. */
function emailTags(message: EmailMessage): { Name: string; Value: string }[] {
  const tags = [
    ...message.tags.map((tag, i) => ({ field: `tags[${i}]`, Name: tag, Value: 'true' })),
    ...Object.entries(providerMetadata(message)).map(([key, value]) => ({
      field: `metadata.${key}`,
      Name: key,
      Value: String(value),
    })),
  ];
  const names = new Set<string>();
  for (const { field, Name, Value } of tags) {
    if (!TAG.test(Name) || !TAG.test(Value)) {
      throw new MessageError(
        field,
        'Amazon SES message tags take ASCII letters, digits, _ and - only, 1 to 256 of them, in the name and the value',
      );
    }
    if (names.has(Name)) throw new MessageError(field, `${Name} is both a tag and a metadata key`);
    names.add(Name);
  }
  return tags.map(({ Name, Value }) => ({ Name, Value }));
}

/** Loads the SDK, or says which package to install. */
function requireSdk(): SesSdk {
  try {
    return loadSdk();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') throw missingSdk();
    throw error;
  }
}

/** Internal (and for tests): the error for a missing SDK. */
export function missingSdk(): ConfigError {
  return new ConfigError(
    'client',
    `the Amazon SES transport needs the package ${SES_PACKAGE}: npm install ${SES_PACKAGE}`,
  );
}

function checkOptions(options: SesTransportOptions): { timeoutMs: number; endpoint: URL | undefined } {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('sesTransport: options must be an object');
  }
  const { client, region, credentials, endpoint, timeoutMs = 15_000 } = options;
  if (client !== undefined) {
    if (typeof client !== 'object' || client === null || typeof client.send !== 'function') {
      throw new ConfigError('client', 'must be a SESv2Client from @aws-sdk/client-sesv2');
    }
    const clash = (['region', 'credentials', 'endpoint'] as const).find((k) => options[k] !== undefined);
    if (clash) throw new ConfigError(clash, 'give it to your SESv2Client, not beside client');
  }
  if (region !== undefined && (typeof region !== 'string' || !REGION.test(region))) {
    throw new ConfigError('region', 'must be an AWS region such as eu-west-1');
  }
  if (credentials !== undefined && typeof credentials !== 'function') checkCredentials(credentials);
  checkTimeout(timeoutMs);
  const set = options.configurationSetName;
  if (set !== undefined && (typeof set !== 'string' || !CONFIGURATION_SET.test(set))) {
    throw new ConfigError(
      'configurationSetName',
      'must be a configuration set name (letters, digits, _ and -, at most 64)',
    );
  }
  const arn = options.fromEmailAddressIdentityArn;
  if (arn !== undefined && (typeof arn !== 'string' || !IDENTITY_ARN.test(arn))) {
    throw new ConfigError(
      'fromEmailAddressIdentityArn',
      'must be an SES identity ARN such as arn:aws:ses:eu-west-1:123456789012:identity/acme.example',
    );
  }
  return {
    timeoutMs,
    // The endpoint gets our signed requests and the mail in them: https unless this machine.
    endpoint: endpoint === undefined ? undefined : checkBaseUrl(API, endpoint, 'endpoint', 'mail'),
  };
}

/** Checks the shape only; errors name the field, never its value. */
function checkCredentials(credentials: unknown): void {
  const c = (typeof credentials === 'object' && credentials !== null ? credentials : {}) as Record<
    string,
    unknown
  >;
  if (typeof credentials !== 'object' || credentials === null) {
    throw new ConfigError('credentials', 'must be { accessKeyId, secretAccessKey } or a credential provider');
  }
  for (const field of ['accessKeyId', 'secretAccessKey', 'sessionToken'] as const) {
    const value = c[field];
    if (field === 'sessionToken' && value === undefined) continue;
    if (typeof value !== 'string' || value === '' || /[\s\p{Cc}]/u.test(value)) {
      throw new ConfigError(`credentials.${field}`, 'is required, without spaces or line breaks');
    }
  }
}
