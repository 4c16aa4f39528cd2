/**
 * A local HTTP server that answers `POST /v3/{domain_name}/messages` the way Mailgun's API reference
 * describes it, records what it accepted, and misbehaves on request (faults) for retry tests.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';

export interface MailgunPeerOptions {
  /** The API key that Basic auth must carry as `api:<key>`. */
  apiKey: string;
  /** Sending domains that exist; others get 404. Default ['mg.acme.example']. */
  domains?: string[];
  /** How far ahead `o:deliverytime` may be, in days (Mailgun: 3, or 7 on plans that store 7+ days). Default 3. */
  maxScheduleDays?: number;
}

export type MailgunFault =
  /** Answer with this status (and Retry-After if given) after reading the body; not recorded. */
  | { status: number; retryAfter?: string; body?: string }
  /** Read the complete request body, then destroy the socket without answering; not recorded. */
  | { drop: 'after-body' }
  /** Wait this many ms, then (if the socket is still open) answer 503; not recorded. */
  | { delay: number };

export interface MailgunFile {
  field: 'attachment' | 'inline';
  filename: string;
  contentType: string;
  content: Buffer;
}

export interface MailgunReceived {
  domain: string;
  /** Every non-file field, multi-valued, in order (e.g. fields['to'] may have several entries; fields['o:tag']). */
  fields: Record<string, string[]>;
  files: MailgunFile[];
  /** The request's Content-Type media type: 'multipart/form-data' or 'application/x-www-form-urlencoded'. */
  encoding: string;
  /** The id returned to the client. */
  id: string;
  /** performance.now() when the request arrived. */
  at: number;
}

export interface MailgunPeer {
  /** Base URL such as http://127.0.0.1:PORT (no trailing slash); clients call `${url}/v3/${domain}/messages`. */
  url: string;
  messages: MailgunReceived[];
  /** Every POST to a messages endpoint, including faulted and refused ones, with its arrival time. */
  requests: { at: number; status: number | 'dropped' }[];
  /** Distinct TCP connections accepted (to check keep-alive reuse). */
  connections: number;
  failNext(fault: MailgunFault, times?: number): void;
  close(): Promise<void>;
}

// "The maximum message size Mailgun supports is 25MB"; for gzip bodies it is the uncompressed size.
const MAX_BODY = 25 * 1024 * 1024;
// The user manual: "A single message may be marked with up to 3 tags." (Mailgun's help centre now says 10.)
const MAX_TAGS = 3;
// "Send options (parameters starting with o:, h:, v:, or t:) are limited to 16KB total".
const MAX_OPTIONS = 16 * 1024;
const BODY_PARTS = ['text', 'html', 'amp-html', 'template'];
// Batch Sending: "The maximum number of recipients allowed for batch is 1,000".
const MAX_RECIPIENTS = 1000;
// RFC 2822 §3.3 date-time: day name, day, month, year, time with seconds, and a numeric zone (or GMT, obs-zone).
const RFC2822 =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} (?:[+-]\d{4}|GMT)$/;
const ENDPOINT = /^\/v3\/([^/]+)\/messages$/;

