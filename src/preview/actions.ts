/**
 * The preview's buttons that change something: release, discard, send a test email, delete a
 * captured email, verify the connection. Only `POST`,
 * only from the page itself (`Sec-Fetch-Site: same-origin`, else an `Origin` naming the request's
 * own host: a page elsewhere cannot press them for you), with a JSON body (which a cross-site form
 * cannot send), and with the token when one is set or when the page is reached by a name that is
 * not loopback (anyone on the network could reach it).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isEmailError, isMailroomError, isMessageError, isTemplateError } from '../errors.js';
import {
  type DiscardResult,
  type HeldEmail,
  type HoldTransport,
  heldId,
  type ReleaseResult,
} from '../transports/hold.js';
import { fromThisMachine } from './hosts.js';
import { deleteOutbox } from './outbox.js';
import type { PreviewSources } from './sources.js';

/** The header the page sends its token in. */
export const TOKEN_HEADER = 'x-mailroom-token';

/** An answer: HTTP status and a JSON body. */
export interface ActionAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * Why a state-changing request is refused (403), or undefined when it may go ahead. `token` is
 * the preview's token, if it has one.
 */
export function refusal(
  req: IncomingMessage,
  host: string | undefined,
  token: string | undefined,
): string | undefined {
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (site !== undefined && site !== 'same-origin') return `a ${site} request cannot change anything here`;
  if (origin === undefined && site === undefined) {
    return 'a request without Origin or Sec-Fetch-Site cannot change anything here: use the page';
  }
  if (origin !== undefined && origin !== `http://${host}` && origin !== `https://${host}`) {
    return 'a request from another origin cannot change anything here';
  }
  // Without a token, only a request from this machine itself may change anything.
  const needsToken = token !== undefined || !fromThisMachine(req, host);
  if (!needsToken) return undefined;
  if (token === undefined) {
    return 'the preview is reached from beyond this machine (a name or an address that is not loopback, or through a proxy): buttons that change something need a token (mailroom preview --token, MAILROOM_PREVIEW_TOKEN, or the token option)';
  }
  const given = req.headers[TOKEN_HEADER];
  if (typeof given !== 'string' || !sameSecret(given, token)) {
    return 'the token is missing or wrong: open the page as …/?token=YOUR_TOKEN';
  }
  return undefined;
}

