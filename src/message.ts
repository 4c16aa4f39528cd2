/**
 * The EmailMessage value object: the one shape every transport receives.
 *
 * Validation lives here, so a transport never sees an address it cannot trust or a header that
 * could split a message. Nothing is silently cleaned: a bad value is a {@link MessageError} that
 * names the field.
 */

import { hash, randomUUID } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { ConfigError, isMessageError, MessageError } from './errors.js';
import { loadAddressParser, loadMimeFuncs } from './lazy-deps.js';
import { requireLocale } from './locale.js';
import { futureSendAt } from './send-at.js';

/** A mailbox: an address and an optional display name. */
export interface Address {
  /** Display name, e.g. `Acme Support`. */
  readonly name?: string;
  /** The address itself, e.g. `support@acme.example`. International domains are normalised to ASCII. */
  readonly address: string;
}

/** An address as callers may write it: `jane@example.com`, `Jane Doe <jane@example.com>` or an {@link Address}. */
export type AddressInput = string | Address;

/** A file carried inside the message. Content only: file paths and URLs are never fetched. */
export interface Attachment {
  /** The name the recipient sees. No directory parts. */
  readonly filename: string;
  /** The bytes, or text. */
  readonly content: string | Uint8Array;
  /**
   * MIME type. When omitted, the message carries one guessed from the file name's extension
   * (nodemailer's table: `invoice.pdf` → `application/pdf`, an unknown one
   * `application/octet-stream`), so every transport, and the memory outbox, has the same.
   */
  readonly contentType?: string;
  /** Content-ID, to reference an inline image as `cid:…` from the HTML. */
  readonly cid?: string;
}

/**
 * A calendar invitation carried as a `text/calendar` alternative of the body (what nodemailer's
 * `icalEvent` does), so Gmail and Outlook show it with RSVP buttons. Also attached as a file.
 */
export interface CalendarEvent {
  /** The iCalendar text (RFC 5545), `BEGIN:VCALENDAR` … `END:VCALENDAR`. */
  readonly content: string;
  /**
   * The iTIP method (RFC 5546): `REQUEST` (an invitation, the default), `CANCEL`, `PUBLISH`,
   * `REPLY` … It must match the `METHOD:` line of the content, when that has one.
   */
  readonly method?: string;
  /** The attached file's name. Default `invite.ics`. */
  readonly filename?: string;
}

/** Values allowed in {@link EmailMessage.metadata}. */
export type MetadataValue = string | number | boolean;

/** What callers pass to `EmailService.send()`; `from` falls back to the service's default sender. */
export interface EmailMessageInput {
  /** The sender; the service's default sender when omitted. */
  from?: AddressInput;
  to: AddressInput | readonly AddressInput[];
  cc?: AddressInput | readonly AddressInput[];
  /** Recipients hidden from the others; never written into the message's headers. */
  bcc?: AddressInput | readonly AddressInput[];
  /** Where replies go; the service's default Reply-To when omitted. */
  replyTo?: AddressInput | readonly AddressInput[];
  subject: string;
  /** HTML body. At least one of `html` and `text` is required. */
  html?: string;
  /** Plain-text body. */
  text?: string;
  /**
   * Extra headers (`X-…`, `List-Unsubscribe`, `In-Reply-To`, `References` …). Addressing, MIME,
   * trace and signature headers (`Message-ID`, `Received`, `DKIM-Signature`, `Return-Path` …) are
   * refused: they have their own fields or belong to the servers on the way.
   */
  headers?: Readonly<Record<string, string>>;
  attachments?: readonly Attachment[];
  /**
   * Labels for analytics and filtering, passed to providers that support them. At most
   * {@link MAX_TAGS} per message, each printable ASCII of at most {@link MAX_TAG_LENGTH}
   * characters (Mailgun's documented `o:tag` limits), checked the same way for every transport.
   */
  tags?: readonly string[];
  /** A calendar invitation, sent as a `text/calendar; method=…` alternative part. */
  icalEvent?: CalendarEvent;
  /** Data that travels with the message (provider variables, logs, events) but is not shown to the recipient. */
  metadata?: Readonly<Record<string, MetadataValue>>;
  /** The template this message was rendered from, if any. */
  template?: string;
  /** `<id@domain>`; generated from the sender's domain when omitted. Every attempt of one email carries the same. */
  messageId?: string;
  /**
   * Names this logical email (e.g. `verify:user-42:2026-11-22`). The Message-ID is derived from it,
   * so every retry and every redelivery of the same email carries the same Message-ID.
   */
  idempotencyKey?: string;
  /**
   * What kind of email this is, for the suppression list: `security` mail (password resets,
   * sign-in codes, security alerts) is never suppressed, the others are skipped for a suppressed
   * recipient. Default `transactional`. Anything else is a `MessageError` naming `category`.
   */
  category?: EmailCategory;
  /**
   * When to deliver: a `Date`, or an ISO 8601 instant with its offset
   * (`2026-12-01T09:30:00Z`, `2026-12-01T10:30:00+01:00`). Anything else is a `MessageError`
   * naming `sendAt`. A time already past means "send now" (dropped, not an error). A direct send
   * needs a transport that schedules (`mailgunTransport`: `o:deliverytime`, at most 3 days ahead
   * by default; `memory`, `sandbox` record it); any other transport (SMTP, sendmail …) refuses it
   * with a `MessageError` naming `sendAt` rather than send early: publish through Kafka instead
   * (`mailroom-js/kafka`: at most 30 days ahead; the worker holds it on its delay topics).
   */
  sendAt?: Date | string;
  /**
   * The language the email is written in: a BCP 47 tag (`de`, `pt-BR`, `ar`), canonicalised with
   * `Intl.getCanonicalLocales`; anything else is a `MessageError` naming `locale`. A template renders
   * in it (words, dates, durations, `lang`/`dir`), and the email carries it as `Content-Language`
   * (RFC 3282) unless a header says otherwise. Default: the service's `locale` for a template, none
   * for a message you wrote.
   */
  locale?: string;
}

