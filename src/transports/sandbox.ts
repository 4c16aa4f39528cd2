import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { EmailError } from '../errors.js';
import { deliveryRecipients, type EmailMessage, formatAddress } from '../message.js';
import { RECORDS_SEND_AT, type SendResult, type Transport, throwIfAborted } from '../transport.js';
import { buildMime } from './nodemailer-mapping.js';

/** Options for {@link sandboxTransport}. */
export interface SandboxTransportOptions {
  /** Folder the captured mail is written to; created when missing. Default `.mailroom/outbox`. */
  dir?: string;
  /**
   * Called once, at the first email written to `dir` in this process, with the absolute folder.
   * Default: one line on stderr saying that mail is captured, not delivered, and where it went.
   * `false` says nothing.
   */
  onFirstWrite?: ((dir: string) => void) | false;
}

/** Folders already announced in this process: one line per folder, however many transports. */
const announced = new Set<string>();

function announce(dir: string): void {
  process.stderr.write(
    `mailroom: the sandbox captured an email instead of delivering it; files in ${dir} (open the .html or .eml, or run mailroom preview; add .mailroom/ to .gitignore)\n`,
  );
}

/** Where the sandbox wrote one message; found in `SendResult.response`. */
export interface SandboxFiles {
  /**
   * The full RFC 5322 message, CRLF line endings throughout: the bytes the SMTP transport would
   * send (less its DKIM signature). Open it in any mail client.
   */
  readonly eml: string;
  /** The HTML part, when there is one. */
  readonly html?: string;
  /** The plain-text part, when there is one. */
  readonly text?: string;
  /** A JSON summary: addresses, subject, template, category, `sendAt` (when given), tags, metadata, file names. */
  readonly json: string;
}

/**
 * The files the sandbox wrote for a send, or undefined when another transport delivered it.
 *
 * @example
 * ```ts
 * const files = sandboxFiles(await mail.sendWelcomeEmail({ to, username }));
 * if (files) console.log(`open ${files.html}`);
 * ```
 */
export function sandboxFiles(result: SendResult): SandboxFiles | undefined {
  return result.transport === 'sandbox' ? (result.response as SandboxFiles) : undefined;
}

/** A transport that writes mail to a folder instead of delivering it. */
export interface SandboxTransport extends Transport {
  readonly name: 'sandbox';
  /** The absolute folder messages are written to. */
  readonly dir: string;
}

/**
 * Captures mail for pre-production: each message becomes a `.eml` (a real multipart/alternative
 * RFC 5322 message, byte for byte what `smtpTransport` sends), a `.html`, a `.txt` and a `.json`
 * summary in `dir`. Nothing is delivered.
 * A message is written whole or not at all.
 *
 * @example
 * ```ts
 * const mail = new EmailService({ transport: sandboxTransport({ dir: '.mailroom/outbox' }), from });
 * const result = await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
 * console.log((result.response as SandboxFiles).eml);
 * ```
 */
export function sandboxTransport(options: SandboxTransportOptions = {}): SandboxTransport {
  if (options.dir !== undefined && (typeof options.dir !== 'string' || options.dir === '')) {
    throw new TypeError('sandboxTransport: dir must be a non-empty string');
  }
  const dir = resolve(options.dir ?? '.mailroom/outbox');
  const onFirstWrite = options.onFirstWrite === undefined ? announce : options.onFirstWrite;

  return {
    name: 'sandbox',
    captures: true,
    narrowsRecipients: true,
    // Records sendAt in the summary (as it was asked for); nothing is held.
    scheduling: RECORDS_SEND_AT,
    dir,
    describe: () => `sandbox ${dir}`,
    async send(message, context) {
      throwIfAborted(context, 'sandbox');
      const date = new Date();
      const base = `${date.toISOString().replace(/[:.]/g, '-')}-${slug(message.template ?? 'message')}-${randomBytes(3).toString('hex')}`;
      const files: SandboxFiles = {
        eml: join(dir, `${base}.eml`),
        ...(message.html === undefined ? {} : { html: join(dir, `${base}.html`) }),
        ...(message.text === undefined ? {} : { text: join(dir, `${base}.txt`) }),
        json: join(dir, `${base}.json`),
      };
      const contents: [string, string | Buffer][] = [[files.eml, await buildMime(message, date)]];
      if (files.html) contents.push([files.html, message.html ?? '']);
      if (files.text) contents.push([files.text, message.text ?? '']);
      contents.push([files.json, JSON.stringify(summary(message, date, files), null, 2)]);
      await writeAll(contents);
      if (!announced.has(dir)) {
        announced.add(dir);
        if (onFirstWrite) onFirstWrite(dir);
      }
      return {
        messageId: message.messageId,
        accepted: [...deliveryRecipients(message)],
        rejected: [],
        transport: 'sandbox',
        response: files,
      } satisfies SendResult;
    },
    async verify() {
      try {
        await mkdir(dir, { recursive: true });
      } catch (cause) {
        throw new EmailError(`sandbox folder ${dir} is not writable`, {
          code: 'io',
          transport: 'sandbox',
          cause,
        });
      }
    },
  };

  // Each file goes to a temporary name first, so a reader never sees half a message.
  async function writeAll(contents: [string, string | Buffer][]): Promise<void> {
    const written: string[] = [];
    try {
      await mkdir(dir, { recursive: true });
      for (const [path, body] of contents) {
        const tmp = `${path}.tmp`;
        written.push(tmp);
        await writeFile(tmp, body);
      }
      for (const [path] of contents) {
        await rename(`${path}.tmp`, path);
        written.push(path);
      }
    } catch (cause) {
      await Promise.all(written.map((path) => rm(path, { force: true })));
      throw new EmailError(`could not write to the sandbox folder ${dir}`, {
        code: 'io',
        transport: 'sandbox',
        cause,
      });
    }
  }
}

function slug(value: string): string {
  return value.replace(/[^a-z0-9-]+/gi, '-').slice(0, 40) || 'message';
}

function summary(message: EmailMessage, date: Date, files: SandboxFiles) {
  return {
    messageId: message.messageId,
    date: date.toISOString(),
    template: message.template ?? null,
    category: message.category,
    // When the email was asked to be delivered; absent for "at once".
    ...(message.sendAt ? { sendAt: message.sendAt.toISOString() } : {}),
    from: formatAddress(message.from),
    to: message.to.map(formatAddress),
    cc: message.cc.map(formatAddress),
    bcc: message.bcc.map(formatAddress),
    replyTo: message.replyTo.map(formatAddress),
    subject: message.subject,
    headers: message.headers,
    tags: message.tags,
    ...(message.icalEvent
      ? { icalEvent: { method: message.icalEvent.method, filename: message.icalEvent.filename } }
      : {}),
    metadata: message.metadata,
    attachments: message.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType ?? null,
    })),
    // Names only, so the folder can be moved or shared.
    files: Object.fromEntries(Object.entries(files).map(([kind, path]) => [kind, basename(path)])),
  };
}
