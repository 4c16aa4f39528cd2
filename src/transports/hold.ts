/**
 * The proofing desk's hold: in pre-production every email is captured as the sandbox captures it
 * and waits for a person, who releases it through the real transport behind the hold, or discards
 * it. Status and history are files beside the capture, so they survive a restart and are shared by
 * every process that points at the same folder (the app, `mailroom release`, `mailroom preview`).
 */
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { EmailError, isEmailError } from '../errors.js';
import {
  type Address,
  type AddressInput,
  createMessage,
  deliveryRecipients,
  type EmailMessage,
  formatAddress,
  narrowEnvelope,
  parseAddress,
  withOriginalRecipients,
} from '../message.js';
import { type SendResult, type Transport, throwIfAborted } from '../transport.js';
import { abandoned, checkId, type HoldRecord, holdStore, type StoredState } from './hold-store.js';

export type { HoldRecord } from './hold-store.js';

import { type SandboxFiles, sandboxTransport } from './sandbox.js';

/** Options for {@link holdTransport}. */
export interface HoldTransportOptions {
  /** The transport a release goes through (SMTP, Mailgun, a staging wrapper around one …). Required. */
  transport: Transport;
  /**
   * Folder the held mail is written to, as the sandbox writes it (`.eml`, `.html`, `.txt`,
   * `.json`), with the hold's own files in its `.hold/` subfolder; created when missing. Default
   * `.mailroom/outbox`, the folder `mailroom preview` shows.
   */
  dir?: string;
  /**
   * Called once, at the first email held in `dir` in this process, with the absolute folder.
   * Default: one line on stderr saying that mail is held and how to release it. `false` says nothing.
   */
  onFirstWrite?: ((dir: string) => void) | false;
}

/** Where a held email stands: waiting, sent on by a release, or set aside for good. */
export type HoldStatus = 'held' | 'released' | 'discarded';

/** A held email as {@link HoldTransport.list} and {@link HoldTransport.get} show it. */
export interface HeldEmail {
  /** Its id: the base name of its sandbox files, e.g. `2026-12-05T07-00-00-000Z-welcome-3fa2c1`. */
  readonly id: string;
  readonly status: HoldStatus;
  /** A release or discard of it is under way right now, in this process or another. */
  readonly busy: boolean;
  /**
   * A release was claimed by a process on this machine that has since died: it may or may not
   * have reached the provider. Releasing it again is refused until a person checks and removes
   * `claimFile`.
   */
  readonly interrupted: boolean;
  /** The claim file to remove once an interrupted release has been checked. */
  readonly claimFile: string;
  readonly subject: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly cc: readonly string[];
  readonly bcc: readonly string[];
  readonly template: string | undefined;
  readonly messageId: string;
  /** When it was held, ISO 8601 UTC. */
  readonly heldAt: string;
  /** Releases (delivered and failed) and the discard, oldest first. */
  readonly history: readonly HoldRecord[];
  /** The files the capture wrote (absolute paths). */
  readonly files: SandboxFiles;
}

/**
 * What one release did for one id. `released`: delivered now, `record` says to whom and what the
 * transport answered; recipients the server deferred (4xx) stay held, and the next release goes to
 * them only. `failed`: the transport refused or could not be reached, or the release would go
 * another way than the email was held for (another server, DKIM key or staging rule than the
 * transport's start-up line said then: `code: 'config'`); the email stays held and `error` is the
 * typed {@link EmailError}. After an `ambiguous` failure (the connection dropped once the message
 * was out) its claim is kept, as for `interrupted`: a person checks before it is released again.
 * The others sent nothing: `already-released` (by an earlier or a concurrent release: a double
 * click sends once), `discarded`, `busy` (another release or discard holds the claim right now),
 * `interrupted` (see {@link HeldEmail.interrupted}), `not-found`.
 */
export type ReleaseResult =
  | { readonly id: string; readonly outcome: 'released'; readonly record: HoldRecord }
  | {
      readonly id: string;
      readonly outcome: 'failed';
      readonly error: EmailError;
      readonly record: HoldRecord;
    }
  | {
      readonly id: string;
      readonly outcome: 'already-released' | 'discarded' | 'busy' | 'interrupted' | 'not-found';
    };

/** What one discard did: `discarded` now, or nothing (`already-discarded`, `released`, `busy`, `interrupted`, `not-found`). */
export interface DiscardResult {
  readonly id: string;
  readonly outcome: 'discarded' | 'already-discarded' | 'released' | 'busy' | 'interrupted' | 'not-found';
}

