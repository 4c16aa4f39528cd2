/**
 * Internal: maps an EmailMessage to nodemailer's mail options. The only way our messages reach
 * nodemailer, so the hardening lives here: content-only attachments, no raw messages, no custom
 * envelopes, no `prepared` headers, and file and URL access always off.
 */

import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { Address, EmailMessage } from '../message.js';

function toMailAddress(address: Address): Mail.Address {
  return { name: address.name ?? '', address: address.address };
}

/** nodemailer mail options for a validated message. */
export function toNodemailerMail(message: EmailMessage, date = new Date()): Mail.Options {
  return {
    from: toMailAddress(message.from),
    to: message.to.map(toMailAddress),
    cc: message.cc.map(toMailAddress),
    bcc: message.bcc.map(toMailAddress),
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

/** Builds the RFC 5322 source of a message (multipart/alternative: text first, then HTML). */
export async function buildMime(message: EmailMessage, date = new Date()): Promise<Buffer> {
  // Bcc stays in the envelope, never in the headers of the stored source.
  const mail = { ...toNodemailerMail(message, date), bcc: undefined };
  return new MailComposer(mail).compile().build();
}