/** What kind of email a message is: see {@link EmailMessageInput.category}. */
export type EmailCategory = 'security' | 'transactional' | 'product' | 'marketing';

/** Every {@link EmailCategory}, in order of how much a recipient must get it. Internal. */
export const CATEGORIES: readonly EmailCategory[] = ['security', 'transactional', 'product', 'marketing'];

/** A validated, immutable email. Every transport receives this. */
export interface EmailMessage {
  readonly from: Address;
  readonly to: readonly Address[];
  readonly cc: readonly Address[];
  readonly bcc: readonly Address[];
  readonly replyTo: readonly Address[];
  readonly subject: string;
  readonly html: string | undefined;
  readonly text: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly attachments: readonly Attachment[];
  readonly tags: readonly string[];
  /** The calendar invitation, its method upper-cased and its file name filled in. */
  readonly icalEvent: Required<CalendarEvent> | undefined;
  readonly metadata: Readonly<Record<string, MetadataValue>>;
  readonly template: string | undefined;
  readonly messageId: string;
  readonly idempotencyKey: string | undefined;
  /** `transactional` unless the input said otherwise. */
  readonly category: EmailCategory;
  /**
   * When the email is to be delivered; present only when that is in the future (a past `sendAt`
   * is dropped: send now). A transport without `scheduling` never receives a message with it.
   */
  readonly sendAt?: Date;
  /** The canonical BCP 47 locale the email is written in, if one was given. */
  readonly locale: string | undefined;
}

const MAX_ADDRESS = 254;
const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;
const MAX_NAME = 256;
/**
 * Characters in a subject or header value: 997, so that a value nodemailer folds onto a line of
 * its own (a leading space, then the value) stays within RFC 5322 §2.1.1's 998 octets a line.
 */
const MAX_SUBJECT = 997;
/** Characters in a header field name: a name is never folded, so its line must leave room. */
const MAX_HEADER_NAME = 76;
/**
 * Tags per message and characters per tag: Mailgun's documented `o:tag` limits ("a single message
 * may be marked with up to 3 tags … ascii only … maximum length 128", Mailgun user manual,
 * Tagging). The strictest provider we map to sets the rule, so every transport accepts the same.
 */
export const MAX_TAGS = 3;
export const MAX_TAG_LENGTH = 128;
/**
 * The default of `maxMessageBytes`: 25 MB (25 000 000 bytes), what Mailgun and Gmail accept for a
 * whole message, attachments base64-encoded. See {@link messageSize}.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 25_000_000;
/**
 * Characters a mail server reads as a route inside a local part: `user%other.example@acme.example`
 * (the percent hack) and `other.example!user@acme.example` (a UUCP bang path). A server that
 * delivers for acme.example may send either to other.example, a host the caller never named
 * (RFC 5321 §3.6.1 lets it; Postfix does so by default, postconf(5): `allow_percent_hack`,
 * `swap_bangpath`). Legal in a dot-atom (RFC 5322 §3.2.3) but refused, so that an address checked
 * as belonging to acme.example (a sign-up's verification, a staging allowlist) is delivered there.
 */
const ROUTING = /[%!]/;
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const ASCII_DOMAIN = /^[A-Za-z0-9.-]+$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const NAMED = /^\s*(?:"((?:[^"\\]|\\.)*)"|([^<>"]*?))\s*<([^<>]*)>\s*$/;
/**
 * The one rule for text that reaches a header or a provider's field: C0 controls (tab, CR, LF,
 * NUL …), DEL, C1 controls (NEL U+0085 …) and the Unicode line and paragraph separators
 * (U+2028, U+2029), any of which can end a line somewhere between us and the inbox; and the
 * bidirectional embeddings and overrides U+202A–U+202E, which make a reader see text in another
 * order than it is (`invoice\u202Efdp.exe` shows as `invoiceexe.pdf`; Unicode TR #9, UTS #39).
 */
const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/;
/**
 * An RFC 2047 encoded-word (`=?UTF-8?B?…?=`): plain ASCII, so it passes {@link UNSAFE_TEXT}, but
 * a mail reader decodes it into whatever it encodes, line breaks and all. Text is given as text;
 * nodemailer encodes what needs it.
 */
const ENCODED_WORD = /=\?[^?\s]+\?[bq]\?[^?\s]*\?=/i;
/**
 * What a file name must not hold besides {@link UNSAFE_TEXT}: every other bidirectional control
 * (the isolates U+2066–U+2069, the marks U+200E, U+200F and U+061C), a zero-width space or a byte
 * order mark. None belongs in a file name, and each can disguise one.
 */
const UNSAFE_IN_FILENAME = /[\u061c\u200b\u200e\u200f\u2066-\u2069\ufeff]/;
const SPACE_OR_CONTROL = /[\s\u0000-\u001f\u007f-\u009f]/;
/**
 * The common address, `local@domain` in plain ASCII: a dot-atom local part (without `%` and `!`,
 * refused the long way: {@link ROUTING}) and LDH labels. What
 * matches (within the lengths, without `xn--` or an all-digit top label) passes every check of
 * {@link parseAddrSpec} unchanged but the domain's case, so it is read in one test.
 */
