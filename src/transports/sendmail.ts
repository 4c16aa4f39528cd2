/**
 * Delivery through a local sendmail-compatible binary (Postfix's or Exim's `sendmail`, msmtp,
 * nullmailer …): the message's RFC 5322 bytes on stdin, the envelope as arguments, never a shell.
 * The binary's exit status (sysexits.h) and its stderr say what happened.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { ConfigError, EmailError, type EmailErrorCode, MessageError } from '../errors.js';
import { oneLine } from '../log.js';
import { deliveryRecipients, type EmailMessage } from '../message.js';
import { type SendContext, type SendResult, type Transport, throwIfAborted } from '../transport.js';
import { type DkimOptions, dkimSigner } from './dkim.js';
import { wireBytes } from './nodemailer-mapping.js';

/** Options of {@link sendmailTransport}. */
export interface SendmailTransportOptions {
  /**
   * The binary, an absolute path (never looked up in `PATH`). Default `/usr/sbin/sendmail`, where
   * Postfix, Exim and the `msmtp-mta` package put theirs; msmtp alone is `/usr/bin/msmtp`.
   */
  path?: string;
  /**
   * Extra arguments, given before ours, e.g. `['-C', '/etc/msmtprc']` (msmtp's configuration) or
   * `['-odq']` (Exim: queue only). Default none. No line breaks or NUL characters.
   */
  args?: readonly string[];
  /**
   * How long the binary may take over one message (ms), from start to exit. Then it is stopped
   * (SIGTERM, SIGKILL 5 s later) and the send fails as `timeout`, a possible duplicate: it may
   * have queued the message already. Default 60 000.
   */
  timeoutMs?: number;
  /**
   * Sign every message with DKIM before it is handed to the binary, as `SmtpTransportOptions.dkim`
   * signs (rsa-sha256, relaxed/relaxed; the key checked when the transport is built, a message that
   * cannot be signed failing with a systemic `EmailError`, never sent unsigned). Leave it out when
   * the MTA signs itself (an OpenDKIM milter). Default: none.
   */
  dkim?: DkimOptions;
}

/**
 * A sendmail transport. A send resolves when the binary exits 0: the message was **accepted for
 * delivery** (queued by Postfix or Exim, or relayed by msmtp to its server), not delivered to an
 * inbox; a later bounce comes back as mail to the envelope sender, as with any MTA.
 */
export interface SendmailTransport extends Transport {
  readonly name: 'sendmail';
  /** Checks that the binary exists and may be executed; sends nothing. Rejects with a `ConfigError` naming `path`. */
  verify(): Promise<void>;
  /** Lets sends in flight finish. Later sends fail as `aborted`. */
  close(): Promise<void>;
}

const DEFAULT_PATH = '/usr/sbin/sendmail';
const DEFAULT_TIMEOUT_MS = 60_000;
/** After SIGTERM, how long a stopped binary gets before SIGKILL. */
const KILL_AFTER_MS = 5_000;
/** stderr kept for the error text; the rest is drained and dropped. */
const STDERR_LIMIT = 4096;
const LINE_BREAK_OR_NUL = /[\r\n\0]/;