/** Options of {@link HoldTransport.release}. */
export interface ReleaseOptions {
  /**
   * Send to this one address instead of the original recipients (To, Cc and Bcc); the To and Cc
   * are named in an `X-Mailroom-Original-Recipients` header, blind copies only counted. Checked as any address is: line breaks,
   * control characters and malformed addresses are a `MessageError` naming `to`, before anything
   * is sent.
   */
  to?: AddressInput;
}

/** A transport that keeps mail until a person releases it. */
export interface HoldTransport extends Transport {
  readonly name: 'hold';
  /** The absolute folder held mail is written to. */
  readonly dir: string;
  /** The transport releases go through. */
  readonly transport: Transport;
  /** Every email in the hold, whatever its status, newest first. */
  list(): Promise<HeldEmail[]>;
  /** One email by id, or undefined. A malformed id (`../x`) is a `MessageError` naming `id`. */
  get(id: string): Promise<HeldEmail | undefined>;
  /**
   * Releases these emails (or `'all'` that are held), one after another, through the transport
   * behind the hold, each once however many callers ask at the same time. A malformed id is a
   * `MessageError` naming `ids[i]`, thrown before anything is sent.
   */
  release(ids: readonly string[] | 'all', options?: ReleaseOptions): Promise<ReleaseResult[]>;
  /** Discards these emails (or `'all'` that are held): they can no longer be released. Files stay. */
  discard(ids: readonly string[] | 'all'): Promise<DiscardResult[]>;
}

function announce(dir: string): void {
  process.stderr.write(
    `mailroom: the hold kept an email for review instead of delivering it; files in ${dir} (release it with mailroom release <id>, or from mailroom preview)\n`,
  );
}

/**
 * Holds mail for proofreading in pre-production: each email is written as the sandbox writes it
 * and waits, `held`, until {@link HoldTransport.release} sends it through `transport` (to its
 * recipients, or to one address typed instead) or {@link HoldTransport.discard} sets it aside.
 * Nothing is sent when the email is held. Put a `stagingTransport` behind the hold and its
 * allowlist applies to every release.
 *
 * A release claims the email first with a file created exclusively (`open(path, 'wx')`), so two
 * clicks, two people or two processes release it once; a release that fails records the error and
 * leaves the email held.
 *
 * @example
 * ```ts
 * const hold = holdTransport({ transport: smtpTransport({ host: 'smtp.acme.example', user, password }) });
 * const mail = new EmailService({ transport: hold, from: 'Acme <no-reply@acme.example>' });
 * await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' }); // held, not sent
 * const [held] = await hold.list();
 * await hold.release([held.id]); // [{ id, outcome: 'released', record: { to, result, … } }]
 * ```
 */