const PLAIN_ADDRESS =
  /^[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const PUNYCODE_OR_NUMERIC_TOP = /xn--|\.\d+$/i;
const HEADER_NAME = /^[!-9;-~]+$/;
/** Headers a caller may not set: mailroom writes them, or they belong to the servers on the way. */
const RESERVED_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'sender',
  'date',
  'message-id',
  'return-path',
  'received',
  'delivered-to',
  'dkim-signature',
  'domainkey-signature',
  'authentication-results',
  'received-spf',
  'arc-seal',
  'arc-message-signature',
  'arc-authentication-results',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'content-id',
]);
/** `Resent-From`, `Resent-Date` … (RFC 5322 §3.6.6) belong to a resend, never to a new message. */
const RESENT = /^resent-/i;
/**
 * Headers a provider's SMTP relay reads as instructions, not as part of the email: SendGrid's
 * `X-SMTPAPI` (more recipients, sandbox mode: "SMTP API", SendGrid docs), Mailgun's `X-Mailgun-*`
 * (`X-Mailgun-Drop-Message` drops it: "Sending via SMTP", Mailgun docs), Postmark's `X-PM-*`,
 * Amazon SES's `X-SES-*`. Through one transport they would change who gets the email, or whether
 * anyone does; through the others they would do nothing. mailroom's options say it once for all.
 */
const PROVIDER_CONTROL = /^(?:x-smtpapi$|x-mailgun-|x-pm-|x-ses-)/i;
/**
 * Custom headers whose value is a list of mailboxes that a reader's mail program or a server
 * writes to: read receipts (`Disposition-Notification-To`, RFC 8098 §2.1; the older
 * `Return-Receipt-To`), replies to a list (`Mail-Followup-To`, `Mail-Reply-To`) and bounces
 * (`Errors-To`). Each address is checked as `to`'s are and written back in RFC 5322 form.
 */
const ADDRESS_HEADERS = new Set([
  'disposition-notification-to',
  'return-receipt-to',
  'mail-followup-to',
  'mail-reply-to',
  'errors-to',
]);
const ATTACHMENT_KEYS = new Set(['filename', 'content', 'contentType', 'cid']);
const CALENDAR_KEYS = new Set(['content', 'method', 'filename']);
/** iTIP methods (RFC 5546 §1.4). */
const CALENDAR_METHODS = new Set([
  'PUBLISH',
  'REQUEST',
  'REPLY',
  'ADD',
  'CANCEL',
  'REFRESH',
  'COUNTER',
  'DECLINECOUNTER',
]);
// RFC 2045 §5.1: type "/" subtype *(";" attribute "=" value), value := token / quoted-string;
// a token is printable ASCII without spaces and tspecials ( ) < > @ , ; : \ " / [ ] ? =.
const TOKEN = "[!#$%&'*+\\-.0-9A-Z^_`a-z{|}~]+";
const QUOTED = '"(?:[ !#-\\[\\]-~]|\\\\[ -~])*"';
const CONTENT_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ ]*;[ ]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*$`);
const CID = /^[\w.@-]{1,200}$/;
const METADATA_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
const MESSAGE_ID = /^<[!-;=?-~]{1,200}@[A-Za-z0-9.-]{1,253}>$/;

/**
 * What is wrong with a string that is about to reach a header or a provider's field, or
 * `undefined` when nothing is. The one rule every such string passes, whatever its source
 * (message fields, template data, config): see {@link UNSAFE_TEXT}.
 */
export function unsafeText(value: string): string | undefined {
  const found = UNSAFE_TEXT.exec(value);
  if (found) {
    const what = /[\u202a-\u202e]/.test(found[0])
      ? 'bidirectional embeddings and overrides are not allowed'
      : 'control characters and line breaks are not allowed';
    return `${what} (${foundAt(found)})`;
  }
  if (!value.includes('=?')) return undefined;
  const word = ENCODED_WORD.exec(value);
  if (!word) return undefined;
  return `RFC 2047 encoded-words are not allowed (found "${word[0].slice(0, 40)}" at ${word.index}): give the text itself, it is encoded as needed`;
}

/** `found U+000A at 4`: the character a refusal matched, and where. */
function foundAt(match: RegExpExecArray): string {
  const code = match[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return `found U+${code} at ${match.index}`;
}

/**
 * An address given as configuration (a service's sender, an environment variable): checked as
 * {@link parseAddress} checks it, but a malformed one is a `ConfigError` naming `option`, since the
 * mistake is in the setup, not in one message.
 */
export function configAddress(input: AddressInput, option: string): Address {
  try {
    return parseAddress(input, option);
  } catch (error) {
    if (isMessageError(error)) throw new ConfigError(option, error.message.slice(error.field.length + 2));
    throw error;
  }
}

/**
 * Checks an address against a strict grammar and returns it normalised.
 * Refused: CR/LF and other control characters, quoted local parts, comments, groups, IP literals,
 * non-ASCII local parts, over-long parts. International domains become ASCII (punycode).
 */
export function parseAddress(input: AddressInput, field: string): Address {
  let name: string | undefined;
  let spec: string;
  if (typeof input === 'string') {
    const plain = plainAddress(input);
    if (plain !== undefined) return { address: plain };
    const unsafe = unsafeText(input);
    if (unsafe) throw new MessageError(field, unsafe);
    const named = NAMED.exec(input);
    if (named) {
      // A quoted name may escape `"` and `\` (RFC 5322 quoted-pair), as formatAddress writes them.
      name = (named[1]?.replace(/\\(.)/g, '$1') ?? named[2] ?? '').trim() || undefined;
      spec = named[3] ?? '';
    } else {
      spec = input.trim();
    }
  } else if (input && typeof input === 'object' && typeof input.address === 'string') {
    spec = input.address;
    if (input.name !== undefined) {
      if (typeof input.name !== 'string') throw new MessageError(`${field}.name`, 'must be a string');
      // Checked before trimming: trim() would quietly drop a trailing separator.
      const unsafe = unsafeText(input.name);
      if (unsafe) throw new MessageError(`${field}.name`, unsafe);
      name = input.name.trim() || undefined;
    }
  } else {
    throw new MessageError(field, 'expected an address string or { name, address }');
  }
  // The name's characters were checked above, with the input it came from.
  if (name !== undefined && name.length > MAX_NAME)
    throw new MessageError(`${field}.name`, `longer than ${MAX_NAME} characters`);
  const address = parseAddrSpec(spec, field);
  return name === undefined ? { address } : { name, address };
}