/**
 * Sends through a local sendmail-compatible binary, as
 * `path [...args] -i -f <from> -- <recipients…>` with the message on stdin. `-i` keeps a line
 * holding a single dot from ending the message; `--` ends the options, so no recipient is read
 * as one. The recipients are the envelope's only: `-t` is never passed, so Bcc stays hidden.
 *
 * Exit statuses (sysexits.h; FreeBSD sysexits(3)) and what they mean for the message:
 * - 0: accepted for delivery;
 * - 75 EX_TEMPFAIL: `deferred`, transient (msmtp: the server could not be reached);
 * - 65 EX_DATAERR, 67 EX_NOUSER, 68 EX_NOHOST: `rejected`, permanent (msmtp: a 5xx reply to
 *   MAIL FROM or RCPT TO);
 * - 69 EX_UNAVAILABLE: msmtp's exit for any error reply of the server it relays to; with the
 *   reply on stderr (`server message: 451 …`) it follows the SMTP code (4xx `deferred`, 5xx
 *   `rejected`, `status` set); without one (no STARTTLS, no AUTH, an untrusted certificate;
 *   for Postfix a missing helper) it is `config`, systemic;
 * - 74 EX_IOERR, 76 EX_PROTOCOL: `network`, ambiguous (msmtp: the connection to its server broke
 *   or timed out, perhaps after the final dot);
 * - 77 EX_NOPERM: `auth`, systemic (msmtp: AUTH refused; Postfix: not allowed to submit);
 * - 64 EX_USAGE, 66 EX_NOINPUT, 70–73, 78 EX_CONFIG: `config`, systemic;
 * - killed by our timeout: `timeout`, ambiguous; killed by another signal: `network`, ambiguous;
 * - any other exit status: by the SMTP reply quoted at the start of a line of stderr, as for 69,
 *   else `provider`, transient.
 *
 * A missing or non-executable binary is a `ConfigError` naming `path`; an envelope address a
 * binary could read as an option (leading `-`) or that holds a line break or NUL is a
 * `MessageError` naming the field (`from`, `to[1]` …).
 *
 * @example
 * ```ts
 * // Postfix or Exim on this machine:
 * const transport = sendmailTransport();
 * // msmtp relaying with its own configuration file:
 * const relay = sendmailTransport({ path: '/usr/bin/msmtp', args: ['-C', '/etc/msmtprc'] });
 * ```
 */
export function sendmailTransport(options: SendmailTransportOptions = {}): SendmailTransport {
  const { path, args, timeoutMs } = checkOptions(options);
  const dkim = options.dkim === undefined ? undefined : dkimSigner(options.dkim);
  const inflight = new Set<Promise<unknown>>();
  let closed = false;

  return {
    name: 'sendmail',
    narrowsRecipients: true,
    ...(dkim === undefined ? {} : { dkim: dkim.identity }),
    // The arguments are not shown: one could hold a secret (msmtp's --passwordeval).
    describe: () =>
      `sendmail ${path}${args.length ? ` (${args.length} extra argument${args.length === 1 ? '' : 's'})` : ''}${dkim ? ', DKIM-signed' : ''}`,
    check: (message) => void envelope(message),
    async send(message, context) {
      throwIfAborted(context, 'sendmail');
      if (closed)
        throw new EmailError('the sendmail transport is closed', { code: 'aborted', transport: 'sendmail' });
      const recipients = envelope(message);
      const argv = [...args, '-i', '-f', message.from.address, '--', ...recipients];
      const sending = wireBytes(message, dkim).then((source) => run(path, argv, source, timeoutMs, context));
      inflight.add(sending);
      try {
        const output = await sending;
        return {
          messageId: message.messageId,
          accepted: [...recipients],
          rejected: [],
          transport: 'sendmail',
          ...(output ? { response: output } : {}),
        } satisfies SendResult;
      } finally {
        inflight.delete(sending);
      }
    },
    async verify() {
      await checkExecutable(path);
    },
    async close() {
      closed = true;
      await Promise.allSettled(inflight);
    },
  };
}

/** How the binary ended, and what it said on stderr (trimmed, at most its first 4 KB). */
interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Maps a non-zero exit (or a death by signal) to our error, per sysexits.h (see {@link sendmailTransport}). */
function exitError(exit: Exit, path: string): EmailError {
  const { code, signal, stderr } = exit;
  const said = stderr ? `: ${oneLine(stderr, 500)}` : '';
  if (code === null) {
    // Not our timeout (that is handled where the timer fires): it may have queued the message.
    return new EmailError(`sendmail ${path} was killed by ${signal ?? 'a signal'}${said}`, {
      code: 'network',
      transport: 'sendmail',
      handedOver: true,
      endpoint: path,
      ...(signal ? { causeCode: signal } : {}),
    });
  }
  const name = SYSEXITS[code];
  const reply = smtpReply(stderr);
  const mapped = exitCode(code, reply);
  return new EmailError(
    `sendmail ${path} exited with ${code}${name ? ` (${name})` : ''}: ${describe(mapped)}${said}`,
    {
      code: mapped,
      transport: 'sendmail',
      ...(reply === undefined ? {} : { status: reply }),
      // 74 and 76 are broken connections to msmtp's server, perhaps after the final dot.
      handedOver: mapped === 'network',
      endpoint: path,
      ...(name ? { causeCode: name } : {}),
    },
  );
}

