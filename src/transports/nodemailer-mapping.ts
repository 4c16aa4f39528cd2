/**
 * Internal: maps an EmailMessage to nodemailer's mail options, and builds the one byte sequence
 * every transport that speaks RFC 5322 uses (the SMTP transport's DATA, the sandbox's `.eml`).
 * The only way our messages reach nodemailer, so the hardening lives here: content-only
 * attachments, no caller-supplied raw messages, no custom envelopes, no `prepared` headers, and
 * file and URL access always off.
 */

import { createHmac, randomBytes } from 'node:crypto';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { loadMailComposer } from '../lazy-deps.js';
import { type Address, type EmailMessage, messageDate } from '../message.js';
import type { DkimSigner } from './dkim.js';

function toMailAddress(address: Address): Mail.Address {
  return { name: address.name ?? '', address: address.address };
}

/** nodemailer mail options for a validated message. Bcc stays in the envelope, never in the headers. */
function toNodemailerMail(message: EmailMessage, date: Date): Mail.Options {
  return {
    from: toMailAddress(message.from),
    to: message.to.map(toMailAddress),
    cc: message.cc.map(toMailAddress),
    replyTo: message.replyTo.length ? message.replyTo.map(toMailAddress) : undefined,
    subject: message.subject,
    text: message.text,
    html: message.html,
    headers: { ...message.headers },
    messageId: message.messageId,
    date,
    attachments: message.attachments.map((a) => ({
      filename: a.filename,
      content: typeof a.content === 'string' ? a.content : Buffer.from(a.content),
      contentType: a.contentType,
      cid: a.cid,
    })),
    // A text/calendar alternative (method=…) plus the same as an .ics file: what Gmail and
    // Outlook need to show an invitation with RSVP buttons.
    ...(message.icalEvent
      ? {
          icalEvent: {
            method: message.icalEvent.method,
            filename: message.icalEvent.filename,
            content: message.icalEvent.content,
          },
        }
      : {}),
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

// Keyed per process, so nobody who knows a Message-ID can predict the boundary and forge a part.
const BOUNDARY_KEY = randomBytes(32);

/**
 * The bytes a transport hands over for `message` (SMTP, sendmail, Amazon SES's raw MIME): its
 * source with the Date and the multipart boundaries fixed per message, so every attempt of it
 * sends the same bytes, signed by `dkim` when given.
 */
export async function wireBytes(message: EmailMessage, dkim?: DkimSigner): Promise<Buffer> {
  const boundary = createHmac('sha256', BOUNDARY_KEY).update(message.messageId).digest('hex').slice(0, 16);
  const source = await buildMime(message, messageDate(message), boundary);
  return dkim ? dkim.sign(source) : source;
}

/**
 * The RFC 5322 source of a message (multipart/alternative: text first, then HTML), with CRLF line
 * endings throughout. The SMTP transport sends exactly these bytes (DKIM signs them first) and the
 * sandbox writes them, so what a sandbox shows is what a server receives. MIME boundaries are
 * random unless `baseBoundary` fixes them, so two builds of one message differ there and in the
 * Date header only.
 */
export async function buildMime(message: EmailMessage, date: Date, baseBoundary?: string): Promise<Buffer> {
  const mail = {
    ...toNodemailerMail(message, date),
    ...(baseBoundary === undefined ? {} : { baseBoundary }),
  };
  return toCrlf(await new (loadMailComposer())(mail).compile().build());
}

const LINE_BREAK = /\r\n|\r|\n/g;

/**
 * Every line break as CRLF. nodemailer passes a bare CR or LF in a text or HTML body through
 * untouched (even inside quoted-printable); RFC 5322 forbids both, servers rewrite them in DATA,
 * and a DKIM body hash taken before that rewrite no longer matches what receivers see.
 */
export function toCrlf(source: Buffer): Buffer {
  // latin1 maps bytes to code units one to one, so multi-byte UTF-8 passes through unchanged.
  return Buffer.from(source.toString('latin1').replace(LINE_BREAK, '\r\n'), 'latin1');
}
