/**
 * The sandbox outbox as the preview reads it: each captured email is the set of files the sandbox
 * wrote under one base name. Ids come from the folder's own listing and are looked up, never joined
 * into a path as given.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { attachmentsOf, decodeWords, type OutboxAttachment } from './attachments.js';

/** A captured email, as listed. */
export interface OutboxEntry {
  readonly id: string;
  readonly subject: string;
  readonly to: readonly string[];
  readonly from: string;
  readonly template: string | null;
  readonly date: string;
  /** When the sandbox finished writing it (ms, sub-millisecond where the file system has it). */
  readonly written: number;
}

/** A captured email's parts. */
export interface OutboxEmail extends OutboxEntry {
  readonly html: string | undefined;
  readonly text: string | undefined;
  /** The headers of its `.eml`, in order, unfolded. */
  readonly headers: readonly [string, string][];
  /** Its attachments (names, types, decoded sizes), read from the `.eml`. */
  readonly attachments: readonly OutboxAttachment[];
}

const ID = /^[\w.-]{1,200}$/;

/** Captured emails, newest first. */
export async function listOutbox(dir: string): Promise<OutboxEntry[]> {
  if (!existsSync(dir)) return [];
  const ids = (await readdir(dir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
  const entries = await Promise.all(ids.map((id) => summary(dir, id).catch(() => undefined)));
  return (
    entries
      .filter((e): e is OutboxEntry => e !== undefined)
      // The summary is the sandbox's last write: its time orders emails sent in the same millisecond.
      .sort((a, b) => b.written - a.written || b.id.localeCompare(a.id))
  );
}

/** One captured email by id, or undefined when the folder has no such email. */
export async function readOutbox(dir: string, id: string): Promise<OutboxEmail | undefined> {
  if (!(await knownId(dir, id))) return undefined;
  const entry = await summary(dir, id);
  const optional = (file: string) => readFile(join(dir, file), 'utf8').catch(() => undefined);
  const [html, text, eml] = await Promise.all([
    optional(`${id}.html`),
    optional(`${id}.txt`),
    optional(`${id}.eml`),
  ]);
  const attachments = eml ? attachmentsOf(eml).map(({ content: _content, ...shown }) => shown) : [];
  return { ...entry, html, text, headers: eml ? parseHeaders(eml) : [], attachments };
}

/** One attachment's name, type and bytes, by the email's id and the attachment's index; or undefined. */
export async function readAttachment(
  dir: string,
  id: string,
  index: number,
): Promise<(OutboxAttachment & { readonly content: Buffer }) | undefined> {
  const eml = await readEml(dir, id);
  return eml ? attachmentsOf(eml.toString('utf8'))[index] : undefined;
}

/**
 * Deletes one captured email's files; false when the folder has no such email. The summary goes
 * first, so the email leaves the list even if a later file cannot be removed.
 */
export async function deleteOutbox(dir: string, id: string): Promise<boolean> {
  if (!(await knownId(dir, id))) return false;
  for (const ext of ['json', 'eml', 'html', 'txt']) await rm(join(dir, `${id}.${ext}`), { force: true });
  return true;
}

/** The `.eml` bytes of one captured email, or undefined. */
export async function readEml(dir: string, id: string): Promise<Buffer | undefined> {
  if (!(await knownId(dir, id))) return undefined;
  return readFile(join(dir, `${id}.eml`)).catch(() => undefined);
}

async function knownId(dir: string, id: string): Promise<boolean> {
  if (!ID.test(id) || !existsSync(dir)) return false;
  return (await readdir(dir)).includes(`${id}.json`);
}

async function summary(dir: string, id: string): Promise<OutboxEntry> {
  const path = join(dir, `${id}.json`);
  const [raw, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
  const json = JSON.parse(raw) as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    id,
    subject: text(json.subject),
    to: Array.isArray(json.to) ? json.to.map(text) : [],
    from: text(json.from),
    template: typeof json.template === 'string' ? json.template : null,
    date: text(json.date),
    written: info.mtimeMs,
  };
}

/** The header block of a message, unfolded (RFC 5322 2.2.3), with encoded words decoded. */
function parseHeaders(eml: string): [string, string][] {
  const end = eml.search(/\r?\n\r?\n/);
  const block = (end === -1 ? eml : eml.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  return block.split(/\r?\n/).flatMap((line): [string, string][] => {
    const colon = line.indexOf(':');
    return colon > 0 ? [[line.slice(0, colon), decodeWords(line.slice(colon + 1).trim())]] : [];
  });
}
