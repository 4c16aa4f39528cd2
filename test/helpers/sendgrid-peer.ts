/**
 * A local HTTP server that answers `POST /v3/mail/send` the way SendGrid's v3 Mail Send reference
 * describes: `Authorization: Bearer <key>`, a JSON body, `202 Accepted` with an empty body and an
 * `X-Message-Id` header, `200` without delivery in sandbox mode, and refusals as
 * `{ errors: [{ message, field, help }] }`.
 */
import { randomBytes } from 'node:crypto';
import { type JsonAnswer, type JsonApiPeer, startJsonApiPeer } from './json-api-peer.js';
import type { ReceivedEmail } from './received.js';

export interface SendgridPeerOptions {
  apiKey: string;
  /** The key's scopes, as GET /v3/scopes lists them. Default ['mail.send']. */
  scopes?: string[];
}

export interface SendgridReceived {
  body: Record<string, unknown>;
  id: string;
}

export interface SendgridPeer extends JsonApiPeer {
  messages: SendgridReceived[];
  /** Requests accepted in sandbox mode: validated, not delivered. */
  sandboxed: Record<string, unknown>[];
  received(): ReceivedEmail[];
}

interface Person {
  email: string;
  name?: string;
}

// "The total number of recipients must be no more than 1000", "categories … no more than 10".
const MAX_RECIPIENTS = 1000;
const MAX_CATEGORIES = 10;
// Headers SendGrid does not let a request set ("headers" in the Mail Send reference).
const RESERVED = new Set([
  'x-sg-id',
  'x-sg-eid',
  'received',
  'dkim-signature',
  'content-type',
  'content-transfer-encoding',
  'to',
  'from',
  'subject',
  'reply-to',
  'cc',
  'bcc',
]);