function exitCode(code: number, reply: number | undefined): EmailErrorCode {
  switch (code) {
    case 75:
      return 'deferred';
    case 65:
    case 67:
    case 68:
      return 'rejected';
    case 69:
      if (reply === undefined) return 'config';
      return reply < 500 ? 'deferred' : 'rejected';
    case 74:
    case 76:
      return 'network';
    case 77:
      return 'auth';
    case 64:
    case 66:
    case 70:
    case 71:
    case 72:
    case 73:
    case 78:
      return 'config';
    default:
      if (reply === undefined) return 'provider';
      return reply < 500 ? 'deferred' : 'rejected';
  }
}

/** The names of sysexits.h (4.3BSD; FreeBSD sysexits(3)), kept as the error's `causeCode`. */
const SYSEXITS: Readonly<Record<number, string>> = {
  64: 'EX_USAGE',
  65: 'EX_DATAERR',
  66: 'EX_NOINPUT',
  67: 'EX_NOUSER',
  68: 'EX_NOHOST',
  69: 'EX_UNAVAILABLE',
  70: 'EX_SOFTWARE',
  71: 'EX_OSERR',
  72: 'EX_OSFILE',
  73: 'EX_CANTCREAT',
  74: 'EX_IOERR',
  75: 'EX_TEMPFAIL',
  76: 'EX_PROTOCOL',
  77: 'EX_NOPERM',
  78: 'EX_CONFIG',
};

/** The SMTP reply a relaying binary quoted (msmtp: `server message: 550 …`), when it quoted one. */
function smtpReply(stderr: string): number | undefined {
  const match = /(?:server message: |^)([45]\d\d)[ -]/m.exec(stderr);
  return match ? Number(match[1]) : undefined;
}

function describe(code: EmailErrorCode): string {
  switch (code) {
    case 'deferred':
      return 'temporary failure, try again later';
    case 'rejected':
      return 'the message or its recipients were refused';
    case 'network':
      return 'the connection to the mail server broke, perhaps after the message went out';
    case 'auth':
      return 'permission denied';
    case 'config':
      return 'the mail system is misconfigured or broken, and will not send until it is fixed';
    default:
      return 'it failed';
  }
}

/**
 * Runs the binary with `argv`, writes `source` to its stdin and resolves with what it printed on
 * stderr (trimmed, bounded) when it exits 0. Never through a shell.
 */
function run(
  path: string,
  argv: readonly string[],
  source: Buffer,
  timeoutMs: number,
  context: SendContext,
): Promise<string> {
  return new Promise((resolve, reject) => {
    throwIfAborted(context, 'sendmail');
    let child: ChildProcess;
    try {
      child = spawn(path, argv, { stdio: ['pipe', 'pipe', 'pipe'], shell: false, windowsHide: true });
    } catch (error) {
      reject(spawnError(error, path));
      return;
    }
    let settled = false;
    const stderr: Buffer[] = [];
    let kept = 0;
    const keep = (chunk: Buffer) => {
      if (kept >= STDERR_LIMIT) return;
      stderr.push(chunk.subarray(0, STDERR_LIMIT - kept));
      kept += chunk.length;
    };
    // Both streams are read to the end: a binary blocked on a full pipe would never exit.
    child.stdout?.resume();
    child.stderr?.on('data', keep);
    const said = () => Buffer.concat(stderr).toString('utf8').trim();

    const finish = (error: Error | undefined, output?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      context.signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve(output ?? '');
    };
    const stop = () => {
      child.kill('SIGTERM');
      setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, KILL_AFTER_MS).unref();
    };
    const timer = setTimeout(() => {
      stop();
      finish(
        new EmailError(
          `sendmail ${path} did not finish within ${timeoutMs} ms and was stopped; it may have queued the message${stderr.length ? `: ${oneLine(said(), 500)}` : ''}`,
          { code: 'timeout', transport: 'sendmail', handedOver: true, endpoint: path },
        ),
      );
    }, timeoutMs);
    const onAbort = () => {
      stop();
      finish(
        new EmailError('the send was aborted', {
          code: 'aborted',
          transport: 'sendmail',
          endpoint: path,
          cause: context.signal?.reason,
        }),
      );
    };
    context.signal?.addEventListener('abort', onAbort, { once: true });

    child.once('error', (error) => finish(spawnError(error, path)));
    child.once('close', (code, signal) => {
      if (code === 0) finish(undefined, oneLine(said(), 500));
      else finish(exitError({ code, signal, stderr: said() }, path));
    });
    // A binary that exits before reading everything (a refusal) closes the pipe: its exit status
    // says more than the EPIPE, so a write error is left to 'close'.
    child.stdin?.on('error', () => {});
    child.stdin?.end(source);
  });
}

