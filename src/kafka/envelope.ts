/**
 * Envelope v1: the JSON record on `notifications.email`. Validated when published and again when
 * consumed; anything unexpected is a {@link MessageError} that names the field (a
 * `TemplateError` for a malformed template name), so the worker can dead-letter it with the
 * reason. Attachments are inline base64 content, size-limited: a queue
 * message never makes the worker open a file or fetch a URL.
 */

import { randomUUID } from 'node:crypto';
import { MessageError } from '../errors.js';
import { requireLocale } from '../locale.js';
import {
  type Address,
  type AddressInput,
  type Attachment,
  composeMessage,
  type EmailCategory,
  type EmailMessageInput,
  formatAddress,
  type MetadataValue,
  type ParsedAddresses,
  parseAddress,
} from '../message.js';
import type { QueuedEmail } from '../queue.js';
import { checkSendAhead, futureSendAt, MAX_QUEUED_SEND_AHEAD_MS, sendAtTime } from '../send-at.js';
import { checkTemplateName } from '../templates/define.js';
import { isoTime } from './iso-time.js';

/** The envelope version this release writes and reads. */
export const ENVELOPE_VERSION = 1;

/** An attachment inside an envelope: the bytes, base64-encoded. Never a path or a URL. */
export interface EnvelopeAttachment {
  readonly filename: string;
  /** The file's bytes, base64. */
  readonly content: string;
  readonly contentType?: string;
  readonly cid?: string;
}

/**
 * Envelope v1, as JSON on the topic. Either `template` + `data` (the worker renders), or
 * `subject` with `html` and/or `text` already rendered; with a template, `subject` overrides
 * the template's.
 *
 * @example
 * ```json
 * {
 *   "version": 1,
 *   "id": "5b0e…",
 *   "idempotencyKey": "verify:user-42",
 *   "createdAt": "2026-11-22T10:00:00.000Z",
 *   "template": "verification",
 *   "data": { "username": "Jane", "verificationUrl": "https://acme.example/verify?t=…" },
 *   "from": "Acme <no-reply@acme.example>",
 *   "to": ["jane@example.com"]
 * }
 * ```
 */
export interface EnvelopeV1 {
  readonly version: 1;
  /** This envelope's id (a UUID unless given). */
  readonly id: string;
  /** The logical email; the Message-ID derives from it, and the worker skips keys already sent. */
  readonly idempotencyKey: string;
  /** When the envelope was made, ISO 8601. */
  readonly createdAt: string;
  readonly template?: string;
  readonly data?: Readonly<Record<string, unknown>>;
  readonly subject?: string;
  readonly html?: string;
  readonly text?: string;
  /** The sender; the worker's service default when absent. */
  readonly from?: string;
  readonly replyTo?: readonly string[];
  readonly to: readonly string[];
  readonly cc?: readonly string[];
  readonly bcc?: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, MetadataValue>>;
  readonly attachments?: readonly EnvelopeAttachment[];
  /**
   * `security`, `transactional`, `product` or `marketing`. Absent: the template's category, or
   * `transactional` without a template; `EmailService` writes it only when it differs, so most
   * records stay readable by workers older than this field. The worker's service checks its
   * suppression list by it (`security` mail is never suppressed). An unknown value, or another
   * category for a `security` template, is a `MessageError` naming `category` (dead-lettered).
   */
  readonly category?: EmailCategory;
  /**
   * When to deliver, an ISO 8601 instant with its offset (the producer writes `toISOString()`).
   * Absent: at once; written only when the caller gave a time still ahead, at most 30 days after
   * `createdAt` (`MAX_QUEUED_SEND_AHEAD_MS`; further is a `MessageError` naming `sendAt`, when
   * published and when read). The worker moves a record not yet due to its delay topics and sends
   * it once due, never before. Like `category`, an optional field added within v1: a worker older
   * than it refuses such a record (`sendAt is not a field of envelope v1`, dead-lettered, never
   * sent early), so upgrade the workers before producers use it.
   */
  readonly sendAt?: string;
  /**
   * The language to render the template in: a BCP 47 tag (`de`, `pt-BR`, `ar`). Absent: the
   * worker's service default (`locale`, `MAILROOM_LOCALE`). `EmailService` writes it only when a
   * send names one or its own default is not `en`, so other records stay readable by workers older
   * than this field. A tag `Intl.getCanonicalLocales` refuses is a `MessageError` naming `locale`
   * (dead-lettered as `invalid-envelope`).
   */
  readonly locale?: string;
  /** W3C trace context (`00-<trace>-<span>-<flags>`), also sent as a Kafka header. */
  readonly traceparent?: string;
}