/** A plain address normalised as {@link parseAddrSpec} would, or undefined for anything else (checked the long way). */
function plainAddress(input: string): string | undefined {
  if (input.length > MAX_ADDRESS || !PLAIN_ADDRESS.test(input)) return undefined;
  const at = input.indexOf('@');
  if (at > MAX_LOCAL) return undefined;
  const domain = input.slice(at + 1);
  if (PUNYCODE_OR_NUMERIC_TOP.test(domain)) return undefined;
  return `${input.slice(0, at)}@${domain.toLowerCase()}`;
}

function parseAddrSpec(spec: string, field: string): string {
  if (spec.length === 0) throw new MessageError(field, 'empty address');
  if (SPACE_OR_CONTROL.test(spec))
    throw new MessageError(field, 'whitespace and control characters are not allowed');
  if (spec.length > MAX_ADDRESS) throw new MessageError(field, `longer than ${MAX_ADDRESS} characters`);
  const at = spec.lastIndexOf('@');
  if (at <= 0 || at === spec.length - 1) throw new MessageError(field, `"${spec}" is not an email address`);
  const local = spec.slice(0, at);
  const domain = spec.slice(at + 1);
  if (local.length > MAX_LOCAL)
    throw new MessageError(field, `local part longer than ${MAX_LOCAL} characters`);
  if (!LOCAL_PART.test(local)) {
    throw new MessageError(
      field,
      `"${spec}" has a local part that is not a plain dot-atom (quoted, comment or non-ASCII)`,
    );
  }
  if (ROUTING.test(local)) {
    throw new MessageError(
      field,
      `"${spec}" has a "${ROUTING.exec(local)?.[0]}" in its local part, which a mail server for ${domain} may read as a route to another host (the percent hack or a bang path): not accepted`,
    );
  }
  if (domain.startsWith('[')) throw new MessageError(field, 'IP-literal domains are not accepted');
  // The URL host parser below would percent-decode it (`acme%2eexample`): refused, never cleaned.
  if (domain.includes('%')) throw new MessageError(field, `"${domain}" is not a valid domain`);
  // Plain ASCII domains only need lower-casing; punycode and international ones go through the URL parser.
  const ascii =
    ASCII_DOMAIN.test(domain) && !/xn--/i.test(domain) ? domain.toLowerCase() : domainToASCII(domain);
  const labels = ascii.split('.');
  const valid =
    ascii.length > 0 &&
    ascii.length <= MAX_DOMAIN &&
    labels.length >= 2 &&
    labels.every((label) => LABEL.test(label)) &&
    !/^\d+$/.test(labels[labels.length - 1] ?? '');
  if (!valid) throw new MessageError(field, `"${domain}" is not a valid domain`);
  if (local.length + 1 + ascii.length > MAX_ADDRESS)
    throw new MessageError(field, `longer than ${MAX_ADDRESS} characters`);
  return `${local}@${ascii}`;
}

/** What absent lists and maps become: one frozen empty value, not a new one per message. */
const NONE: never[] = Object.freeze([]) as never[];
const NOTHING: Readonly<Record<string, never>> = Object.freeze({});

function parseAddressList(input: unknown, field: string): Address[] {
  if (input === undefined) return NONE;
  const list = Array.isArray(input) ? input : [input];
  return list.map((item, i) => parseAddress(item as AddressInput, `${field}[${i}]`));
}

function checkHeaderText(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string') throw new MessageError(field, 'must be a string');
  const unsafe = unsafeText(value);
  if (unsafe) throw new MessageError(field, unsafe);
  if (value.length > max) throw new MessageError(field, `longer than ${max} characters`);
  return value;
}

