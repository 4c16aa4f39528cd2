/**
 * Internal: the spam check. Runs a local SpamAssassin on the whole message: `spamassassin -L -t`
 * (`-L`: local tests only, no DNS blocklists or other network tests), or else `spamc -R` when only
 * the client of a running `spamd` is installed (its tests are those spamd is configured with).
 * Neither installed is an info finding, never a failure.
 */
import { spawn } from 'node:child_process';
import { loadMailComposer } from '../lazy-deps.js';
import type { CheckableEmail, CheckFinding } from './checks.js';

/** SpamAssassin's own default `required_score`, used when its report does not say. */
const DEFAULT_REQUIRED = 5;
/** One run takes about a second; a loaded machine may take much longer. */
const TIMEOUT_MS = 60_000;

/** What SpamAssassin said about one message. */
export interface SpamVerdict {
  readonly score: number;
  readonly required: number;
  /** The rules that fired, with their points. */
  readonly rules: readonly { name: string; points: number }[];
  readonly command: 'spamassassin' | 'spamc';
}

/**
 * The spam score as findings: an error at or over SpamAssassin's threshold (5 by default), a
 * warning from half of it, info below.
 */
export async function spamCheck(
  email: CheckableEmail,
  from = 'mailroom@example.com',
): Promise<CheckFinding[]> {
  const eml = email.raw ?? (await buildMessage(email, from));
  const verdict = await assess(eml);
  if (verdict === undefined) {
    return [
      {
        check: 'spam',
        severity: 'info',
        message: 'no spam score: SpamAssassin is not installed (apt-get install spamassassin)',
      },
    ];
  }
  if (typeof verdict === 'string')
    return [{ check: 'spam', severity: 'info', message: `no spam score: ${verdict}` }];
  const rules = verdict.rules.map((rule) => `${rule.name} ${rule.points}`).join(', ');
  const severity =
    verdict.score >= verdict.required ? 'error' : verdict.score >= verdict.required / 2 ? 'warning' : 'info';
  return [
    {
      check: 'spam',
      severity,
      message: `SpamAssassin scores it ${verdict.score} (spam from ${verdict.required})${rules ? `: ${rules}` : ''}`,
      where: verdict.command,
    },
  ];
}

/** The message as the SMTP transport would send it, for an email known only by its parts. */
async function buildMessage(email: CheckableEmail, from: string): Promise<string> {
  const composer = new (loadMailComposer())({
    from,
    to: 'recipient@example.com',
    subject: email.subject,
    ...(email.html === undefined ? {} : { html: email.html }),
    ...(email.text === undefined ? {} : { text: email.text }),
  });
  return (await composer.compile().build()).toString('utf8');
}

/**
 * SpamAssassin's verdict; undefined when neither command is installed, a sentence when one is
 * and failed.
 */
export function assess(eml: string): Promise<SpamVerdict | string | undefined> {
  // One at a time: each run is a second or more of CPU, and a page can ask for many at once.
  const turn = queue.then(() => assessNow(eml));
  queue = turn.then(
    () => undefined,
    () => undefined,
  );
  return turn;
}

/** The SpamAssassin runs waiting their turn, chained. */
let queue: Promise<void> = Promise.resolve();

async function assessNow(eml: string): Promise<SpamVerdict | string | undefined> {
  const local = await run('spamassassin', ['-L', '-t'], eml);
  if (local.missing) {
    const client = await run('spamc', ['-x', '-R'], eml);
    if (client.missing) return undefined;
    if (client.code !== 0) return `spamc failed (is spamd running?): ${firstLine(client.stderr)}`;
    return parseSpamc(client.stdout);
  }
  if (local.code !== 0 && !local.stdout) return `spamassassin failed: ${firstLine(local.stderr)}`;
  return parseReport(local.stdout) ?? `spamassassin gave no score: ${firstLine(local.stdout)}`;
}

/** `spamassassin -t` output: the `X-Spam-Status` header and the points table. */
export function parseReport(output: string): SpamVerdict | undefined {
  const status = /^X-Spam-Status: (.*(?:\r?\n[ \t].*)*)/m.exec(output)?.[1]?.replace(/\s+/g, ' ') ?? '';
  const score = /score=(-?[\d.]+)/.exec(status)?.[1];
  if (score === undefined) return undefined;
  const required = Number(/required=(-?[\d.]+)/.exec(status)?.[1] ?? DEFAULT_REQUIRED);
  return { score: Number(score), required, rules: pointsTable(output), command: 'spamassassin' };
}

/** `spamc -R` output: `score/required` on the first line, then the report. */
function parseSpamc(output: string): SpamVerdict | string {
  const head = /^(-?[\d.]+)\/(-?[\d.]+)/.exec(output);
  if (!head) return `spamc gave no score: ${firstLine(output)}`;
  return { score: Number(head[1]), required: Number(head[2]), rules: pointsTable(output), command: 'spamc' };
}

/** The rows of the report's ` pts rule name  description` table (a wrapped description is skipped). */
function pointsTable(output: string): { name: string; points: number }[] {
  const lines = output.split(/\r?\n/);
  const head = lines.findIndex((line) => /^ pts rule name/.test(line));
  const rules: { name: string; points: number }[] = [];
  if (head === -1) return rules;
  for (const line of lines.slice(head + 2)) {
    const row = /^\s*(-?[\d.]+)\s+([A-Z0-9_]+)\b/.exec(line);
    if (row) rules.push({ name: row[2] as string, points: Number(row[1]) });
    else if (!/^\s+\S/.test(line)) break;
  }
  return rules;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 200) ?? '';
}

function run(
  command: string,
  args: string[],
  input: string,
): Promise<{ missing: boolean; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      resolve({ missing: error.code === 'ENOENT', code: null, stdout, stderr: stderr || error.message });
    });
    child.on('close', (code) => resolve({ missing: false, code, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