/** Size limits of an envelope. */
export interface EnvelopeLimits {
  /** The serialised envelope at most (bytes). Default 900 000, under Kafka's default 1 MB record limit. */
  maxEnvelopeBytes?: number;
  /** All attachments' decoded bytes together at most. Default 512 KiB. */
  maxAttachmentBytes?: number;
}

const DEFAULT_LIMITS: Required<EnvelopeLimits> = {
  maxEnvelopeBytes: 900_000,
  maxAttachmentBytes: 512 * 1024,
};

/** The limits a producer or worker was given, with the defaults filled in once. */
export function resolveLimits(options: EnvelopeLimits): Required<EnvelopeLimits> {
  return {
    maxEnvelopeBytes: options.maxEnvelopeBytes ?? DEFAULT_LIMITS.maxEnvelopeBytes,
    maxAttachmentBytes: options.maxAttachmentBytes ?? DEFAULT_LIMITS.maxAttachmentBytes,
  };
}
const KEYS = new Set([
  'version',
  'id',
  'idempotencyKey',
  'createdAt',
  'template',
  'data',
  'subject',
  'html',
  'text',
  'from',
  'replyTo',
  'to',
  'cc',
  'bcc',
  'headers',
  'tags',
  'metadata',
  'attachments',
  'category',
  'sendAt',
  'locale',
  'traceparent',
]);
const ATTACHMENT_KEYS = new Set(['filename', 'content', 'contentType', 'cid']);
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const ID = /^[\w.:@-]{1,200}$/;

/**
 * Builds and validates an envelope from what a caller hands the producer. Throws a
 * `MessageError` (nothing published) on the first problem.
 */
export function createEnvelope(
  email: QueuedEmail & { id?: string; createdAt?: Date },
  limits: EnvelopeLimits = {},
): EnvelopeV1 {
  return buildEnvelope(email, limits).envelope;
}

/** An envelope the producer publishes: its JSON and its partition key, each made once. */
export interface BuiltEnvelope {
  readonly envelope: EnvelopeV1;
  readonly json: string;
  /** The first recipient's bare address, lower-case: one recipient's mail stays in order on one partition. */
  readonly key: string;
}

/**
 * Internal: {@link createEnvelope} for the producer. Every address is parsed once (its normal form
 * goes into the envelope, the parsed one into the message check), and what was made here rather
 * than given (the id, createdAt) is not checked again.
 */
