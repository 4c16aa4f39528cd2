/**
 * Internal test helpers: requests signed the way each provider documents signing them, and a
 * node:http server on 127.0.0.1 to post them to.
 */
import { createHmac, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SignedRequest {
  body: string;
  headers: Record<string, string>;
}

/** A documented sample payload from test/fixtures/webhooks/<provider>.json. */
export function sample(provider: string, name: string): unknown {
  const all = JSON.parse(
    readFileSync(new URL(`../fixtures/webhooks/${provider}.json`, import.meta.url), 'utf8'),
  );
  if (!(name in all)) throw new Error(`no sample ${name} in ${provider}.json`);
  return all[name];
}

const seconds = (offsetMs = 0) => String(Math.floor((Date.now() + offsetMs) / 1000));

export const MAILGUN_KEY = 'test-mailgun-signing-key-0123456789';
export function mailgun(
  eventData: unknown,
  options: { key?: string; ageMs?: number; token?: string } = {},
): SignedRequest {
  const timestamp = seconds(-(options.ageMs ?? 0));
  const token = options.token ?? randomBytes(25).toString('hex');
  const signature = createHmac('sha256', options.key ?? MAILGUN_KEY)
    .update(timestamp + token)
    .digest('hex');
  return {
    body: JSON.stringify({ signature: { timestamp, token, signature }, 'event-data': eventData }),
    headers: { 'content-type': 'application/json' },
  };
}

export const RESEND_SECRET = `whsec_${Buffer.from('test-resend-signing-secret-32-bytes!').toString('base64')}`;
export function resend(
  payload: unknown,
  options: { secret?: string; ageMs?: number; id?: string } = {},
): SignedRequest {
  const id = options.id ?? `msg_${randomBytes(12).toString('hex')}`;
  const timestamp = seconds(-(options.ageMs ?? 0));
  const body = JSON.stringify(payload);
  const key = Buffer.from((options.secret ?? RESEND_SECRET).slice('whsec_'.length), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'svix-id': id,
      'svix-timestamp': timestamp,
      // A rotation's old signature first, as Svix sends both during one.
      'svix-signature': `v1,${randomBytes(32).toString('base64')} v1,${signature}`,
    },
  };
}

/** A SendGrid-style key pair: the public key as the base64 DER SendGrid's dashboard shows. */
export function sendgridKeys(): { privateKey: KeyObject; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64') };
}
export function sendgrid(
  events: unknown,
  privateKey: KeyObject,
  options: { ageMs?: number } = {},
): SignedRequest {
  const timestamp = seconds(-(options.ageMs ?? 0));
  const body = JSON.stringify(events);
  const signature = sign('sha256', Buffer.from(timestamp + body), privateKey).toString('base64');
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-twilio-email-event-webhook-signature': signature,
      'x-twilio-email-event-webhook-timestamp': timestamp,
    },
  };
}

export const POSTMARK_USER = 'postmark';
export const POSTMARK_PASSWORD = 'p0stmark-hook-password-long-enough';
export function postmark(
  payload: unknown,
  options: { user?: string; password?: string } = {},
): SignedRequest {
  const credentials = `${options.user ?? POSTMARK_USER}:${options.password ?? POSTMARK_PASSWORD}`;
  return {
    body: JSON.stringify(payload),
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(credentials).toString('base64')}`,
    },
  };
}

/** A node:http server on 127.0.0.1, port 0. */
export async function listen(
  listener: RequestListener,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** POSTs a signed request; returns the status, headers and body. */
export async function post(
  url: string,
  request: SignedRequest,
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

export const SES_TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
export const SNS_CERT_URL =
  'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem';

/** An SNS message carrying `message`, signed (SignatureVersion 2) with `key`. */
export function sns(
  key: string,
  message: unknown,
  options: {
    type?: 'Notification' | 'SubscriptionConfirmation';
    topic?: string;
    ageMs?: number;
    id?: string;
    certUrl?: string;
    version?: '1' | '2';
  } = {},
): SignedRequest {
  const type = options.type ?? 'Notification';
  const fields: Record<string, string> = {
    Type: type,
    MessageId:
      options.id ?? `${randomBytes(4).toString('hex')}-5c8b-4b1a-9c3d-${randomBytes(6).toString('hex')}`,
    TopicArn: options.topic ?? SES_TOPIC,
    Message: typeof message === 'string' ? message : JSON.stringify(message),
    Timestamp: new Date(Date.now() - (options.ageMs ?? 0)).toISOString(),
    SignatureVersion: options.version ?? '2',
    SigningCertURL: options.certUrl ?? SNS_CERT_URL,
  };
  if (type === 'SubscriptionConfirmation') {
    fields.Token = randomBytes(32).toString('hex');
    fields.SubscribeURL = `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${fields.TopicArn}&Token=${fields.Token}`;
  }
  const order =
    type === 'Notification'
      ? ['Message', 'MessageId', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  const signed = order.map((field) => `${field}\n${fields[field]}\n`).join('');
  fields.Signature = sign(
    fields.SignatureVersion === '1' ? 'sha1' : 'sha256',
    Buffer.from(signed),
    key,
  ).toString('base64');
  return { body: JSON.stringify(fields), headers: { 'content-type': 'text/plain; charset=UTF-8' } };
}