function checkHeaders(input: unknown): Record<string, string> {
  if (input === undefined) return NOTHING;
  if (typeof input !== 'object' || input === null) throw new MessageError('headers', 'must be an object');
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(input)) {
    const field = `headers.${key}`;
    if (!HEADER_NAME.test(key) || key === '__proto__')
      throw new MessageError(field, 'not a valid header name');
    if (key.length > MAX_HEADER_NAME)
      throw new MessageError(field, `header names are at most ${MAX_HEADER_NAME} characters`);
    const lower = key.toLowerCase();
    if (lower === 'message-id') {
      throw new MessageError(
        field,
        'set by mailroom; give idempotencyKey (or messageId) so every attempt carries the same Message-ID',
      );
    }
    if (PROVIDER_CONTROL.test(lower)) {
      throw new MessageError(
        field,
        "is a provider's instruction, which would change who gets the email, or whether anyone does, on one transport only; use mailroom's options (tags, metadata, sendAt, the transport's own options)",
      );
    }
    if (RESERVED_HEADERS.has(lower) || RESENT.test(lower)) {
      throw new MessageError(
        field,
        'set by mailroom or by the servers on the way; use the message field of that name where there is one',
      );
    }
    const text = checkHeaderText(value, field, MAX_SUBJECT);
    out[key] =
      lower === 'in-reply-to' || lower === 'references'
        ? checkMessageIds(text, field, lower)
        : ADDRESS_HEADERS.has(lower)
          ? checkAddressHeader(text, field)
          : text;
  }
  return out;
}

/** One of {@link ADDRESS_HEADERS}: its mailboxes, each parsed as an address field's, comma-separated. */
function checkAddressHeader(value: string, field: string): string {
  const entries = loadAddressParser()(value);
  if (entries.length === 0) throw new MessageError(field, 'must be one or more addresses');
  return entries
    .map((entry, i) => {
      if ('group' in entry) throw new MessageError(`${field}[${i}]`, 'must be an address, not a group');
      const address = parseAddress(
        entry.name ? { name: entry.name, address: entry.address } : entry.address,
        `${field}[${i}]`,
      );
      return formatAddress(address);
    })
    .join(', ');
}

/**
 * `In-Reply-To` (one message identifier) or `References` (one or more), RFC 5322 §3.6.4: each
 * `<id-left@id-right>` as {@link MESSAGE_ID} reads a Message-ID, separated by whitespace; written
 * back one space apart, as it goes on the wire.
 */
function checkMessageIds(value: string, field: string, name: 'in-reply-to' | 'references'): string {
  const ids = value.trim().split(/\s+/);
  const bad = ids.find((id) => !MESSAGE_ID.test(id));
  if (bad !== undefined || ids.length === 0 || (name === 'in-reply-to' && ids.length > 1)) {
    throw new MessageError(
      field,
      name === 'in-reply-to'
        ? 'must be one message identifier, <id@domain> (RFC 5322 §3.6.4)'
        : 'must be message identifiers, <id@domain>, separated by spaces (RFC 5322 §3.6.4)',
    );
  }
  return ids.join(' ');
}

function checkAttachments(input: unknown): Attachment[] {
  if (input === undefined) return NONE;
  if (!Array.isArray(input)) throw new MessageError('attachments', 'must be an array');
  return input.map((item: unknown, i) => {
    const field = `attachments[${i}]`;
    if (typeof item !== 'object' || item === null) throw new MessageError(field, 'must be an object');
    for (const key of Object.keys(item)) {
      if (!ATTACHMENT_KEYS.has(key)) {
        throw new MessageError(
          `${field}.${key}`,
          'not accepted: attachments carry content only, never a path or URL',
        );
      }
    }
    const { filename, content, contentType, cid } = item as Record<string, unknown>;
    checkFilename(filename, `${field}.filename`);
    if (typeof content !== 'string' && !(content instanceof Uint8Array)) {
      throw new MessageError(`${field}.content`, 'must be a string or bytes');
    }
    if (contentType !== undefined && (typeof contentType !== 'string' || !CONTENT_TYPE.test(contentType))) {
      throw new MessageError(
        `${field}.contentType`,
        'must be a MIME type such as "application/pdf" or "text/calendar; method=REQUEST" (RFC 2045 §5.1)',
      );
    }
    // A message or multipart "attachment" is written into the email's own structure: its headers
    // and parts would be read as the email's (RFC 2046 §5), and the file would vanish.
    if (typeof contentType === 'string' && /^(?:message|multipart)\//i.test(contentType)) {
      throw new MessageError(
        `${field}.contentType`,
        `${contentType.split(';')[0]} is not accepted for an attachment: it would become part of the email itself; send it as application/octet-stream`,
      );
    }
    if (cid !== undefined && (typeof cid !== 'string' || !CID.test(cid))) {
      throw new MessageError(`${field}.cid`, 'must be letters, digits and . _ @ - only');
    }
    return Object.freeze({
      filename: filename as string,
      content,
      // Guessed here, once, so that every transport (and the memory outbox) has the same type:
      // nodemailer's guess, which SMTP, sendmail and SES would make while the HTTP APIs would not.
      contentType:
        contentType === undefined
          ? loadMimeFuncs().detectMimeType(filename as string)
          : (contentType as string),
      ...(cid === undefined ? {} : { cid: cid as string }),
    });
  });
}

function checkTags(input: unknown): string[] {
  if (input === undefined) return NONE;
  if (!Array.isArray(input)) throw new MessageError('tags', 'must be an array of strings');
  if (input.length > MAX_TAGS) {
    throw new MessageError('tags', `at most ${MAX_TAGS} tags per message (Mailgun's documented limit)`);
  }
  return input.map((tag: unknown, i) => {
    const value = checkHeaderText(tag, `tags[${i}]`, MAX_TAG_LENGTH);
    if (value.trim() === '') throw new MessageError(`tags[${i}]`, 'must not be empty');
    // Mailgun strips other characters from a tag without a word: refuse them instead.
    if (!/^[ -~]+$/.test(value)) throw new MessageError(`tags[${i}]`, 'must be printable ASCII');
    return value;
  });
}