export function buildEnvelope(
  email: QueuedEmail & { id?: string; createdAt?: Date },
  limits: EnvelopeLimits,
): BuiltEnvelope {
  if (typeof email !== 'object' || email === null) throw new TypeError('an email to publish is required');
  const idempotencyKey = email.idempotencyKey ?? randomUUID();
  const attachments = checkAttachmentInput(email.attachments)?.map(encodeAttachment);
  // In the order the fields were always checked, so the first problem reported stays the same.
  const from = email.from === undefined ? undefined : parseAddress(email.from, 'from');
  const replyTo = addressList(email.replyTo, 'replyTo');
  const to = addressList(email.to, 'to') ?? [];
  const cc = addressList(email.cc, 'cc');
  const bcc = addressList(email.bcc, 'bcc');
  const createdAt = email.createdAt ?? new Date();
  const sendAt = email.sendAt === undefined ? undefined : futureSendAt(email.sendAt, createdAt.getTime());
  if (sendAt !== undefined)
    checkSendAhead(sendAt.getTime(), MAX_QUEUED_SEND_AHEAD_MS, 'a Kafka queue', createdAt.getTime());
  const envelope: EnvelopeV1 = prune({
    version: ENVELOPE_VERSION,
    id: email.id ?? randomUUID(),
    idempotencyKey,
    createdAt: createdAt.toISOString(),
    template: email.template,
    data: email.data,
    subject: email.subject,
    html: email.html,
    text: email.text,
    from: from === undefined ? undefined : formatAddress(from),
    replyTo: replyTo?.map(formatAddress),
    to: to.map(formatAddress),
    cc: cc?.map(formatAddress),
    bcc: bcc?.map(formatAddress),
    headers: email.headers,
    tags: email.tags,
    metadata: email.metadata,
    attachments,
    category: email.category,
    sendAt: sendAt?.toISOString(),
    locale: email.locale,
    traceparent: email.traceparent,
  });
  checkEnvelope(envelope, limits, true, {
    id: email.id === undefined,
    createdAt: email.createdAt === undefined,
    addresses: { from, to, cc, bcc, replyTo },
  });
  const json = JSON.stringify(envelope);
  const max = limits.maxEnvelopeBytes ?? DEFAULT_LIMITS.maxEnvelopeBytes;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: the bytes are counted only near the limit.
  if (json.length * 3 > max && Buffer.byteLength(json) > max) {
    throw new MessageError('envelope', 'is larger than maxEnvelopeBytes');
  }
  // The check above refused an envelope without a recipient.
  return { envelope, json, key: (to[0] as Address).address.toLowerCase() };
}

/**
 * Reads an envelope off the topic: JSON, version 1, the schema, the limits. Throws a
 * `MessageError` naming what is wrong (a `TemplateError` for a malformed template name); the
 * worker dead-letters such a record.
 */
export function parseEnvelope(
  value: Uint8Array | string | null | undefined,
  limits: EnvelopeLimits = {},
): EnvelopeV1 {
  const parsed = readJson(value, limits);
  checkEnvelope(parsed, limits, true);
  return parsed;
}

/**
 * The worker's read: the schema and limits, but not the message-level checks, because the send
 * that follows runs exactly those (a failure there is dead-lettered the same way). Saves
 * validating every address twice per email.
 */
export function readEnvelope(
  value: Uint8Array | string | null | undefined,
  limits: EnvelopeLimits,
): EnvelopeV1 {
  const parsed = readJson(value, limits);
  checkEnvelope(parsed, limits, false);
  return parsed;
}

function readJson(value: Uint8Array | string | null | undefined, limits: EnvelopeLimits): unknown {
  if (value === null || value === undefined || value.length === 0) {
    throw new MessageError('envelope', 'is empty');
  }
  const max = limits.maxEnvelopeBytes ?? DEFAULT_LIMITS.maxEnvelopeBytes;
  if ((typeof value === 'string' ? Buffer.byteLength(value) : value.length) > max) {
    throw new MessageError('envelope', 'is larger than maxEnvelopeBytes');
  }
  try {
    // Decoded in place: Buffer.from(buffer) would copy every record first. The clients hand over
    // Buffers, decoded as they are (toString() without arguments is Buffer's quickest UTF-8 path).
    const text =
      typeof value === 'string'
        ? value
        : Buffer.isBuffer(value)
          ? value.toString()
          : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
    return JSON.parse(text);
  } catch {
    throw new MessageError('envelope', 'is not JSON');
  }
}

/** The message fields an envelope stands for; a template's subject and bodies come from rendering. */
export function envelopeFields(
  envelope: EnvelopeV1,
): Omit<EmailMessageInput, 'subject'> & { subject?: string } {
  // Built field by field (this runs once per email in the worker): only what the envelope has.
  const fields: Omit<EmailMessageInput, 'subject'> & { subject?: string } = {
    to: envelope.to,
    idempotencyKey: envelope.idempotencyKey,
  };
  if (envelope.from !== undefined) fields.from = envelope.from;
  if (envelope.cc !== undefined) fields.cc = envelope.cc;
  if (envelope.bcc !== undefined) fields.bcc = envelope.bcc;
  if (envelope.replyTo !== undefined) fields.replyTo = envelope.replyTo;
  if (envelope.subject !== undefined) fields.subject = envelope.subject;
  if (envelope.html !== undefined) fields.html = envelope.html;
  if (envelope.text !== undefined) fields.text = envelope.text;
  if (envelope.headers !== undefined) fields.headers = envelope.headers;
  if (envelope.tags !== undefined) fields.tags = envelope.tags;
  if (envelope.metadata !== undefined) fields.metadata = envelope.metadata;
  if (envelope.attachments !== undefined) fields.attachments = envelope.attachments.map(decodeAttachment);
  if (envelope.template !== undefined) fields.template = envelope.template;
  if (envelope.category !== undefined) fields.category = envelope.category;
  if (envelope.locale !== undefined) fields.locale = envelope.locale;
  return fields;
}

