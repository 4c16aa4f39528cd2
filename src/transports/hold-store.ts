/**
 * Internal to `holdTransport`: what a held email keeps beside the sandbox's files, in
 * `<dir>/.hold/`: `<id>.message.json` (the message, written once), `<id>.state.json` (its status
 * and history, rewritten whole: temporary file, then rename, so a reader never sees half of it) and
 * `<id>.lock`, the claim of whoever is releasing or discarding it right now. The claim is a file
 * created with `open(…, 'wx')`, which the file system grants to one caller only, across processes.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MessageError } from '../errors.js';
import { createMessage, type EmailMessage, type EmailMessageInput } from '../message.js';

/** The folder, inside the sandbox folder, that holds the hold's own files. */
export const HOLD_FOLDER = '.hold';

/**
 * A held email's id: the sandbox's base name (`2026-12-05T07-00-00-000Z-welcome-3fa2c1`). Letters,
 * digits, `.`, `_` and `-`, starting with a letter or digit, so it never names another folder.
 */
const ID = /^[A-Za-z0-9][\w.-]{0,199}$/;

/** One thing that happened to a held email: a release (delivered or failed) or a discard. */
export interface HoldRecord {
  readonly action: 'release' | 'discard';
  /** When, ISO 8601 UTC (`2026-12-05T08:00:00.000Z`). */
  readonly at: string;
  /** A release: the addresses it went to (the original recipients, or the one typed). */
  readonly to?: readonly string[];
  /** A release the transport accepted: its Message-ID, transport, and accepted/refused recipients. */
  readonly result?: {
    readonly messageId: string;
    readonly transport: string;
    readonly accepted: readonly string[];
    readonly rejected: readonly string[];
    readonly deferred: readonly string[];
  };
  /** A release that failed: the `EmailError`'s name, code, failure class, status and message. */
  readonly error?: {
    readonly name: string;
    readonly code?: string;
    readonly failure?: string;
    readonly status?: number;
    readonly message: string;
  };
}

export interface StoredState {
  readonly version: 1;
  readonly status: 'held' | 'released' | 'discarded';
  readonly heldAt: string;
  readonly history: readonly HoldRecord[];
  /**
   * Where a release was to go when the email was held: the transport's start-up line (its server,
   * DKIM signing, staging rules). A release that would go another way is refused. Absent in files
   * written before it was kept.
   */
  readonly route?: string;
  /** Recipients an earlier release left deferred (4xx): the next release goes to them only. */
  readonly pending?: readonly string[];
}

/** Who holds a claim: enough to tell a claim whose process died on this machine. */
export interface Claim {
  readonly pid: number;
  readonly host: string;
  readonly at: string;
}

/** Checks an id given by a caller (a URL, a command line) before it is joined into any path. */
export function checkId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || !ID.test(id) || id.includes('..')) {
    const shown = typeof id === 'string' ? JSON.stringify(id.slice(0, 60)) : typeof id;
    throw new MessageError(
      field,
      `${shown} is not a held email's id (letters, digits, ".", "_" and "-", as mailroom release lists them)`,
    );
  }
  return id;
}

