/**
 * The part every JSON email API peer (Postmark, Resend, SendGrid) shares: a node:http server on
 * 127.0.0.1, port 0, one endpoint, a log of every request with its outcome, and faults injected the
 * same way for each. The provider's peer decides what a request means (auth, validation, answer).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Ways the next requests fail. */
export type JsonApiFault =
  /** Answer with this status and body (and Retry-After if given) after reading the body; not recorded. */
  | { status: number; body: unknown; retryAfter?: string; headers?: Record<string, string> }
  /** Read the whole body, then destroy the socket without answering; not recorded. */
  | { drop: 'after-body' }
  /** Handle the request as usual (record it), then destroy the socket instead of answering. */
  | { drop: 'after-processing' }
  /** Wait this many ms, then (if the socket is still open) answer 503; not recorded. */
  | { delay: number };

/** What the provider's peer answers to one request. */
export interface JsonAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** One request the peer saw, faulted ones included. */
export interface JsonRequestLog {
  /** performance.now() on arrival. */
  at: number;
  status: number | 'dropped';
  /** The request headers, lower-cased names. */
  headers: IncomingMessage['headers'];
}

export interface JsonApiPeer {
  /** Base URL such as http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  requests: JsonRequestLog[];
  /** Distinct TCP connections accepted (keep-alive reuse). */
  connections: number;
  /** GET requests answered by `gets` (credential checks), not counted in `requests`. */
  checks: number;
  failNext(fault: JsonApiFault, times?: number): void;
  close(): Promise<void>;
}

const MAX_BODY = 50 * 1024 * 1024;

/**
 * Starts a peer whose `path` answers POSTs through `handle` (given the request headers, the body
 * parsed as JSON or `undefined` when it is not JSON, and the body as sent, for a peer that checks a
 * signature over it); other paths get 404 with `notFound`. Give
 * several peers one `faults` list to have the next request to any of them meet the next fault.
 * `gets` answers GET requests by path (a provider's credential check).
 */
export async function startJsonApiPeer(
  path: string,
  handle: (headers: IncomingMessage['headers'], body: unknown, raw: string) => JsonAnswer,
  notFound: unknown,
  faults: JsonApiFault[] = [],
  gets: Record<string, (headers: IncomingMessage['headers']) => JsonAnswer> = {},
): Promise<JsonApiPeer> {
  const stopping = new AbortController();

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = performance.now();
    const record = (status: number | 'dropped') => peer.requests.push({ at, status, headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://peer.invalid');
    const check = req.method === 'GET' ? gets[url.pathname] : undefined;
    if (check) {
      peer.checks++;
      await readBody(req);
      return reply(res, check(req.headers));
    }
    if (req.method !== 'POST' || url.pathname !== path) {
      await readBody(req);
      return reply(res, { status: 404, body: notFound });
    }
    const fault = faults.shift();
    if (fault && 'drop' in fault && fault.drop === 'after-body') {
      record('dropped');
      await readBody(req);
      req.socket.destroy();
      return;
    }
    if (fault && 'delay' in fault) {
      record(503);
      // close() aborts the wait, so the peer never hangs on a stalled request.
      await Promise.all([readBody(req), sleep(fault.delay, undefined, { signal: stopping.signal })]);
      if (!res.destroyed && !req.socket.destroyed)
        reply(res, { status: 503, body: { message: 'Unavailable' } });
      return;
    }
    if (fault && 'status' in fault) {
      record(fault.status);
      await readBody(req);
      return reply(res, {
        status: fault.status,
        body: fault.body,
        headers: { ...fault.headers, ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) },
      });
    }
    const raw = await readBody(req);
    let body: unknown;
    try {
      body =
        raw && /^application\/json\b/i.test(req.headers['content-type'] ?? '') ? JSON.parse(raw) : undefined;
    } catch {
      body = undefined;
    }
    const answer =
      raw === undefined
        ? { status: 413, body: { message: 'Payload too large' } }
        : handle(req.headers, body, raw);
    if (fault && 'drop' in fault) {
      record('dropped');
      req.socket.destroy();
      return;
    }
    record(answer.status);
    reply(res, answer);
  }

  const server = createServer((req, res) => {
    // A client that hangs up mid-request must not take the peer down.
    serve(req, res).catch(() => res.destroy());
  });
  server.on('connection', () => {
    peer.connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const peer: JsonApiPeer = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    connections: 0,
    checks: 0,
    failNext(fault, times = 1) {
      for (let i = 0; i < times; i++) faults.push(fault);
    },
    close() {
      stopping.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return closed;
    },
  };
  return peer;
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  }
  return size > MAX_BODY ? undefined : Buffer.concat(chunks).toString('utf8');
}

function reply(res: ServerResponse, { status, body, headers = {} }: JsonAnswer): void {
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8';
  res.writeHead(status, { 'content-type': type, ...headers }).end(text);
}

/** Splits `Name <a@x>, b@y` (the Postmark and Resend way of writing several) into addresses, quotes respected. */
export function splitAddresses(list: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (c === '\\' && quoted) {
      current += c + (list[++i] ?? '');
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      if (current.trim()) out.push(current.trim());
      current = '';
      continue;
    }
    current += c;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}