/** What {@link buildEnvelope} made itself, so it is not checked again: generated values, parsed addresses. */
interface Made {
  /** The id is a UUID made here. */
  readonly id: boolean;
  /** createdAt is the toISOString() of a Date made here. */
  readonly createdAt: boolean;
  readonly addresses: ParsedAddresses;
}

function checkEnvelope(
  input: unknown,
  limits: EnvelopeLimits,
  deep: boolean,
  made?: Made,
): asserts input is EnvelopeV1 {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new MessageError('envelope', 'must be a JSON object');
  }
  const e = input as Record<string, unknown>;
  if (e.version !== ENVELOPE_VERSION) {
    throw new MessageError(
      'version',
      `unsupported envelope version ${JSON.stringify(e.version)} (this release reads 1)`,
    );
  }
  // for…in: no array of keys per record (JSON.parse makes plain objects: own keys only).
  for (const key in e) {
    if (!KEYS.has(key)) throw new MessageError(key, 'is not a field of envelope v1');
  }
  if (made?.id !== true && (typeof e.id !== 'string' || !ID.test(e.id)))
    throw new MessageError('id', 'must be 1–200 word characters');
  if (typeof e.idempotencyKey !== 'string') throw new MessageError('idempotencyKey', 'is required');
  // Parsed once: read again below only when a sendAt must be measured from it.
  let createdAt: number | undefined;
  if (made?.createdAt !== true) {
    createdAt = typeof e.createdAt === 'string' ? isoTime(e.createdAt) : Number.NaN;
    if (Number.isNaN(createdAt)) throw new MessageError('createdAt', 'must be an ISO 8601 time');
  }
  if (e.sendAt !== undefined) {
    if (typeof e.sendAt !== 'string') throw new MessageError('sendAt', 'must be an ISO 8601 instant');
    // createdAt was checked just above: a sendAt is at most 30 days after it.
    checkSendAhead(
      sendAtTime(e.sendAt),
      MAX_QUEUED_SEND_AHEAD_MS,
      'a Kafka queue',
      createdAt ?? isoTime(e.createdAt as string),
    );
  }
  if (
    e.traceparent !== undefined &&
    (typeof e.traceparent !== 'string' || !TRACEPARENT.test(e.traceparent))
  ) {
    throw new MessageError('traceparent', 'must be a W3C traceparent');
  }
  if (e.locale !== undefined) requireLocale(e.locale, (problem) => new MessageError('locale', problem));
  for (const field of ADDRESS_FIELDS) {
    const list = e[field];
    if (list !== undefined && !isStringArray(list))
      throw new MessageError(field, 'must be an array of addresses');
  }
  if (e.from !== undefined && typeof e.from !== 'string')
    throw new MessageError('from', 'must be an address');
  if (e.template === undefined) {
    if (e.data !== undefined) throw new MessageError('data', 'needs a template');
    if (typeof e.subject !== 'string') throw new MessageError('subject', 'is required without a template');
  } else {
    checkTemplateName(e.template);
    if (typeof e.data !== 'object' || e.data === null || Array.isArray(e.data)) {
      throw new MessageError('data', 'must be an object');
    }
  }
  let attachmentBytes = 0;
  if (e.attachments !== undefined) {
    eachAttachment(e.attachments, (a, field) => {
      const { content } = a;
      if (typeof content !== 'string' || content.length % 4 !== 0 || !BASE64.test(content)) {
        throw new MessageError(`${field}.content`, 'must be base64');
      }
      attachmentBytes +=
        (content.length / 4) * 3 - (content.endsWith('==') ? 2 : content.endsWith('=') ? 1 : 0);
    });
  }
  if (attachmentBytes > (limits.maxAttachmentBytes ?? DEFAULT_LIMITS.maxAttachmentBytes)) {
    throw new MessageError('attachments', 'are larger than maxAttachmentBytes');
  }
  if (!deep) return;
  // Everything else is checked exactly as a send would check it; a template's body comes later.
  // The fields are a new object: filled in place, not spread into another (a copy per email).
  const fields = envelopeFields(e as unknown as EnvelopeV1) as EmailMessageInput;
  // Only the check: the Message-ID is derived from the idempotency key when the email is sent.
  fields.messageId = CHECK_MESSAGE_ID;
  fields.subject ??= '-';
  if (e.template !== undefined && fields.html === undefined && fields.text === undefined) fields.text = '-';
  composeMessage(fields, PLACEHOLDER_SENDER, undefined, Number.POSITIVE_INFINITY, made?.addresses);
}