function checkCalendar(input: unknown): Required<CalendarEvent> | undefined {
  if (input === undefined) return undefined;
  if (typeof input !== 'object' || input === null)
    throw new MessageError('icalEvent', 'must be { content, method?, filename? }');
  for (const key of Object.keys(input)) {
    if (!CALENDAR_KEYS.has(key)) throw new MessageError(`icalEvent.${key}`, 'not accepted: content only');
  }
  const { content, method = 'REQUEST', filename = 'invite.ics' } = input as Record<string, unknown>;
  if (typeof content !== 'string' || !/^BEGIN:VCALENDAR\r?\n/i.test(content.trimStart())) {
    throw new MessageError('icalEvent.content', 'must be iCalendar text starting with BEGIN:VCALENDAR');
  }
  const upper = checkHeaderText(method, 'icalEvent.method', 32).toUpperCase();
  if (!CALENDAR_METHODS.has(upper)) {
    throw new MessageError('icalEvent.method', `must be one of ${[...CALENDAR_METHODS].join(', ')}`);
  }
  const stated = /^METHOD:([^\r\n]*)/im.exec(content)?.[1]?.trim().toUpperCase();
  if (stated !== undefined && stated !== upper) {
    throw new MessageError('icalEvent.method', `is ${upper} but the content says METHOD:${stated}`);
  }
  checkFilename(filename, 'icalEvent.filename');
  return Object.freeze({ content, method: upper, filename: filename as string });
}

function checkFilename(filename: unknown, field: string): void {
  checkHeaderText(filename, field, 255);
  const hidden = UNSAFE_IN_FILENAME.exec(filename as string);
  if (hidden) {
    throw new MessageError(
      field,
      `invisible and bidirectional control characters are not allowed in a file name (${foundAt(hidden)})`,
    );
  }
  if (filename === '' || /[/\\]/.test(filename as string) || filename === '.' || filename === '..') {
    throw new MessageError(field, 'must be a plain file name without directories');
  }
}

/**
 * `category` is where every provider's API gets the email's category (see `providerMetadata`):
 * a caller's own `metadata.category` may only say the same, on every transport alike.
 */
function checkMetadata(input: unknown, category: EmailCategory): Record<string, MetadataValue> {
  if (input === undefined) return NOTHING;
  if (typeof input !== 'object' || input === null) throw new MessageError('metadata', 'must be an object');
  const out: Record<string, MetadataValue> = {};
  for (const [key, value] of Object.entries(input)) {
    if (!METADATA_KEY.test(key))
      throw new MessageError(`metadata.${key}`, 'keys are letters, digits and . _ - only');
    if (key === '__proto__') throw new MessageError(`metadata.${key}`, 'is not accepted as a key');
    if (typeof value === 'string') checkHeaderText(value, `metadata.${key}`, MAX_SUBJECT);
    else if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new MessageError(`metadata.${key}`, 'must be a finite number');
    } else if (typeof value !== 'boolean') {
      throw new MessageError(`metadata.${key}`, 'must be a string, number or boolean');
    }
    if (key === 'category' && value !== category) {
      throw new MessageError(
        'metadata.category',
        `is where the email's category goes (${category}); set category instead, or use another key`,
      );
    }
    out[key] = value as MetadataValue;
  }
  return out;
}

function checkMessageId(input: unknown, key: string | undefined, sender: string): string {
  if (input !== undefined) {
    if (typeof input !== 'string' || !MESSAGE_ID.test(input))
      throw new MessageError('messageId', 'must look like <id@domain>');
    return input;
  }
  const domain = sender.slice(sender.lastIndexOf('@') + 1);
  if (key === undefined) return `<${randomUUID()}@${domain}>`;
  // A hash, so the key itself (which may name a user) never shows in a header.
  return `<${hash('sha256', key, 'hex').slice(0, 32)}@${domain}>`;
}

function checkIdempotencyKey(input: unknown): string | undefined {
  if (input === undefined) return undefined;
  if (typeof input !== 'string' || input.length === 0 || input.length > 256 || unsafeText(input)) {
    throw new MessageError(
      'idempotencyKey',
      'must be a string of 1 to 256 characters without control characters',
    );
  }
  return input;
}

function freezeList(list: Address[]): readonly Address[] {
  if (list.length === 0) return NONE;
  // Indexed: this runs for every list of every email, and for…of here made an iterator each time.
  for (let i = 0; i < list.length; i++) Object.freeze(list[i]);
  return Object.freeze(list);
}

/**
 * Validates input and returns an immutable {@link EmailMessage}.
 * Throws a {@link MessageError} naming the field on the first problem found.
 *
 * @example
 * ```ts
 * const message = createMessage({
 *   from: 'Acme <no-reply@acme.example>',
 *   to: 'jane@example.com',
 *   subject: 'Hello',
 *   text: 'Hi Jane',
 * });
 * ```
 */
export function createMessage(input: EmailMessageInput): EmailMessage {
  return composeMessage(input, undefined, undefined);
}

/**
 * Internal: {@link createMessage} with a default sender and Reply-To, so a service fills them in
 * without copying the caller's input (its other fields are read, never iterated), and the
 * service's size limit: the one place every path (direct, queued, worker) checks it.
 */