export function holdStore(dir: string) {
  const folder = join(dir, HOLD_FOLDER);
  const path = (id: string, kind: 'message.json' | 'state.json' | 'lock') => join(folder, `${id}.${kind}`);

  async function writeAtomic(file: string, body: string): Promise<void> {
    const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, body);
      await rename(tmp, file);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  return {
    folder,
    /** Keeps a new email: the message first, the state last, so a listed email can always be released. */
    async create(id: string, message: EmailMessage, heldAt: Date, route: string): Promise<void> {
      await mkdir(folder, { recursive: true });
      await writeAtomic(path(id, 'message.json'), JSON.stringify(serialize(message)));
      const state: StoredState = {
        version: 1,
        status: 'held',
        heldAt: heldAt.toISOString(),
        history: [],
        route,
      };
      await writeAtomic(path(id, 'state.json'), JSON.stringify(state, null, 2));
    },
    async ids(): Promise<string[]> {
      const names = await readdir(folder).catch(() => [] as string[]);
      return names.filter((n) => n.endsWith('.state.json')).map((n) => n.slice(0, -'.state.json'.length));
    },
    /** The state of a known id, or undefined when the hold has no such email. */
    async state(id: string): Promise<StoredState | undefined> {
      const raw = await readFile(path(id, 'state.json'), 'utf8').catch(() => undefined);
      return raw === undefined ? undefined : (JSON.parse(raw) as StoredState);
    },
    async writeState(id: string, state: StoredState): Promise<void> {
      await writeAtomic(path(id, 'state.json'), JSON.stringify(state, null, 2));
    },
    async message(id: string): Promise<EmailMessage> {
      return deserialize(JSON.parse(await readFile(path(id, 'message.json'), 'utf8')) as StoredMessage);
    },
    /** Claims an email for one release or discard; false when someone else holds the claim. */
    async claim(id: string): Promise<boolean> {
      try {
        const handle = await open(path(id, 'lock'), 'wx');
        const claim: Claim = { pid: process.pid, host: hostname(), at: new Date().toISOString() };
        await handle.writeFile(JSON.stringify(claim));
        await handle.close();
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw error;
      }
    },
    async unclaim(id: string): Promise<void> {
      await rm(path(id, 'lock'), { force: true });
    },
    /**
     * The current claim, or undefined when there is none. A claim file that cannot be read (its
     * process died between creating and writing it) still claims: its owner is unknown.
     */
    claimOf(id: string): Claim | undefined {
      let raw: string;
      try {
        raw = readFileSync(path(id, 'lock'), 'utf8');
      } catch {
        return undefined;
      }
      try {
        return JSON.parse(raw) as Claim;
      } catch {
        return { pid: -1, host: 'unknown', at: '' };
      }
    },
    lockPath: (id: string) => path(id, 'lock'),
  };
}

/**
 * Whether a claim was left by a process that is gone (same machine, pid no longer running): its
 * release may or may not have reached the provider, so only a person can decide what to do.
 */
export function abandoned(claim: Claim | undefined): boolean {
  if (!claim || claim.host !== hostname()) return false;
  try {
    process.kill(claim.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** A message as JSON: bytes as base64, everything else as the message has it. */
type StoredMessage = Omit<EmailMessageInput, 'attachments'> & {
  attachments: { filename: string; contentType?: string; cid?: string; text?: string; base64?: string }[];
};

function serialize(message: EmailMessage): StoredMessage {
  return {
    from: message.from,
    to: [...message.to],
    cc: [...message.cc],
    bcc: [...message.bcc],
    replyTo: [...message.replyTo],
    subject: message.subject,
    ...(message.html === undefined ? {} : { html: message.html }),
    ...(message.text === undefined ? {} : { text: message.text }),
    headers: message.headers,
    tags: [...message.tags],
    ...(message.icalEvent ? { icalEvent: message.icalEvent } : {}),
    metadata: message.metadata,
    ...(message.template === undefined ? {} : { template: message.template }),
    messageId: message.messageId,
    ...(message.idempotencyKey === undefined ? {} : { idempotencyKey: message.idempotencyKey }),
    // Released as it was sent: the category (a provider's tags and metadata) and the language.
    category: message.category,
    ...(message.locale === undefined ? {} : { locale: message.locale }),
    ...(message.sendAt === undefined ? {} : { sendAt: message.sendAt.toISOString() }),
    attachments: message.attachments.map((a) => ({
      filename: a.filename,
      ...(a.contentType === undefined ? {} : { contentType: a.contentType }),
      ...(a.cid === undefined ? {} : { cid: a.cid }),
      ...(typeof a.content === 'string'
        ? { text: a.content }
        : { base64: Buffer.from(a.content).toString('base64') }),
    })),
  };
}

/** Back to a message, checked again as any message is: a file edited by hand cannot smuggle a header in. */
function deserialize(stored: StoredMessage): EmailMessage {
  return createMessage({
    ...stored,
    attachments: stored.attachments.map(({ text, base64, ...rest }) => ({
      ...rest,
      content: text ?? new Uint8Array(Buffer.from(base64 ?? '', 'base64')),
    })),
  });
}