const CHECK_MESSAGE_ID = '<envelope-check@mailroom.invalid>';
/** The sender of an envelope without one, for the check: the worker's service fills in its own. */
const PLACEHOLDER_SENDER: Address = Object.freeze({ address: 'placeholder@mailroom.invalid' });

const ADDRESS_FIELDS = ['to', 'cc', 'bcc', 'replyTo'] as const;

function isStringArray(list: unknown): boolean {
  if (!Array.isArray(list)) return false;
  for (const item of list) if (typeof item !== 'string') return false;
  return true;
}

/** A list of addresses as given to the producer, parsed (a single one is a list of one). */
function addressList(
  input: AddressInput | readonly AddressInput[] | undefined,
  field: string,
): Address[] | undefined {
  if (input === undefined) return undefined;
  const list = (Array.isArray(input) ? input : [input]) as AddressInput[];
  return list.map((a, i) => parseAddress(a, `${field}[${i}]`));
}

/** Attachments as given to the producer: content only, checked before anything is encoded. */
function checkAttachmentInput(input: unknown): Attachment[] | undefined {
  if (input === undefined) return undefined;
  return eachAttachment(input, (a, field) => {
    if (typeof a.content !== 'string' && !(a.content instanceof Uint8Array)) {
      throw new MessageError(`${field}.content`, 'must be a string or bytes');
    }
    return a as unknown as Attachment;
  });
}

/** Checks the shape every attachment list shares (objects with only the known keys), then `each`. */
function eachAttachment<T>(input: unknown, each: (a: Record<string, unknown>, field: string) => T): T[] {
  if (!Array.isArray(input)) throw new MessageError('attachments', 'must be an array');
  return input.map((a: unknown, i) => {
    const field = `attachments[${i}]`;
    if (typeof a !== 'object' || a === null) throw new MessageError(field, 'must be an object');
    for (const key of Object.keys(a)) {
      if (!ATTACHMENT_KEYS.has(key)) {
        throw new MessageError(
          `${field}.${key}`,
          'not accepted: attachments carry content only, never a path or URL',
        );
      }
    }
    return each(a as Record<string, unknown>, field);
  });
}

function encodeAttachment(a: Attachment): EnvelopeAttachment {
  const bytes = typeof a.content === 'string' ? Buffer.from(a.content, 'utf8') : Buffer.from(a.content);
  return prune({
    filename: a.filename,
    content: bytes.toString('base64'),
    contentType: a.contentType,
    cid: a.cid,
  });
}

function decodeAttachment(a: EnvelopeAttachment): Attachment {
  return prune({
    filename: a.filename,
    content: new Uint8Array(Buffer.from(a.content, 'base64')),
    contentType: a.contentType,
    cid: a.cid,
  });
}

/**
 * The fields given, undefined ones left out, so the JSON carries only what was given. Copied into
 * a new object rather than deleted from this one: `delete` turns an object into a slow dictionary.
 */
function prune<T extends object>(value: T): T {
  const out: Partial<T> = {};
  for (const key in value) if (value[key] !== undefined) out[key] = value[key];
  return out as T;
}