/** A binary that could not be started: missing or not executable is the setup's mistake. */
function spawnError(error: unknown, path: string): Error {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT')
    return new ConfigError(
      'path',
      `${path} does not exist: install a sendmail-compatible MTA (Postfix, Exim, msmtp-mta) or point path (SENDMAIL_PATH) at one`,
    );
  if (code === 'EACCES' || code === 'EISDIR' || code === 'ENOEXEC')
    return new ConfigError('path', `${path} cannot be executed (${code})`);
  return new EmailError(`sendmail ${path} could not be started (${code ?? 'error'})`, {
    code: 'provider',
    transport: 'sendmail',
    endpoint: path,
    ...(code ? { causeCode: code } : {}),
    cause: error,
  });
}

/** The binary exists, is a file, and this process may execute it. */
async function checkExecutable(path: string): Promise<void> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    await access(path, constants.X_OK);
  } catch (error) {
    throw spawnError(error, path);
  }
}

/**
 * The envelope: the sender and the recipients of this attempt, each checked so that a binary can
 * only read it as an address. Message validation already refuses control characters; this is
 * the last line before argv, and a leading `-` is a valid local part that it does not refuse.
 */
function envelope(message: EmailMessage): readonly string[] {
  checkArgument(message.from.address, 'from');
  const fields = new Map<string, string>();
  for (const list of ['bcc', 'cc', 'to'] as const) {
    message[list].forEach((a, i) => {
      fields.set(a.address, `${list}[${i}]`);
    });
  }
  const recipients = deliveryRecipients(message);
  recipients.forEach((address, i) => {
    checkArgument(address, fields.get(address) ?? `recipients[${i}]`);
  });
  return recipients;
}

function checkArgument(address: string, field: string): void {
  if (address.startsWith('-'))
    throw new MessageError(field, 'an address starting with "-" would be read as an option by sendmail');
  if (LINE_BREAK_OR_NUL.test(address))
    throw new MessageError(field, 'an address with a line break or NUL cannot be passed to sendmail');
}

function checkOptions(options: SendmailTransportOptions) {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('sendmailTransport: options must be an object');
  const path = options.path ?? DEFAULT_PATH;
  if (typeof path !== 'string' || path.trim() === '')
    throw new ConfigError('path', 'must be a path to a sendmail binary');
  if (LINE_BREAK_OR_NUL.test(path)) throw new ConfigError('path', 'must not contain line breaks or NUL');
  if (path.startsWith('-')) throw new ConfigError('path', 'must not start with "-"');
  if (!isAbsolute(path))
    throw new ConfigError(
      'path',
      'must be an absolute path (such as /usr/sbin/sendmail): PATH is never searched',
    );
  const args = options.args ?? [];
  if (!Array.isArray(args)) throw new ConfigError('args', 'must be an array of strings');
  args.forEach((arg: unknown, i) => {
    if (typeof arg !== 'string') throw new ConfigError(`args[${i}]`, 'must be a string');
    if (LINE_BREAK_OR_NUL.test(arg))
      throw new ConfigError(`args[${i}]`, 'must not contain line breaks or NUL');
  });
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2_147_483_647)
    throw new ConfigError('timeoutMs', 'must be a whole number of milliseconds, at least 1');
  return { path, args: [...args] as string[], timeoutMs };
}