export function composeMessage(
  input: EmailMessageInput,
  defaultFrom: Readonly<Address> | undefined,
  defaultReplyTo: Address | undefined,
  maxBytes = Number.POSITIVE_INFINITY,
  parsed?: ParsedAddresses,
): EmailMessage {
  const message = buildMessage(input, defaultFrom, defaultReplyTo, parsed);
  // The exact size is counted only when the cheap ceiling (3 UTF-8 bytes per UTF-16 unit) is over the limit.
  if (maxBytes !== Number.POSITIVE_INFINITY && sizeOf(message, utf8Ceiling) > maxBytes) {
    const size = messageSize(message);
    if (size > maxBytes) {
      throw new MessageError(
        message.attachments.length || message.icalEvent ? 'attachments' : 'html',
        `the message is about ${size} bytes once encoded, over the limit of ${maxBytes} (maxMessageBytes)`,
      );
    }
  }
  return message;
}

/** Base64 with a CRLF every 76 characters, as MIME writes it (RFC 2045 §6.8). */
function base64Size(bytes: number): number {
  const encoded = Math.ceil(bytes / 3) * 4;
  return encoded + Math.ceil(encoded / 76) * 2;
}

function byteLength(value: string | Uint8Array): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
}

/** At least `byteLength(value)`, without reading the string: a UTF-16 code unit is at most 3 bytes of UTF-8. */
function utf8Ceiling(value: string | Uint8Array): number {
  return typeof value === 'string' ? value.length * 3 : value.byteLength;
}

/**
 * The size of a message as providers count it, in bytes, estimated without building it: bodies,
 * header values and the calendar part as UTF-8, attachments base64-encoded (4/3 of their size,
 * plus line breaks). The MIME structure adds a few hundred bytes more.
 */
export function messageSize(message: EmailMessage): number {
  return sizeOf(message, byteLength);
}

function sizeOf(message: EmailMessage, byteLength: (value: string | Uint8Array) => number): number {
  let size = byteLength(message.subject) + byteLength(message.html ?? '') + byteLength(message.text ?? '');
  // for…in: no array of entries per message (the headers are a plain object of own strings).
  const { headers } = message;
  for (const name in headers) size += name.length + byteLength(headers[name] as string) + 4;
  const { attachments } = message;
  for (let i = 0; i < attachments.length; i++) {
    size += base64Size(byteLength((attachments[i] as Attachment).content));
  }
  // nodemailer sends the invitation twice: as the calendar alternative and as the .ics file.
  if (message.icalEvent) size += 2 * base64Size(byteLength(message.icalEvent.content));
  return size;
}

/**
 * Internal: the addresses of `input`, already read by {@link parseAddress} in the same order and with
 * the same field names (the Kafka producer parses them once to write the envelope). Given, they are
 * taken as they are rather than parsed again; a list left out means the field is absent.
 */
export interface ParsedAddresses {
  readonly from: Address | undefined;
  readonly to: Address[];
  readonly cc: Address[] | undefined;
  readonly bcc: Address[] | undefined;
  readonly replyTo: Address[] | undefined;
}

function buildMessage(
  input: EmailMessageInput,
  defaultFrom: Readonly<Address> | undefined,
  defaultReplyTo: Address | undefined,
  parsed: ParsedAddresses | undefined,
): EmailMessage {
  if (typeof input !== 'object' || input === null)
    throw new TypeError('createMessage expects a message object');
  if (input.from === undefined && defaultFrom === undefined) {
    throw new MessageError('from', 'a sender is required');
  }
  // The default sender was checked when the service was made; only a given one is parsed here.
  const from =
    input.from === undefined ? (defaultFrom as Address) : (parsed?.from ?? parseAddress(input.from, 'from'));
  const to = parsed ? parsed.to : parseAddressList(input.to, 'to');
  if (to.length === 0) throw new MessageError('to', 'at least one recipient is required');
  const subject = checkHeaderText(input.subject, 'subject', MAX_SUBJECT);
  if (subject.trim() === '') throw new MessageError('subject', 'must not be empty');
  if (input.html === undefined && input.text === undefined)
    throw new MessageError('html', 'a message needs html or text');
  if (input.html !== undefined && typeof input.html !== 'string')
    throw new MessageError('html', 'must be a string');
  if (input.text !== undefined && typeof input.text !== 'string')
    throw new MessageError('text', 'must be a string');
  // A label, written into log lines, events, the sandbox's summary and the hold's store.
  if (input.template !== undefined) checkHeaderText(input.template, 'template', 200);
  const idempotencyKey = checkIdempotencyKey(input.idempotencyKey);
  const sendAt = input.sendAt === undefined ? undefined : futureSendAt(input.sendAt);
  const locale = checkLocale(input.locale);
  const category = checkCategory(input.category);
  let headers = checkHeaders(input.headers);
  if (locale && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-language')) {
    headers = { ...headers, 'Content-Language': locale };
  }
  const message: EmailMessage = {
    from: Object.isFrozen(from) ? from : Object.freeze(from),
    to: freezeList(to),
    cc: freezeList(parsed ? (parsed.cc ?? NONE) : parseAddressList(input.cc, 'cc')),
    bcc: freezeList(parsed ? (parsed.bcc ?? NONE) : parseAddressList(input.bcc, 'bcc')),
    replyTo: freezeList(parsed?.replyTo ?? parseAddressList(input.replyTo ?? defaultReplyTo, 'replyTo')),
    subject,
    html: input.html,
    text: input.text,
    headers: Object.freeze(headers),
    attachments: Object.freeze(checkAttachments(input.attachments)),
    tags: Object.freeze(checkTags(input.tags)),
    icalEvent: checkCalendar(input.icalEvent),
    metadata: Object.freeze(checkMetadata(input.metadata, category)),
    template: input.template,
    messageId: checkMessageId(input.messageId, idempotencyKey, from.address),
    idempotencyKey,
    category,
    locale,
  };
  // Present only when given and still ahead: most messages have no such property at all.
  if (sendAt !== undefined) (message as { sendAt?: Date }).sendAt = sendAt;
  return Object.freeze(message);
}

