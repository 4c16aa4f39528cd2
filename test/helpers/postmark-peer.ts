/**
 * A local HTTP server that answers `POST /email` the way Postmark's Email API reference describes:
 * the `X-Postmark-Server-Token` header, a JSON body, `200 {To, SubmittedAt, MessageID, ErrorCode: 0,
 * Message: "OK"}`, and refusals as `401`/`422 {ErrorCode, Message}` with Postmark's documented codes.
 */
import { randomUUID } from 'node:crypto';
import { parseAddress } from '../../src/message.js';
import {
  type JsonAnswer,
  type JsonApiFault,
  type JsonApiPeer,
  splitAddresses,
  startJsonApiPeer,
} from './json-api-peer.js';
import type { ReceivedEmail } from './received.js';

export interface PostmarkPeerOptions {
  serverToken: string;
  /** Message streams that exist. Default ['outbound', 'broadcast']. */
  streams?: string[];
  /** Addresses marked inactive (hard bounce, spam complaint): sending to any of them is refused (406). */
  inactive?: string[];
  /** A fault list shared with other peers (see startJsonApiPeer). */
  faults?: JsonApiFault[];
}

/** What the peer accepted: the request body as sent, and the id it answered. */
export interface PostmarkReceived {
  body: Record<string, unknown>;
  id: string;
}

export interface PostmarkPeer extends JsonApiPeer {
  messages: PostmarkReceived[];
  /** The accepted messages in the contract's comparable shape. */
  received(): ReceivedEmail[];
}

// "Maximum of 50 recipients allowed per email message": To, Cc and Bcc together.
const MAX_RECIPIENTS = 50;
// Postmark refuses these file types (ErrorCode 411); the list is longer, these are enough to test.
const FORBIDDEN = /\.(exe|bat|cmd|com|vbs|js|jar|msi|scr)$/i;

export async function startPostmarkPeer(options: PostmarkPeerOptions): Promise<PostmarkPeer> {
  const streams = options.streams ?? ['outbound', 'broadcast'];
  const inactive = new Set((options.inactive ?? []).map((a) => a.toLowerCase()));
  const refuse = (ErrorCode: number, Message: string, status = 422): JsonAnswer => ({
    status,
    body: { ErrorCode, Message },
  });

  const handle = (headers: Record<string, string | string[] | undefined>, body: unknown): JsonAnswer => {
    if (headers['x-postmark-server-token'] !== options.serverToken) {
      return refuse(10, 'Request does not contain a valid Server token.', 401);
    }
    if (typeof body !== 'object' || body === null) return refuse(402, 'Received invalid JSON input.');
    const fields = body as Record<string, unknown>;
    const addresses = (name: string) =>
      typeof fields[name] === 'string' ? splitAddresses(fields[name] as string) : [];
    if (typeof fields.From !== 'string' || fields.From.trim() === '') {
      return refuse(300, "Invalid 'From' address: ''.");
    }
    const recipients = [...addresses('To'), ...addresses('Cc'), ...addresses('Bcc')];
    if (recipients.length === 0) return refuse(300, 'Zero recipients specified');
    if (recipients.length > MAX_RECIPIENTS) {
      return refuse(300, `Maximum of ${MAX_RECIPIENTS} recipients allowed per email message`);
    }
    for (const r of recipients) {
      try {
        parseAddress(r, 'To');
      } catch {
        return refuse(300, `Error parsing 'To': Illegal email address '${r}'.`);
      }
    }
    if (!fields.TextBody && !fields.HtmlBody)
      return refuse(300, 'Provide either email TextBody or HtmlBody or both.');
    const stream = fields.MessageStream ?? 'outbound';
    if (typeof stream !== 'string' || !streams.includes(stream)) {
      return refuse(1235, `The message stream for the provided 'ID' (${String(stream)}) was not found.`);
    }
    const blocked = recipients
      .map((r) => parseAddress(r, 'To').address)
      .filter((a) => inactive.has(a.toLowerCase()));
    if (blocked.length) {
      return refuse(
        406,
        `You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: ${blocked.join(', ')}.`,
      );
    }
    const files = (fields.Attachments as { Name?: unknown }[] | undefined) ?? [];
    const bad = files.find((f) => typeof f.Name === 'string' && FORBIDDEN.test(f.Name));
    if (bad) return refuse(411, `Forbidden attachment type: ${String(bad.Name)}`);
    const id = randomUUID();
    peer.messages.push({ body: fields, id });
    return {
      status: 200,
      body: {
        To: fields.To,
        SubmittedAt: new Date().toISOString(),
        MessageID: id,
        ErrorCode: 0,
        Message: 'OK',
      },
    };
  };

  // GET /server: the server's settings, with the server token ("Get the server").
  const server = (headers: Record<string, string | string[] | undefined>): JsonAnswer =>
    headers['x-postmark-server-token'] === options.serverToken
      ? { status: 200, body: { ID: 1, Name: 'Acme transactional', DeliveryType: 'Live' } }
      : refuse(10, 'Request does not contain a valid Server token.', 401);
  const base = await startJsonApiPeer(
    '/email',
    handle,
    { ErrorCode: 404, Message: 'Not found' },
    options.faults,
    { '/server': server },
  );
  const peer: PostmarkPeer = Object.assign(base, {
    messages: [] as PostmarkReceived[],
    received: () => peer.messages.map(({ body }) => received(body)),
  });
  return peer;
}

function received(body: Record<string, unknown>): ReceivedEmail {
  const addresses = (name: string) =>
    typeof body[name] === 'string'
      ? splitAddresses(body[name] as string).map((a) => parseAddress(a, name))
      : [];
  const from = addresses('From')[0];
  const headerList = (body.Headers as { Name: string; Value: string }[] | undefined) ?? [];
  const headers = Object.fromEntries(headerList.map((h) => [h.Name.toLowerCase(), h.Value]));
  const files =
    (body.Attachments as { Name: string; Content: string; ContentType: string }[] | undefined) ?? [];
  return {
    from: from?.address ?? '',
    fromName: from?.name,
    to: addresses('To').map((a) => a.address),
    cc: addresses('Cc').map((a) => a.address),
    replyTo: addresses('ReplyTo').map((a) => a.address),
    subject: String(body.Subject ?? ''),
    text: body.TextBody as string | undefined,
    html: body.HtmlBody as string | undefined,
    messageId: headers['message-id'],
    headers,
    attachments: files.map((f) => ({
      filename: f.Name,
      contentType: f.ContentType,
      content: Buffer.from(f.Content, 'base64'),
    })),
  };
}
