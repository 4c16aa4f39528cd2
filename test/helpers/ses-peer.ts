/**
 * A local HTTP server that answers Amazon SES API v2 the way its reference describes, for
 * `POST /v2/email/outbound-emails` (SendEmail) and `GET /v2/email/account` (GetAccount): REST with
 * JSON bodies, every request signed with AWS Signature Version 4 (checked here against the same
 * access key and secret, with its own implementation of the algorithm, not the SDK's), and errors
 * as the SDK reads them: the `x-amzn-ErrorType` header and a JSON `{ message }` body.
 *
 * Sources: docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html (request, response,
 * errors), API_GetAccount.html, and the IAM user guide's "Create a signed AWS API request"
 * (canonical request, string to sign, signing key).
 */
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type JsonAnswer, type JsonApiFault, type JsonApiPeer, startJsonApiPeer } from './json-api-peer.js';
import { fromMime, type ReceivedEmail } from './received.js';

export interface SesPeerOptions {
  accessKeyId: string;
  secretAccessKey: string;
  /** The region requests must be signed for. Default eu-west-1. */
  region?: string;
  /** Domains whose addresses may send (verified identities). Default ['acme.example']. */
  verifiedDomains?: string[];
  /** Configuration sets that exist. Default ['transactional']. */
  configurationSets?: string[];
  /** What GetAccount says. Default: sending enabled, healthy, out of the sandbox. */
  account?: Record<string, unknown>;
  /** A fault list shared with other peers (see startJsonApiPeer). */
  faults?: JsonApiFault[];
}

/** One accepted SendEmail: the request body, the raw MIME decoded, and the MessageId answered. */
export interface SesReceived {
  body: Record<string, unknown>;
  raw: Buffer;
  id: string;
}

export interface SesPeer extends JsonApiPeer {
  messages: SesReceived[];
  /** Requests refused for their signature or credentials, with the error type answered. */
  refusedSignatures: string[];
  /** The accepted messages parsed from their raw MIME, as a mail client would. */
  received(): Promise<ReceivedEmail[]>;
}

const SEND_PATH = '/v2/email/outbound-emails';
const ACCOUNT_PATH = '/v2/email/account';
// "The combined number of To:, CC: and BCC: email addresses cannot exceed 50."
const MAX_RECIPIENTS = 50;
const TAG = /^[A-Za-z0-9_-]{1,256}$/;