export async function startSendgridPeer(options: SendgridPeerOptions): Promise<SendgridPeer> {
  const refuse = (status: number, message: string, field: string | null = null): JsonAnswer => ({
    status,
    body: { errors: [{ message, field, help: null }] },
  });

  const handle = (headers: Record<string, string | string[] | undefined>, body: unknown): JsonAnswer => {
    if (headers.authorization !== `Bearer ${options.apiKey}`) {
      return refuse(401, 'The provided authorization grant is invalid, expired, or revoked');
    }
    if (typeof body !== 'object' || body === null) return refuse(400, 'Bad Request');
    const fields = body as Record<string, unknown>;
    const people = (fields.personalizations as Record<string, Person[] | undefined>[] | undefined) ?? [];
    if (people.length === 0)
      return refuse(400, 'The personalizations field is required.', 'personalizations');
    let total = 0;
    for (const [i, p] of people.entries()) {
      if (!p.to?.length)
        return refuse(
          400,
          'The to array is required for all personalization objects.',
          `personalizations.${i}.to`,
        );
      const seen = new Set<string>();
      for (const kind of ['to', 'cc', 'bcc']) {
        for (const person of p[kind] ?? []) {
          total++;
          const email = person.email?.toLowerCase();
          if (!email?.includes('@'))
            return refuse(400, 'Does not contain a valid address.', `personalizations.${i}.${kind}`);
          if (seen.has(email)) {
            return refuse(
              400,
              `Each email address in the personalization block should be unique between to, cc, and bcc. We found the first duplicate instance of [${email}] in the personalizations.${i}.${kind} field.`,
              `personalizations.${i}.${kind}`,
            );
          }
          seen.add(email);
        }
      }
    }
    if (total > MAX_RECIPIENTS) return refuse(400, 'Too many recipients.', 'personalizations');
    if (!(fields.from as Person | undefined)?.email)
      return refuse(400, 'The from object must be provided for every email send.', 'from');
    if (typeof fields.subject !== 'string' || fields.subject === '')
      return refuse(400, 'The subject is required.', 'subject');
    if (fields.reply_to && fields.reply_to_list) {
      return refuse(400, 'The reply_to and reply_to_list fields cannot be used together.', 'reply_to_list');
    }
    const content = (fields.content as { type: string; value: string }[] | undefined) ?? [];
    if (content.length === 0 || content.some((c) => !c.value)) {
      return refuse(400, 'The content value must be a string at least one character in length.', 'content');
    }
    const plain = content.findIndex((c) => c.type === 'text/plain');
    if (plain > 0) return refuse(400, 'The text/plain content type must be first.', 'content');
    for (const name of Object.keys((fields.headers as Record<string, string> | undefined) ?? {})) {
      if (RESERVED.has(name.toLowerCase())) return refuse(400, `The header ${name} is reserved.`, 'headers');
    }
    const categories = (fields.categories as string[] | undefined) ?? [];
    if (categories.length > MAX_CATEGORIES) return refuse(400, 'Too many categories.', 'categories');
    for (const file of (fields.attachments as Record<string, string>[] | undefined) ?? []) {
      if (!file.content || !file.filename)
        return refuse(400, 'The attachment content and filename are required.', 'attachments');
      if (file.disposition === 'inline' && !file.content_id) {
        return refuse(
          400,
          'The content_id parameter is required when the disposition is inline.',
          'attachments',
        );
      }
    }
    const sandbox = (fields.mail_settings as { sandbox_mode?: { enable?: boolean } } | undefined)
      ?.sandbox_mode;
    if (sandbox?.enable) {
      peer.sandboxed.push(fields);
      return { status: 200 };
    }
    const id = randomBytes(16).toString('base64url').slice(0, 22);
    peer.messages.push({ body: fields, id });
    return { status: 202, headers: { 'x-message-id': id } };
  };

  // GET /v3/scopes: what the key may do ("Retrieve a list of scopes for which this user has access").
  const scopes = (headers: Record<string, string | string[] | undefined>): JsonAnswer =>
    headers.authorization === `Bearer ${options.apiKey}`
      ? { status: 200, body: { scopes: options.scopes ?? ['mail.send'] } }
      : refuse(401, 'authorization required');
  const base = await startJsonApiPeer(
    '/v3/mail/send',
    handle,
    { errors: [{ message: 'resource not found', field: null, help: null }] },
    [],
    { '/v3/scopes': scopes },
  );
  const peer: SendgridPeer = Object.assign(base, {
    messages: [] as SendgridReceived[],
    sandboxed: [] as Record<string, unknown>[],
    received: () => peer.messages.map(({ body }) => received(body)),
  });
  return peer;
}

function received(body: Record<string, unknown>): ReceivedEmail {
  const p = (body.personalizations as Record<string, Person[] | undefined>[])[0] ?? {};
  const from = body.from as Person;
  const replyTo = body.reply_to_list
    ? (body.reply_to_list as Person[])
    : body.reply_to
      ? [body.reply_to as Person]
      : [];
  const content = (body.content as { type: string; value: string }[] | undefined) ?? [];
  const headers = Object.fromEntries(
    Object.entries((body.headers as Record<string, string> | undefined) ?? {}).map(([k, v]) => [
      k.toLowerCase(),
      v,
    ]),
  );
  const files = (body.attachments as Record<string, string>[] | undefined) ?? [];
  return {
    from: from.email,
    fromName: from.name,
    to: (p.to ?? []).map((x) => x.email),
    cc: (p.cc ?? []).map((x) => x.email),
    replyTo: replyTo.map((x) => x.email),
    subject: String(body.subject ?? ''),
    text: content.find((c) => c.type === 'text/plain')?.value,
    html: content.find((c) => c.type === 'text/html')?.value,
    messageId: headers['message-id'],
    headers,
    attachments: files.map((f) => ({
      filename: f.filename ?? '',
      contentType: f.type ?? '',
      content: Buffer.from(f.content ?? '', 'base64'),
    })),
  };
}