function checkLocale(locale: unknown): string | undefined {
  return locale === undefined
    ? undefined
    : requireLocale(locale, (problem) => new MessageError('locale', problem));
}

function checkCategory(category: unknown): EmailCategory {
  if (category === undefined) return 'transactional';
  if (!CATEGORIES.includes(category as EmailCategory))
    throw new MessageError('category', `must be one of ${CATEGORIES.join(', ')}`);
  return category as EmailCategory;
}

/** Formats an address for display or a header: `Jane Doe <jane@example.com>`. */
export function formatAddress(address: Address): string {
  if (!address.name) return address.address;
  const name = /^[\w .!#$%&'*+/=?^`{|}~-]*$/.test(address.name)
    ? address.name
    : `"${address.name.replace(/(["\\])/g, '\\$1')}"`;
  return `${name} <${address.address}>`;
}

/** Every recipient of a message: to, cc and bcc. */
export function allRecipients(message: EmailMessage): string[] {
  return [...message.to, ...message.cc, ...message.bcc].map((a) => a.address);
}

/**
 * Internal: what one attempt of a message carries besides the message itself. Kept beside the
 * frozen message, never in it, so it cannot leak into a queue record, a log line or a summary.
 */
interface Envelope {
  /** The Date header, fixed the first time a transport asks, so every attempt writes the same bytes. */
  readonly date?: Date;
  /** The recipients this attempt goes to (`RCPT TO`): a retry of the ones the provider deferred. */
  readonly to?: readonly string[];
}
const envelopes = new WeakMap<EmailMessage, Envelope>();

/** Internal: the Date header of a message, the same for every attempt (and every narrowed copy). */
export function messageDate(message: EmailMessage): Date {
  const envelope = envelopes.get(message);
  if (envelope?.date) return envelope.date;
  const date = new Date();
  envelopes.set(message, { ...envelope, date });
  return date;
}

/**
 * The addresses one attempt delivers to: every recipient (To, Cc, Bcc), or, on a retry of recipients
 * a server deferred, only those. For transport authors: a transport that sends to exactly these
 * (the SMTP envelope's `RCPT TO`), and never to the others, sets `narrowsRecipients: true`.
 *
 * @example
 * ```ts
 * const transport: Transport = {
 *   name: 'console',
 *   narrowsRecipients: true,
 *   async send(message) {
 *     const to = deliveryRecipients(message);
 *     console.log(to, message.subject);
 *     return { messageId: message.messageId, accepted: [...to], rejected: [], transport: 'console' };
 *   },
 * };
 * ```
 */
export function deliveryRecipients(message: EmailMessage): readonly string[] {
  return envelopeRecipients(message) ?? allRecipients(message);
}

/** Internal: the recipients this attempt goes to, when it goes to only some of the message's. */
export function envelopeRecipients(message: EmailMessage): readonly string[] | undefined {
  return envelopes.get(message)?.to;
}

/**
 * Internal: the message for a retry that goes to `to` only (recipients the provider deferred). The
 * headers, the Date and the Message-ID stay those of `message`: recipients who already have it
 * must not get it again, and the ones retried get the very message the others got.
 */
export function narrowEnvelope(message: EmailMessage, to: readonly string[]): EmailMessage {
  const narrowed: EmailMessage = Object.freeze({ ...message });
  envelopes.set(narrowed, { date: messageDate(message), to: Object.freeze([...to]) });
  return narrowed;
}

/**
 * Internal, for wrappers that rewrite a message (staging): gives `rewritten` the Date of `original`
 * and its narrowed recipients, those of them `rewritten` still has.
 */
export function keepEnvelope(original: EmailMessage, rewritten: EmailMessage): EmailMessage {
  const to = envelopeRecipients(original);
  const has = new Set(allRecipients(rewritten).map((a) => a.toLowerCase()));
  const kept = to?.filter((a) => has.has(a.toLowerCase()));
  envelopes.set(rewritten, { date: messageDate(original), ...(kept ? { to: Object.freeze(kept) } : {}) });
  return rewritten;
}

/** The header naming who the message was for. */
const ORIGINAL_RECIPIENTS = 'X-Mailroom-Original-Recipients';

/**
 * Internal, for the wrappers that send a message to others than its recipients (staging's redirect,
 * the hold's release to one address): the message's headers with {@link ORIGINAL_RECIPIENTS}
 * naming its To and Cc, never its Bcc (every recipient reads this header, and a blind copy must
 * stay blind: they are counted). One of that name the message had already, in any case, is
 * replaced, so there is only one.
 */
export function withOriginalRecipients(message: EmailMessage): Record<string, string> {
  const headers = Object.fromEntries(
    Object.entries(message.headers).filter(
      ([name]) => name.toLowerCase() !== ORIGINAL_RECIPIENTS.toLowerCase(),
    ),
  );
  const visible = [...message.to, ...message.cc].map((a) => a.address);
  const hidden = message.bcc.length;
  return {
    ...headers,
    [ORIGINAL_RECIPIENTS]: `${visible.join(', ')}${hidden ? `${visible.length ? ', ' : ''}(and ${hidden} blind ${hidden === 1 ? 'copy' : 'copies'})` : ''}`,
  };
}