/** Compares digests, so neither the length nor the first difference shows in the time it takes. */
function sameSecret(a: string, b: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** The JSON object of a request body, at most `limit` bytes (default 64 KB); undefined when it is not one. */
export async function readJson(
  req: IncomingMessage,
  limit = 64 * 1024,
): Promise<Record<string, unknown> | undefined> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A held email for the page: what it shows, without the server's file paths. */
export function heldForPage(email: HeldEmail) {
  const { files: _files, claimFile: _claim, ...shown } = email;
  return shown;
}

/** `POST api/hold/release` `{ ids: string[] | 'all', to?: string }`. */
export async function release(hold: HoldTransport, body: Record<string, unknown>): Promise<ActionAnswer> {
  const ids = targets(body.ids);
  if (!ids) return badRequest('ids', "must be a list of ids or 'all'");
  if (body.to !== undefined && typeof body.to !== 'string') return badRequest('to', 'must be an address');
  const to = typeof body.to === 'string' && body.to.trim() !== '' ? body.to.trim() : undefined;
  return answer(async () => ({
    results: (await hold.release(ids, to === undefined ? {} : { to })).map(releaseForPage),
  }));
}

/** `POST api/hold/discard` `{ ids: string[] | 'all' }`. */
export async function discard(hold: HoldTransport, body: Record<string, unknown>): Promise<ActionAnswer> {
  const ids = targets(body.ids);
  if (!ids) return badRequest('ids', "must be a list of ids or 'all'");
  return answer(async () => ({ results: (await hold.discard(ids)) satisfies DiscardResult[] }));
}

/**
 * `POST api/send` `{ template, set, to, locale? }`: renders the template with the data set (in
 * `locale`, else the service's default) and sends it with
 * `sendTemplate`, the call `mailroom send` makes, through the service's transport (the hold, when
 * there is one).
 */
export async function sendTest(
  sources: PreviewSources,
  body: Record<string, unknown>,
): Promise<ActionAnswer> {
  const { template: name, set: setName, to, locale } = body;
  if (locale !== undefined && typeof locale !== 'string') return badRequest('locale', 'must be a BCP 47 tag');
  if (typeof to !== 'string' || to.trim() === '') return badRequest('to', 'type an address to send to');
  const template = sources.templates.find((t) => t.name === name);
  const set = template?.sets.find((s) => s.name === setName);
  if (!template || !set || set.data === undefined) {
    return badRequest(
      'template',
      `no template ${JSON.stringify(name)} with a usable data set ${JSON.stringify(setName)}`,
    );
  }
  const service = sources.service;
  return answer(async () => {
    const result = await service.sendTemplate(template.name, {
      to: to.trim(),
      data: set.data!,
      ...(locale === undefined ? {} : { locale }),
    });
    const held = heldId(result);
    return {
      result: {
        messageId: result.messageId,
        transport: result.transport,
        accepted: result.accepted,
        rejected: result.rejected,
        deferred: result.deferred ?? [],
        captures: service.transport.captures === true,
        ...(held === undefined ? {} : { held }),
      },
    };
  });
}

/**
 * `POST api/outbox/delete` `{ ids: string[] }`: deletes captured emails' files. An email the hold
 * still holds is refused (`outcome: 'held'`): release or discard it first, so nothing waiting for a
 * person disappears unseen.
 */
export async function deleteCaptured(
  dir: string,
  hold: HoldTransport | undefined,
  body: Record<string, unknown>,
): Promise<ActionAnswer> {
  const ids = targets(body.ids);
  if (!ids || ids === 'all') return badRequest('ids', 'must be a list of ids');
  const bad = ids.findIndex((id) => !/^[\w-][\w.-]{0,199}$/.test(id));
  if (bad !== -1) return badRequest(`ids[${bad}]`, "is not a captured email's id");
  const results: { id: string; outcome: 'deleted' | 'held' | 'not-found' }[] = [];
  for (const id of ids) {
    const held = hold
      ? await Promise.resolve(id)
          .then((i) => hold.get(i))
          .catch(() => undefined)
      : undefined;
    if (held?.status === 'held') results.push({ id, outcome: 'held' });
    else results.push({ id, outcome: (await deleteOutbox(dir, id)) ? 'deleted' : 'not-found' });
  }
  return { status: 200, body: { results } };
}

function targets(ids: unknown): string[] | 'all' | undefined {
  if (ids === 'all') return 'all';
  if (
    Array.isArray(ids) &&
    ids.length > 0 &&
    ids.length <= 1000 &&
    ids.every((id) => typeof id === 'string')
  ) {
    return ids as string[];
  }
  return undefined;
}

function releaseForPage(result: ReleaseResult) {
  return result.outcome === 'failed' ? { ...result, error: errorForPage(result.error) } : result;
}

/** An error as the page shows it: the typed fields, never a stack or a cause. */
function errorForPage(error: unknown) {
  if (isEmailError(error)) {
    return {
      name: error.name,
      code: error.code,
      failure: error.failure,
      status: error.status,
      message: error.message,
    };
  }
  if (isMessageError(error)) return { name: error.name, field: error.field, message: error.message };
  if (isTemplateError(error)) return { name: error.name, field: error.field, message: error.message };
  return { name: (error as Error).name, message: (error as Error).message };
}

/** Runs an action; a mistake in the request is a 400, a delivery failure a 502, both with the typed error. */
async function answer(work: () => Promise<unknown>): Promise<ActionAnswer> {
  try {
    return { status: 200, body: await work() };
  } catch (error) {
    if (isEmailError(error)) return { status: 502, body: { error: errorForPage(error) } };
    if (isMailroomError(error)) return { status: 400, body: { error: errorForPage(error) } };
    throw error;
  }
}

function badRequest(field: string, message: string): ActionAnswer {
  return { status: 400, body: { error: { name: 'MessageError', field, message: `${field}: ${message}` } } };
}