export function holdTransport(options: HoldTransportOptions): HoldTransport {
  const inner = options?.transport;
  if (!inner || typeof inner.send !== 'function') {
    throw new TypeError('holdTransport: transport is required (the transport a release goes through)');
  }
  const sandbox = sandboxTransport({
    ...(options.dir === undefined ? {} : { dir: options.dir }),
    onFirstWrite: options.onFirstWrite === undefined ? announce : options.onFirstWrite,
  });
  const dir = sandbox.dir;
  const store = holdStore(dir);
  // Where a release goes, as the start-up line says it: kept with each email held, compared at release.
  const route = () => inner.describe?.() ?? inner.name;

  const hold: HoldTransport = {
    name: 'hold',
    // Nothing reaches an inbox until a person releases it.
    captures: true,
    // Released mail is signed as the transport it is released through signs it.
    ...(inner.dkim === undefined ? {} : { dkim: inner.dkim }),
    // Released mail goes through the staging rules of the transport it is released through.
    ...(inner.staged === true ? { staged: true } : {}),
    narrowsRecipients: true,
    dir,
    transport: inner,
    describe: () => `hold ${dir}, released through ${inner.describe?.() ?? inner.name}`,
    ...(inner.check ? { check: (message: EmailMessage) => inner.check!(message) } : {}),
    async send(message, context) {
      throwIfAborted(context, 'hold');
      // What the release would refuse is refused now, while the sender is there to hear it.
      inner.check?.(message);
      const captured = await sandbox.send(message, context);
      const files = captured.response as SandboxFiles;
      const id = basename(files.json, '.json');
      try {
        await store.create(id, message, new Date(), route());
      } catch (cause) {
        await Promise.all(Object.values(files).map((path) => rm(path, { force: true })));
        throw new EmailError(`could not write to the hold folder ${dir}`, {
          code: 'io',
          transport: 'hold',
          cause,
        });
      }
      return {
        messageId: message.messageId,
        accepted: [...deliveryRecipients(message)],
        rejected: [],
        transport: 'hold',
        response: { id, files },
      } satisfies SendResult;
    },
    async list() {
      // A file someone broke by hand hides that email, not the whole list; get(id) shows why.
      const emails = await Promise.all((await store.ids()).map((id) => view(id).catch(() => undefined)));
      return emails
        .filter((e): e is HeldEmail => e !== undefined)
        .sort((a, b) => b.heldAt.localeCompare(a.heldAt) || b.id.localeCompare(a.id));
    },
    get: (id) => view(checkId(id)),
    async release(ids, releaseOptions = {}) {
      const to = releaseOptions.to === undefined ? undefined : parseAddress(releaseOptions.to, 'to');
      const results: ReleaseResult[] = [];
      for (const id of await targets(ids)) results.push(await releaseOne(id, to));
      return results;
    },
    async discard(ids) {
      const results: DiscardResult[] = [];
      for (const id of await targets(ids)) results.push(await discardOne(id));
      return results;
    },
    async verify() {
      await sandbox.verify?.();
      await inner.verify?.();
    },
    close: inner.close ? () => inner.close!() : undefined,
  };
  return hold;

  async function targets(ids: readonly string[] | 'all'): Promise<string[]> {
    if (ids === 'all') return (await hold.list()).filter((e) => e.status === 'held').map((e) => e.id);
    if (!Array.isArray(ids)) throw new TypeError("holdTransport: ids must be an array of ids or 'all'");
    return ids.map((id, i) => checkId(id, `ids[${i}]`));
  }

  async function view(id: string): Promise<HeldEmail | undefined> {
    const state = await store.state(id);
    if (!state) return undefined;
    const message = await store.message(id);
    const claim = store.claimOf(id);
    const interrupted = abandoned(claim);
    const files = sandboxFilesOf(dir, id, message);
    return {
      id,
      status: state.status,
      busy: claim !== undefined && !interrupted,
      interrupted,
      claimFile: store.lockPath(id),
      subject: message.subject,
      from: formatAddress(message.from),
      to: message.to.map(formatAddress),
      cc: message.cc.map(formatAddress),
      bcc: message.bcc.map(formatAddress),
      template: message.template,
      messageId: message.messageId,
      heldAt: state.heldAt,
      history: state.history,
      files,
    };
  }

  /**
   * Runs `work` holding the email's claim; `busy` answers when someone else holds it. `work` calls
   * `keep()` when the claim must outlive it: a send that went out but could not be recorded.
   */
  async function claimed<T>(
    id: string,
    busy: (interrupted: boolean) => T,
    work: (state: StoredState, keep: () => void) => Promise<T>,
    missing: () => T,
  ): Promise<T> {
    if ((await store.state(id)) === undefined) return missing();
    if (!(await store.claim(id))) return busy(abandoned(store.claimOf(id)));
    let kept = false;
    try {
      // Read again under the claim: a release that finished just before must not be repeated.
      const state = await store.state(id);
      return state === undefined ? missing() : await work(state, () => (kept = true));
    } finally {
      if (!kept) await store.unclaim(id);
    }
  }

  function releaseOne(id: string, to: Address | undefined): Promise<ReleaseResult> {
    return claimed<ReleaseResult>(
      id,
      (interrupted) => ({ id, outcome: interrupted ? 'interrupted' : 'busy' }),
      async (state, keep) => {
        if (state.status === 'released') return { id, outcome: 'already-released' };
        if (state.status === 'discarded') return { id, outcome: 'discarded' };
        const original = await store.message(id);
        // Recipients deferred by an earlier release get it now, the very message the others got.
        const message = to
          ? redirected(original, to)
          : state.pending?.length
            ? narrowEnvelope(original, state.pending)
            : original;
        const recipients = [...deliveryRecipients(message)];
        const fail = async (error: EmailError): Promise<ReleaseResult> => {
          const record = failedRecord(recipients, error);
          await store.writeState(id, { ...state, history: [...state.history, record] });
          return { id, outcome: 'failed', error, record };
        };
        const now = route();
        if (state.route !== undefined && state.route !== now) return fail(rerouted(state.route, now));
        let result: SendResult;
        try {
          result = await inner.send(message, { attempt: 1 });
        } catch (error) {
          if (!isEmailError(error)) throw error;
          if (error.failure !== 'ambiguous') return fail(error);
          // It may have gone out: the claim stays, so nobody sends it again before a person checks.
          keep();
          return fail(mayHaveGone(id, error, store.lockPath(id)));
        }
        const record = releasedRecord(recipients, result);
        // Deferred recipients (4xx) stay held, the next release goes to them only; the others have it.
        const deferred = to ? [] : (result.deferred ?? []);
        const next: StoredState = deferred.length
          ? { ...state, pending: [...deferred], history: [...state.history, record] }
          : { ...state, status: 'released', history: [...state.history, record] };
        try {
          await store.writeState(id, next);
        } catch (cause) {
          // Sent, but the folder does not say so: keep the claim, so nobody sends it again.
          keep();
          throw new EmailError(
            `${id} was released through ${result.transport} (${result.messageId}) but could not be recorded in ${dir}: its claim ${store.lockPath(id)} is kept so that it is not sent again; remove it once the release is recorded`,
            { code: 'io', transport: 'hold', cause },
          );
        }
        return { id, outcome: 'released', record };
      },
      () => ({ id, outcome: 'not-found' }),
    );
  }

  function discardOne(id: string): Promise<DiscardResult> {
    return claimed<DiscardResult>(
      id,
      (interrupted) => ({ id, outcome: interrupted ? 'interrupted' : 'busy' }),
      async (state) => {
        if (state.status === 'released') return { id, outcome: 'released' };
        if (state.status === 'discarded') return { id, outcome: 'already-discarded' };
        const record: HoldRecord = { action: 'discard', at: new Date().toISOString() };
        await store.writeState(id, { ...state, status: 'discarded', history: [...state.history, record] });
        return { id, outcome: 'discarded' };
      },
      () => ({ id, outcome: 'not-found' }),
    );
  }
}

