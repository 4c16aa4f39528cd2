/**
 * A local HTTP server that answers `POST /emails` the way Resend's API reference describes:
 * `Authorization: Bearer <key>`, a JSON body, `200 {id}`, errors as `{statusCode, name, message}`,
 * and idempotency keys: a repeat of a key within 24 hours gets the first answer and sends nothing;
 * the same key with another body is refused (409 `invalid_idempotent_request`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { parseAddress } from '../../src/message.js';
import { type JsonAnswer, type JsonApiPeer, startJsonApiPeer } from './json-api-peer.js';
import type { ReceivedEmail } from './received.js';

export interface ResendPeerOptions {
  apiKey: string;
}

export interface ResendReceived {
  body: Record<string, unknown>;
  id: string;
  idempotencyKey: string | undefined;
}

export interface ResendPeer extends JsonApiPeer {
  messages: ResendReceived[];
  received(): ReceivedEmail[];
}

// "to: … Max 50."
const MAX_TO = 50;
const MAX_KEY = 256;

export async function startResendPeer(options: ResendPeerOptions): Promise<ResendPeer> {
  const seen = new Map<string, { hash: string; answer: JsonAnswer }>();
  const error = (statusCode: number, name: string, message: string): JsonAnswer => ({
    status: statusCode,
    body: { statusCode, name, message },
  });

  const handle = (headers: Record<string, string | string[] | undefined>, body: unknown): JsonAnswer => {
    const auth = headers.authorization;
    if (typeof auth !== 'string' || !auth.startsWith('Bearer ')) {
      return error(401, 'missing_api_key', 'Missing API key in the authorization header.');
    }
    if (auth.slice('Bearer '.length) !== options.apiKey)
      return error(403, 'invalid_api_key', 'API key is invalid.');
    const key = headers['idempotency-key'];
    if (typeof key === 'string' && (key.length === 0 || key.length > MAX_KEY)) {
      return error(400, 'invalid_idempotency_key', 'The key must be between 1-256 chars.');
    }
    if (typeof body !== 'object' || body === null)
      return error(422, 'validation_error', 'Invalid JSON body.');
    const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    if (typeof key === 'string') {
      const earlier = seen.get(key);
      if (earlier && earlier.hash !== hash) {
        return error(
          409,
          'invalid_idempotent_request',
          'Same idempotency key used with a different request payload. Change your idempotency key or payload.',
        );
      }
      if (earlier) return earlier.answer;
    }
    const fields = body as Record<string, unknown>;
    if (typeof fields.from !== 'string' || fields.from === '') {
      return error(422, 'missing_required_field', 'Missing `from` field.');
    }
    const to = typeof fields.to === 'string' ? [fields.to] : ((fields.to as string[] | undefined) ?? []);
    if (to.length === 0) return error(422, 'missing_required_field', 'Missing `to` field.');
    if (to.length > MAX_TO) return error(422, 'validation_error', `Too many recipients: max ${MAX_TO}.`);
    for (const address of [fields.from, ...to]) {
      try {
        parseAddress(address as string, 'to');
      } catch {
        return error(
          422,
          'validation_error',
          `Invalid \`to\` field. The email address needs to follow the \`email@example.com\` or \`Name <email@example.com>\` format.`,
        );
      }
    }
    for (const tag of (fields.tags as { name: string; value: string }[] | undefined) ?? []) {
      if (!/^[A-Za-z0-9_-]{1,256}$/.test(tag.name) || !/^[A-Za-z0-9_-]{1,256}$/.test(tag.value)) {
        return error(
          422,
          'validation_error',
          'Tags should only contain ASCII letters, numbers, underscores, or dashes.',
        );
      }
    }
    if (!fields.html && !fields.text)
      return error(422, 'validation_error', 'Missing `html` or `text` field.');
    const id = randomUUID();
    peer.messages.push({ body: fields, id, idempotencyKey: typeof key === 'string' ? key : undefined });
    const answer = { status: 200, body: { id } };
    if (typeof key === 'string') seen.set(key, { hash, answer });
    return answer;
  };

  const base = await startJsonApiPeer('/emails', handle, {
    statusCode: 404,
    name: 'not_found',
    message: 'The requested endpoint does not exist.',
  });
  const peer: ResendPeer = Object.assign(base, {
    messages: [] as ResendReceived[],
    received: () => peer.messages.map(({ body }) => received(body)),
  });
  return peer;
}

function received(body: Record<string, unknown>): ReceivedEmail {
  const addresses = (name: string) => {
    const value = body[name];
    const list = typeof value === 'string' ? [value] : ((value as string[] | undefined) ?? []);
    return list.map((a) => parseAddress(a, name));
  };
  const from = addresses('from')[0];
  const headers = Object.fromEntries(
    Object.entries((body.headers as Record<string, string> | undefined) ?? {}).map(([k, v]) => [
      k.toLowerCase(),
      v,
    ]),
  );
  const files =
    (body.attachments as { filename: string; content: string; content_type?: string }[] | undefined) ?? [];
  return {
    from: from?.address ?? '',
    fromName: from?.name,
    to: addresses('to').map((a) => a.address),
    cc: addresses('cc').map((a) => a.address),
    replyTo: addresses('reply_to').map((a) => a.address),
    subject: String(body.subject ?? ''),
    text: body.text as string | undefined,
    html: body.html as string | undefined,
    messageId: headers['message-id'],
    headers,
    attachments: files.map((f) => ({
      filename: f.filename,
      contentType: f.content_type ?? '',
      content: Buffer.from(f.content, 'base64'),
    })),
  };
}
