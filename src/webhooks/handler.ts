/**
 * The webhook endpoint: a node:http request handler that reads the raw body, verifies it with the
 * provider's documented scheme, refuses forged, stale and replayed requests, and hands each
 * normalised {@link DeliveryEvent} to `onEvent`.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../errors.js';
import { rawBody, reply } from '../http-request.js';
import type { DeliveryEvent } from './events.js';
import { type MailgunWebhookOptions, mailgunVerifier } from './mailgun.js';
import { type PostmarkWebhookOptions, postmarkVerifier } from './postmark.js';
import { type ResendWebhookOptions, resendVerifier } from './resend.js';
import { type SendGridWebhookOptions, sendgridVerifier } from './sendgrid.js';
import { type SesWebhookOptions, sesVerifier } from './ses.js';
import { ReplayGuard, type WebhookVerifier } from './verify.js';

/** Options every provider's webhook takes. */
export interface WebhookCommonOptions {
  /**
   * Called once per event, in order, after the request was verified. A rejection (or a throw)
   * answers 500 so that the provider delivers the request again, and lets that retry through the
   * replay check. Events of that request handled before the failure come again with the retry,
   * so make it idempotent (`suppressFromEvents` is). Required.
   */
  onEvent: (event: DeliveryEvent) => void | Promise<void>;
  /**
   * How far the provider's signed timestamp may be from this machine's clock, either way, in
   * milliseconds. Older (or later) requests are refused with 403. Default 300 000 (5 minutes,
   * Svix's own tolerance). Not used for Postmark, which signs no timestamp.
   */
  toleranceMs?: number;
  /**
   * How many request ids (Mailgun's token, Svix's `svix-id`, a digest of SendGrid's timestamp and
   * body, of Postmark's body) are remembered to refuse replays, per handler. Default 10 000; the
   * oldest is forgotten first, and each after twice `toleranceMs` (at least 10 minutes). The
   * memory is this process's: behind several instances, a replay may reach another one.
   */
  maxSeen?: number;
  /** The largest body read, in bytes; a larger one gets 413. Default 5 000 000. */
  maxBodyBytes?: number;
  /**
   * Where an `onEvent` failure or a mounting mistake goes when the handler was called without
   * Express's `next`. Default: `console.error`.
   */
  onError?: (error: unknown) => void;
}

/** Options of {@link createWebhookHandler}: the provider, its secret, and the common options. */
export type WebhookHandlerOptions = WebhookCommonOptions &
  (
    | ({ provider: 'mailgun' } & MailgunWebhookOptions)
    | ({ provider: 'postmark' } & PostmarkWebhookOptions)
    | ({ provider: 'sendgrid' } & SendGridWebhookOptions)
    | ({ provider: 'resend' } & ResendWebhookOptions)
    | ({ provider: 'ses' } & SesWebhookOptions)
  );

/** A node:http request handler that also works as Express middleware (`next` gets mounting mistakes). */
export type WebhookHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

const DEFAULT_TOLERANCE_MS = 5 * 60_000;

/**
 * A webhook endpoint for one provider. Mount it where the provider posts, before any body parser:
 * the signature covers the exact bytes. It answers 405 to anything but POST; 401 (Postmark) or
 * 403 (the others) with no detail to a forged, tampered, stale or replayed request, emitting
 * nothing; 413 past `maxBodyBytes`; 200 once every event was handled (events the normalised type
 * has no room for are acknowledged and dropped). A body an earlier middleware already parsed is a
 * {@link ConfigError} (`body`), passed to `next` or `onError`, with a 500.
 *
 * Throws a {@link ConfigError} naming the option for a missing or malformed secret.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createWebhookHandler } from 'mailroom-js/webhooks';
 *
 * const app = express();
 * // Before app.use(express.json()): the handler reads the raw body itself.
 * app.post('/hooks/mailgun', createWebhookHandler({
 *   provider: 'mailgun',
 *   signingKey: process.env.MAILGUN_WEBHOOK_SIGNING_KEY!,
 *   onEvent: suppressFromEvents(suppressions),
 * }));
 * app.use(express.json());
 *
 * // node:http
 * createServer(createWebhookHandler({ provider: 'resend', secret: process.env.RESEND_WEBHOOK_SECRET!, onEvent }));
 *
 * // Fastify: leave the body unread in the route's scope, then hand over the raw request.
 * fastify.register(async (scope) => {
 *   scope.removeAllContentTypeParsers();
 *   scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
 *   scope.post('/hooks/sendgrid', (request, reply) => {
 *     reply.hijack();
 *     sendgridHook(request.raw, reply.raw);
 *   });
 * });
 * ```
 */
export function createWebhookHandler(options: WebhookHandlerOptions): WebhookHandler {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('createWebhookHandler: expected options { provider, …secret, onEvent }');
  if (typeof options.onEvent !== 'function')
    throw new ConfigError('onEvent', 'required: a function given each event');
  const toleranceMs = positive(options.toleranceMs, 'toleranceMs', DEFAULT_TOLERANCE_MS);
  const maxSeen = positive(options.maxSeen, 'maxSeen', 10_000);
  const maxBodyBytes = positive(options.maxBodyBytes, 'maxBodyBytes', 5_000_000);
  const verifier = verifierFor(options, toleranceMs);
  const guard = new ReplayGuard(maxSeen, Math.max(2 * toleranceMs, 10 * 60_000));
  const { onEvent } = options;
  const onError = options.onError ?? ((error: unknown) => console.error(error));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') return reply(res, 405, 'Method Not Allowed', { allow: 'POST' });
    const body = await rawBody(req, maxBodyBytes, 'the webhook handler');
    if (body === 'too-large') return reply(res, 413, 'Payload Too Large', { connection: 'close' });
    const nowMs = Date.now();
    const verdict = await verifier.verify({ headers: req.headers, body }, nowMs);
    if (!verdict.ok) {
      if (verdict.status === 503) return reply(res, 503, 'Service Unavailable', { 'retry-after': '60' });
      return verdict.status === 401
        ? reply(res, 401, 'Unauthorized', { 'www-authenticate': 'Basic realm="webhooks"' })
        : reply(res, 403, 'Forbidden');
    }
    if (!guard.claim(verdict.replayKey, nowMs)) return reply(res, 403, 'Forbidden');
    try {
      for (const event of await verifier.parse(body, nowMs)) await onEvent(event);
    } catch (error) {
      guard.release(verdict.replayKey);
      throw error;
    }
    reply(res, 200, 'OK');
  };

  return (req, res, next) => {
    handle(req, res).catch((error: unknown) => {
      // Express answers through its error handlers; a plain server gets a bare 500.
      if (next) return next(error);
      if (!res.headersSent) reply(res, 500, 'Internal Server Error');
      onError(error);
    });
  };
}

function verifierFor(options: WebhookHandlerOptions, toleranceMs: number): WebhookVerifier {
  switch (options.provider) {
    case 'mailgun':
      return mailgunVerifier(options, toleranceMs);
    case 'postmark':
      return postmarkVerifier(options);
    case 'sendgrid':
      return sendgridVerifier(options, toleranceMs);
    case 'resend':
      return resendVerifier(options, toleranceMs);
    case 'ses':
      return sesVerifier(options, toleranceMs);
    default:
      throw new ConfigError(
        'provider',
        `unknown webhook provider ${JSON.stringify((options as { provider?: unknown }).provider)}: mailgun, postmark, sendgrid, resend or ses`,
      );
  }
}

function positive(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    throw new ConfigError(option, 'must be a positive whole number');
  return value;
}