/** An SES error answer, as SES sends it and the SDK reads it. */
export function sesError(status: number, type: string, message: string): JsonAnswer {
  return {
    status,
    headers: { 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazonaws.sesv2/` },
    body: { message },
  };
}

/** The same as a fault to inject. */
export function sesFault(
  status: number,
  type: string,
  message: string,
  retryAfter?: string,
): Extract<JsonApiFault, { status: number }> {
  const { headers, body } = sesError(status, type, message);
  return { status, body, headers: headers ?? {}, ...(retryAfter ? { retryAfter } : {}) };
}

export async function startSesPeer(options: SesPeerOptions): Promise<SesPeer> {
  const region = options.region ?? 'eu-west-1';
  const verified = new Set((options.verifiedDomains ?? ['acme.example']).map((d) => d.toLowerCase()));
  const sets = new Set(options.configurationSets ?? ['transactional']);
  const refused: string[] = [];

  /** Checks the SigV4 Authorization header; an error answer when it does not hold. */
  const authorize = (
    method: string,
    path: string,
    headers: IncomingMessage['headers'],
    raw: string,
  ): JsonAnswer | undefined => {
    const problem = checkSignature(method, path, headers, raw, options, region);
    if (problem === undefined) return undefined;
    refused.push(problem.type);
    return sesError(403, problem.type, problem.message);
  };

  const handle = (headers: IncomingMessage['headers'], body: unknown, raw: string): JsonAnswer => {
    const denied = authorize('POST', SEND_PATH, headers, raw);
    if (denied) return denied;
    if (typeof body !== 'object' || body === null) {
      return sesError(400, 'BadRequestException', 'Unable to parse request body.');
    }
    const fields = body as Record<string, unknown>;
    const data = (fields.Content as { Raw?: { Data?: unknown } } | undefined)?.Raw?.Data;
    if (typeof data !== 'string' || data === '') {
      return sesError(400, 'BadRequestException', 'Content must contain Simple, Raw or Template.');
    }
    const mime = Buffer.from(data, 'base64');
    const destination = (fields.Destination ?? {}) as Record<string, unknown>;
    const recipients = ['ToAddresses', 'CcAddresses', 'BccAddresses'].flatMap((k) =>
      Array.isArray(destination[k]) ? (destination[k] as unknown[]).map(String) : [],
    );
    if (recipients.length === 0) return sesError(400, 'BadRequestException', 'Missing final destination.');
    if (recipients.length > MAX_RECIPIENTS) {
      return sesError(400, 'MessageRejected', `Recipient count exceeds ${MAX_RECIPIENTS}.`);
    }
    const bad = recipients.find((r) => !/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(r));
    if (bad !== undefined) return sesError(400, 'BadRequestException', `Illegal address: ${bad}`);
    const from = /^From:[^\r\n]*?<?([^\s<>"]+@([^\s<>"]+?))>?\r?$/im.exec(mime.toString('latin1'));
    if (!from || !verified.has(from[2]!.toLowerCase())) {
      return sesError(
        400,
        'MessageRejected',
        `Email address is not verified. The following identities failed the check in region ${region.toUpperCase()}: ${from?.[1] ?? '(none)'}`,
      );
    }
    const set = fields.ConfigurationSetName;
    if (set !== undefined && !sets.has(String(set))) {
      return sesError(404, 'NotFoundException', `Configuration set <${String(set)}> does not exist.`);
    }
    const tags = Array.isArray(fields.EmailTags)
      ? (fields.EmailTags as { Name?: unknown; Value?: unknown }[])
      : [];
    if (tags.some((t) => !TAG.test(String(t.Name)) || !TAG.test(String(t.Value)))) {
      return sesError(400, 'BadRequestException', 'Invalid tag name or value.');
    }
    const id = `0102018f${randomUUID().replaceAll('-', '')}-000000`;
    peer.messages.push({ body: fields, raw: mime, id });
    return { status: 200, body: { MessageId: id }, headers: { 'x-amzn-requestid': randomUUID() } };
  };

  const account = (headers: IncomingMessage['headers']): JsonAnswer =>
    authorize('GET', ACCOUNT_PATH, headers, '') ?? {
      status: 200,
      body: {
        DedicatedIpAutoWarmupEnabled: false,
        EnforcementStatus: 'HEALTHY',
        ProductionAccessEnabled: true,
        SendQuota: { Max24HourSend: 50000, MaxSendRate: 14, SentLast24Hours: peer.messages.length },
        SendingEnabled: true,
        ...options.account,
      },
    };

  const base = await startJsonApiPeer(SEND_PATH, handle, { message: 'Not Found' }, options.faults, {
    [ACCOUNT_PATH]: account,
  });
  const peer: SesPeer = Object.assign(base, {
    messages: [] as SesReceived[],
    refusedSignatures: refused,
    received: () => Promise.all(peer.messages.map((m) => fromMime(m.raw))),
  });
  return peer;
}

/**
 * AWS Signature Version 4, checked from scratch: the canonical request (method, path, empty query,
 * the signed headers lower-cased with trimmed values, the body's SHA-256), the string to sign over
 * its hash and the credential scope, and the HMAC chain from `AWS4` + secret.
 */
function checkSignature(
  method: string,
  path: string,
  headers: IncomingMessage['headers'],
  body: string,
  options: SesPeerOptions,
  region: string,
): { type: string; message: string } | undefined {
  const missing = { type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
  const auth = headers.authorization;
  if (typeof auth !== 'string') return missing;
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m)
    return { type: 'IncompleteSignatureException', message: 'Authorization header requires a valid form.' };
  const [, keyId, day, scopeRegion, service, signedList, signature] = m as unknown as string[];
  if (keyId !== options.accessKeyId) {
    return {
      type: 'UnrecognizedClientException',
      message: 'The security token included in the request is invalid.',
    };
  }
  const invalid = (message: string) => ({ type: 'InvalidSignatureException', message });
  if (scopeRegion !== region || service !== 'ses') {
    return invalid(`Credential should be scoped to a valid region and service (${region}/ses).`);
  }
  const amzDate = headers['x-amz-date'];
  if (typeof amzDate !== 'string' || !amzDate.startsWith(day!))
    return invalid('Date must match the credential scope.');
  const when = Date.parse(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  if (!(Math.abs(Date.now() - when) <= 15 * 60_000)) return invalid('Signature expired.');
  const signed = signedList!.split(';');
  if (!signed.includes('host') || !signed.includes('x-amz-date'))
    return invalid('host and x-amz-date must be signed.');
  const canonicalHeaders = signed
    .map((name) => {
      const value = headers[name];
      const text = Array.isArray(value) ? value.join(',') : (value ?? '');
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
  const canonical = [method, path, '', canonicalHeaders, signedList, sha256(body)].join('\n');
  const scope = `${day}/${scopeRegion}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const hmac = (key: Buffer | string, data: string) =>
    createHmac('sha256', key).update(data, 'utf8').digest();
  let key = hmac(`AWS4${options.secretAccessKey}`, day!);
  for (const part of [scopeRegion!, service!, 'aws4_request']) key = hmac(key, part);
  const expected = createHmac('sha256', key).update(toSign, 'utf8').digest();
  if (!timingSafeEqual(expected, Buffer.from(signature!, 'hex'))) {
    return invalid(
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
  return undefined;
}
