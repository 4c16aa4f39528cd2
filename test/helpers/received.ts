/** What a transport's peer (an outbox, a folder, a server) received, in one comparable shape. */
import PostalMime from 'postal-mime';
import type { EmailMessage } from '../../src/message.js';

export interface ReceivedEmail {
  from: string;
  fromName: string | undefined;
  to: string[];
  cc: string[];
  replyTo: string[];
  subject: string;
  text: string | undefined;
  html: string | undefined;
  messageId: string | undefined;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  attachments: { filename: string; contentType: string; content: Buffer }[];
}

/** Parses an RFC 5322 message the way a mail client would. */
export async function fromMime(raw: Buffer | string): Promise<ReceivedEmail> {
  const email = await PostalMime.parse(raw, { attachmentEncoding: 'arraybuffer' });
  const list = (addresses: typeof email.to) =>
    (addresses ?? []).flatMap((a) => ('address' in a && a.address ? [a.address] : []));
  return {
    from: (email.from && 'address' in email.from ? email.from.address : '') ?? '',
    fromName: (email.from && 'name' in email.from ? email.from.name : undefined) || undefined,
    to: list(email.to),
    cc: list(email.cc),
    replyTo: list(email.replyTo),
    subject: email.subject ?? '',
    text: email.text?.replace(/\r\n/g, '\n').replace(/\n$/, ''),
    html: email.html?.replace(/\r\n/g, '\n').replace(/\n$/, ''),
    messageId: email.messageId,
    headers: Object.fromEntries(email.headers.map((h) => [h.key.toLowerCase(), h.value])),
    attachments: email.attachments.map((a) => ({
      filename: a.filename ?? '',
      contentType: a.mimeType,
      content: Buffer.from(a.content as ArrayBuffer),
    })),
  };
}

/** The same shape straight from a message object (the memory transport's peer is the message itself). */
export function fromMessage(message: EmailMessage): ReceivedEmail {
  return {
    from: message.from.address,
    fromName: message.from.name,
    to: message.to.map((a) => a.address),
    cc: message.cc.map((a) => a.address),
    replyTo: message.replyTo.map((a) => a.address),
    subject: message.subject,
    text: message.text,
    html: message.html,
    messageId: message.messageId,
    headers: Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k.toLowerCase(), v])),
    attachments: message.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType ?? '',
      content: Buffer.from(a.content),
    })),
  };
}