/** A release that would go another way than the email was held for (another server, key or staging rule). */
function rerouted(held: string, now: string): EmailError {
  return new EmailError(
    `it was held to go through ${held}, and this release would go through ${now}: release it where it was held (the same transport, DKIM key and staging variables), or discard it and send it again`,
    { code: 'config', transport: 'hold' },
  );
}

/** A release that failed after the message may have reached the provider (a dropped connection after DATA). */
function mayHaveGone(id: string, error: EmailError, claimFile: string): EmailError {
  return new EmailError(
    `${id} may have been delivered (${error.message}): its claim ${claimFile} is kept so that it is not sent twice; check the recipient's inbox or the provider's log, then remove the claim to release it again`,
    { code: error.code, transport: 'hold', cause: error },
  );
}

function releasedRecord(to: string[], result: SendResult): HoldRecord {
  return {
    action: 'release',
    at: new Date().toISOString(),
    to,
    result: {
      messageId: result.messageId,
      transport: result.transport,
      accepted: [...result.accepted],
      rejected: [...result.rejected],
      deferred: [...(result.deferred ?? [])],
    },
  };
}

function failedRecord(to: string[], error: EmailError): HoldRecord {
  return {
    action: 'release',
    at: new Date().toISOString(),
    to,
    error: {
      name: error.name,
      code: error.code,
      failure: error.failure,
      ...(error.status === undefined ? {} : { status: error.status }),
      message: error.message,
    },
  };
}

/**
 * True for a transport made by {@link holdTransport} (or one that behaves as one): how the preview
 * and `mailroom release` find the hold in a service's options.
 *
 * @example
 * ```ts
 * const { transport } = configFromEnv(); // MAILROOM_HOLD=true
 * if (isHoldTransport(transport)) console.log(await transport.list());
 * ```
 */
export function isHoldTransport(transport: unknown): transport is HoldTransport {
  const t = transport as Partial<HoldTransport> | undefined;
  return (
    typeof t === 'object' &&
    t !== null &&
    t.name === 'hold' &&
    typeof t.release === 'function' &&
    typeof t.list === 'function'
  );
}

/** The message sent to one typed address instead of its recipients; the same Message-ID and content. */
function redirected(message: EmailMessage, to: Address): EmailMessage {
  return createMessage({
    ...message,
    icalEvent: message.icalEvent,
    to: [to],
    cc: [],
    bcc: [],
    headers: withOriginalRecipients(message),
  });
}

function sandboxFilesOf(dir: string, id: string, message: EmailMessage): SandboxFiles {
  const at = (ext: string) => join(dir, `${id}.${ext}`);
  return {
    eml: at('eml'),
    ...(message.html === undefined ? {} : { html: at('html') }),
    ...(message.text === undefined ? {} : { text: at('txt') }),
    json: at('json'),
  };
}

/**
 * The id a hold gave an email, from the result of sending it; undefined when no hold kept it (the
 * transport delivered or captured it some other way).
 *
 * @example
 * ```ts
 * const id = heldId(await mail.sendWelcomeEmail({ to, username }));
 * if (id) await hold.release([id], { to: 'qa@acme.example' });
 * ```
 */
export function heldId(result: SendResult): string | undefined {
  return result.transport === 'hold' ? (result.response as { id: string }).id : undefined;
}