export async function startMailgunPeer(options: MailgunPeerOptions): Promise<MailgunPeer> {
  const domains = options.domains ?? ['mg.acme.example'];
  const credentials = `api:${options.apiKey}`;
  const faults: MailgunFault[] = [];
  const stopping = new AbortController();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = performance.now();
    const path = new URL(req.url ?? '/', 'http://peer.invalid').pathname;
    const match = req.method === 'POST' ? ENDPOINT.exec(path) : null;
    if (!match) {
      // Mailgun: a 404 without JSON "is usually a sign that there was a mistake in the API request".
      await readBody(req);
      return reply(res, 404, 'Not Found');
    }
    const record = (status: number | 'dropped') => peer.requests.push({ at, status });

    const fault = faults.shift();
    if (fault && 'drop' in fault) {
      record('dropped');
      await readBody(req);
      req.socket.destroy();
      return;
    }
    if (fault && 'delay' in fault) {
      record(503);
      // close() aborts the wait (the handler then just ends), so it never hangs on a stalled request.
      await Promise.all([readBody(req), sleep(fault.delay, undefined, { signal: stopping.signal })]);
      if (!res.destroyed && !req.socket.destroyed) reply(res, 503, json(STATUS_CODES[503]));
      return;
    }
    if (fault) {
      record(fault.status);
      await readBody(req);
      const body = fault.body ?? json(STATUS_CODES[fault.status] ?? 'Error');
      return reply(res, fault.status, body, fault.retryAfter ? { 'retry-after': fault.retryAfter } : {});
    }

    const answer = (status: number, body: string, headers: Record<string, string> = {}) => {
      record(status);
      reply(res, status, body, headers);
    };
    const body = decode(await readBody(req), req.headers['content-encoding']);
    if (body === 'too large') return answer(413, json('Message size exceeds the 25MB limit'));
    if (!authorized(req.headers.authorization, credentials)) return answer(401, 'Forbidden');
    const domain = decodeURIComponent(match[1]!);
    if (!domains.includes(domain)) return answer(404, json(`Domain not found: ${domain}`));
    const parsed = body && (await parse(req.headers['content-type'], body).catch(() => undefined));
    if (!parsed) return answer(400, json('The request body could not be read as form data'));
    const refusal = refuse(parsed.fields, options.maxScheduleDays ?? 3);
    if (refusal) return answer(400, json(refusal));

    const id = `<${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}.${randomBytes(8).toString('hex')}@${domain}>`;
    peer.messages.push({ domain, ...parsed, id, at });
    answer(200, JSON.stringify({ id, message: 'Queued. Thank you.' }));
  }

  const server = createServer((req, res) => {
    // A client that hangs up mid-request must not take the peer down.
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', () => {
    peer.connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const peer: MailgunPeer = {
    url: `http://127.0.0.1:${port}`,
    messages: [],
    requests: [],
    connections: 0,
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

/** The whole body, or undefined once it passes 25 MB (still drained, so the answer can be read). */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  }
  return size > MAX_BODY ? undefined : Buffer.concat(chunks);
}

/** "Mailgun does support receiving GZIP-compressed HTTP bodies if the Content-Encoding: gzip header is present". */
function decode(raw: Buffer | undefined, encoding: string | undefined): Buffer | 'too large' | undefined {
  if (!raw) return 'too large';
  if (encoding?.trim().toLowerCase() !== 'gzip') return raw;
  try {
    return gunzipSync(raw, { maxOutputLength: MAX_BODY });
  } catch (error) {
    return error instanceof RangeError ? 'too large' : undefined;
  }
}

function authorized(header: string | undefined, credentials: string): boolean {
  const [scheme, token] = header?.split(' ') ?? [];
  return scheme?.toLowerCase() === 'basic' && Buffer.from(token ?? '', 'base64').toString() === credentials;
}

async function parse(contentType: string | undefined, body: Buffer) {
  const encoding = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  const fields: Record<string, string[]> = {};
  const files: MailgunFile[] = [];
  // Any other body (JSON, none) carries no parameters, so validation names what is missing.
  if (encoding === 'multipart/form-data' || encoding === 'application/x-www-form-urlencoded') {
    const request = new Request('http://peer.invalid/', {
      method: 'POST',
      headers: { 'content-type': contentType! },
      body,
    });
    for (const [name, value] of await request.formData()) {
      if (typeof value !== 'string' && (name === 'attachment' || name === 'inline')) {
        const content = Buffer.from(await value.arrayBuffer());
        files.push({ field: name, filename: value.name, contentType: value.type, content });
      } else {
        fields[name] = [...(fields[name] ?? []), typeof value === 'string' ? value : await value.text()];
      }
    }
  }
  return { encoding, fields, files };
}

/** Mailgun's 400 message for parameters it would refuse, if any. */
function refuse(fields: Record<string, string[]>, maxScheduleDays: number): string | undefined {
  const has = (name: string) => fields[name]?.some((value) => value.trim() !== '') ?? false;
  if (!has('from')) return 'from parameter is missing';
  if (!has('to')) return 'to parameter is missing';
  if (!BODY_PARTS.some(has)) {
    return "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified";
  }
  if ((fields['o:tag']?.length ?? 0) > MAX_TAGS) return `Too many tags; max is ${MAX_TAGS}`;
  const recipients = ['to', 'cc', 'bcc'].reduce(
    (n, name) => n + (fields[name] ?? []).flatMap(split).length,
    0,
  );
  if (recipients > MAX_RECIPIENTS) return `Too many recipients; max is ${MAX_RECIPIENTS}`;
  const variables = fields['recipient-variables'];
  if (variables !== undefined && !recipientVariables(variables)) {
    return "'recipient-variables' parameter is not a valid JSON";
  }
  // "o:deliverytime: Desired time of delivery … in RFC 2822 format", at most the plan's days ahead.
  const deliveryTime = fields['o:deliverytime'];
  if (deliveryTime !== undefined) {
    const text = deliveryTime[0] ?? '';
    if (deliveryTime.length !== 1 || !RFC2822.test(text) || Number.isNaN(Date.parse(text)))
      return "o:deliverytime: invalid date format, must be RFC 2822 (e.g. 'Thu, 13 Oct 2011 18:02:00 +0000')";
    if (Date.parse(text) - Date.now() > maxScheduleDays * 86_400_000)
      return `o:deliverytime: delivery can be scheduled at most ${maxScheduleDays} days in advance`;
  }
  const options = Object.entries(fields)
    .filter(([name]) => /^[ohvt]:/.test(name))
    .reduce((sum, [name, values]) => sum + values.reduce((n, v) => n + Buffer.byteLength(name + v), 0), 0);
  if (options > MAX_OPTIONS) {
    return 'Send options (parameters starting with o:, h:, v:, or t:) are limited to 16 kB total';
  }
  return undefined;
}

/**
 * Batch Sending: "a valid JSON-encoded dictionary, where key is a plain recipient address and value
 * is a dictionary with variables". Mailgun refuses `[]` as a value since 2022 (mailgun-php #825).
 */
export function recipientVariables(
  values: readonly string[],
): Record<string, Record<string, unknown>> | undefined {
  if (values.length !== 1) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(values[0]!);
  } catch {
    return undefined;
  }
  const isDictionary = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isDictionary(parsed) || !Object.values(parsed).every(isDictionary)) return undefined;
  return parsed as Record<string, Record<string, unknown>>;
}

/**
 * The copies Mailgun makes of a received message: one per `to` recipient, addressed to them alone,
 * when it has recipient variables (Batch Sending); otherwise one email to all of them.
 */
export function copies(received: MailgunReceived): { to: string[] }[] {
  const to = (received.fields.to ?? []).flatMap(split);
  if (!received.fields['recipient-variables']) return [{ to }];
  return to.map((address) => ({ to: [address] }));
}

/** A `to` value may list several addresses, comma-separated (a comma in a quoted name is kept). */
function split(value: string): string[] {
  return (value.match(/(?:"[^"]*"|[^,])+/g) ?? []).map((part) => part.trim()).filter(Boolean);
}

const json = (message: string | undefined) => JSON.stringify({ message });

function reply(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  const type = body.trimStart().startsWith('{') ? 'application/json' : 'text/plain; charset=utf-8';
  res.writeHead(status, { 'content-type': type, ...headers }).end(body);
}
