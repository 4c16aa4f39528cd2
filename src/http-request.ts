/**
 * Internal: reading a request body and answering in plain text, for the node:http handlers that
 * mount in node:http, Express and Fastify alike (the webhooks, the unsubscribe endpoint).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from './errors.js';

/**
 * The mounting mistake: a body parser ran first. `handler` names the handler in the advice
 * (`the webhook handler`).
 */
export function alreadyParsed(handler: string): ConfigError {
  return new ConfigError(
    'body',
    `the request body was already read or parsed (express.json() or similar): mount ${handler} before the body parser, or give it the raw bytes (express.raw({ type: "*/*" }))`,
  );
}

/**
 * Whether the body is still in the request's stream, whatever `req.body` holds. A parser that does
 * not take the request's type leaves it unread: Express 4's (body-parser 1.x) still set
 * `req.body = {}` on every request, and mark only a body they did read (`req._body = true`);
 * Express 5's leave `req.body` undefined.
 */
export function bodyUnread(req: IncomingMessage): boolean {
  return (req as { _body?: unknown })._body !== true && !req.readableDidRead && !req.readableEnded;
}

/**
 * The exact bytes of the body: as a raw-body middleware left them (`req.body` a Buffer or
 * string), else read from the request while it is unread (see `bodyUnread`; an empty object a
 * parser left there is no body). `'too-large'` past `max` bytes; a body already read and parsed
 * into something else, or read and dropped, is `alreadyParsed(handler)`.
 */
export async function rawBody(
  req: IncomingMessage,
  max: number,
  handler: string,
): Promise<Buffer | 'too-large'> {
  const given = (req as { body?: unknown }).body;
  if (Buffer.isBuffer(given)) return given.length > max ? 'too-large' : given;
  if (typeof given === 'string')
    return Buffer.byteLength(given) > max ? 'too-large' : Buffer.from(given, 'utf8');
  if (!bodyUnread(req)) throw alreadyParsed(handler);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) {
      req.resume();
      return 'too-large';
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Answers `status` with a plain-text body, marked `nosniff` so that no browser reads it as
 * anything but the text it says it is.
 */
export function reply(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}
