/**
 * Checks that catch a bad email before a customer does, computed locally from a rendered email:
 * client support, links, images, size, the text part, subject and preheader, and a spam score
 * when SpamAssassin is installed. Each check is a small named function returning findings.
 */
import { isProduction } from '../env-names.js';
import { isLoopback } from '../loopback.js';
import { clientNames, MAJOR_CLIENTS, unsupportedUses } from './client-support.js';
import { hostCheck } from './hosts.js';
import { type HtmlElement, type ScannedHtml, scanHtml, textOf } from './html-scan.js';
import { spamCheck } from './spam.js';

/** The checks, by name. */
export type CheckName =
  | 'client-support'
  | 'links'
  | 'images'
  | 'size'
  | 'text-links'
  | 'subject'
  | 'preheader'
  | 'spam'
  /** The brand's colours (see `checkBrand`), not one email's. */
  | 'contrast';

/** How bad a finding is: `error` fails `mailroom check`; `warning` should be looked at; `info` is a fact. */
export type CheckSeverity = 'error' | 'warning' | 'info';

/** One thing a check found. */
export interface CheckFinding {
  readonly check: CheckName;
  readonly severity: CheckSeverity;
  readonly message: string;
  /** Where in the email: an element (`<a href="http://…">`), `subject`, `text part` … */
  readonly where?: string;
}

/** A rendered email, as `EmailService.render()` returns it or as the sandbox captured it. */
export interface CheckableEmail {
  readonly subject: string;
  readonly html?: string | undefined;
  readonly text?: string | undefined;
  /** The preheader, when known; otherwise it is looked for in the HTML (a hidden first element). */
  readonly preheader?: string | undefined;
  /** The whole message (`.eml`) for the spam check; built from the parts when missing. */
  readonly raw?: string | undefined;
}

/** Options of {@link checkEmail}. */
export interface CheckOptions {
  /**
   * Links and images to localhost, a loopback address or a `stagingHosts` name are errors in
   * production and info otherwise. Default: `NODE_ENV` is production.
   */
  production?: boolean;
  /**
   * Host names of your non-production deployments, as `allowedHosts` writes them: a leading dot
   * takes the subdomains too (`'.staging.acme.example'`). Names only. Default none.
   */
  stagingHosts?: readonly string[];
  /**
   * The `family/platform` clients (caniemail's keys, e.g. `outlook/windows`, `gmail/android`) whose
   * missing support is reported. Default {@link MAJOR_CLIENTS}: Apple Mail, Gmail, Outlook, Yahoo.
   */
  clients?: readonly string[];
  /** Run SpamAssassin when installed (about a second per email). Default true. */
  spam?: boolean;
  /** Sender used in the message built for SpamAssassin when `raw` is missing. Default `mailroom@example.com`. */
  from?: string;
}

/** All findings, and how many of each severity. */
export interface CheckReport {
  readonly findings: readonly CheckFinding[];
  readonly errors: number;
  readonly warnings: number;
  readonly infos: number;
}

/**
 * Gmail shows "[Message clipped]" and hides the rest of an email whose HTML is over about 102 KB
 * (Al Iverson, "What is Gmail clipping and what to do about it", spamresource.com, January 2022:
 * 102 KB is the common guidance; he measured about 105 KB, depending on the transfer encoding).
 * Counted here as UTF-8 bytes of the HTML part, 1 KB = 1024 bytes.
 */
export const GMAIL_CLIP_BYTES = 102 * 1024;

/**
 * Mailchimp's subject-line guidance ("Best practices for email subject lines", Mailchimp help):
 * no more than 60 characters, since inboxes, phones most of all, cut longer subjects off.
 */
export const SUBJECT_MAX_LENGTH = 60;

/**
 * Runs every check on one rendered email.
 *
 * Never throws for what it finds. A wrong argument (a subject that is not a string, a `clients`
 * entry that is not `family/platform`) throws a TypeError naming it; a malformed `stagingHosts`
 * entry a ConfigError naming `stagingHosts`. The spam check runs a local `spamassassin` (or `spamc`) when one is
 * installed and says so (info) when none is.
 *
 * @example
 * ```ts
 * import { checkEmail } from 'mailroom-js/preview';
 *
 * const report = await checkEmail(service.render('welcome', data), { production: true });
 * for (const f of report.findings) console.log(f.severity, f.check, f.message);
 * ```
 */
export async function checkEmail(email: CheckableEmail, options: CheckOptions = {}): Promise<CheckReport> {
  const findings = checkEmailLocally(email, options);
  if (options.spam !== false) findings.push(...(await spamCheck(email, options.from)));
  return report(findings);
}

/** Every check except the spam score, synchronously (the preview's sidebar badges). Internal. */
export function checkEmailLocally(email: CheckableEmail, options: CheckOptions = {}): CheckFinding[] {
  validate(email, options);
  const local = localHosts(options);
  const scanned = scanHtml(email.html ?? '');
  return [
    ...subjectCheck(email),
    ...preheaderCheck(email),
    ...sizeCheck(email),
    ...(email.html === undefined ? [] : linkCheck(scanned, local)),
    ...(email.html === undefined ? [] : imageCheck(scanned, local)),
    ...(email.html === undefined ? [] : textLinkCheck(scanned, email.text)),
    ...(email.html === undefined ? [] : clientSupportCheck(scanned, options.clients)),
  ];
}

/** A wrong argument is a TypeError naming it, before anything is checked. */
function validate(email: CheckableEmail, options: CheckOptions): void {
  if (typeof email !== 'object' || email === null) throw new TypeError('checkEmail: email must be an object');
  if (typeof email.subject !== 'string') throw new TypeError('checkEmail: email.subject must be a string');
  for (const part of ['html', 'text', 'preheader', 'raw'] as const) {
    if (email[part] !== undefined && typeof email[part] !== 'string') {
      throw new TypeError(`checkEmail: email.${part} must be a string when given`);
    }
  }
  const clients = options.clients;
  if (
    clients !== undefined &&
    (!Array.isArray(clients) || clients.some((c) => !/^[a-z0-9-]+\/[a-z0-9-]+$/.test(c)))
  ) {
    throw new TypeError(
      "checkEmail: options.clients must be caniemail's family/platform keys, e.g. ['outlook/windows']",
    );
  }
}

/** Counts the findings, most severe first. Internal. */
export function report(findings: readonly CheckFinding[]): CheckReport {
  const order: Record<CheckSeverity, number> = { error: 0, warning: 1, info: 2 };
  const sorted = [...findings].sort((a, b) => order[a.severity] - order[b.severity]);
  const count = (severity: CheckSeverity) => findings.filter((f) => f.severity === severity).length;
  return { findings: sorted, errors: count('error'), warnings: count('warning'), infos: count('info') };
}

/** The subject: present, and short enough to be read whole ({@link SUBJECT_MAX_LENGTH}). */
export function subjectCheck(email: CheckableEmail): CheckFinding[] {
  const subject = email.subject?.trim() ?? '';
  if (!subject)
    return [{ check: 'subject', severity: 'error', message: 'the subject is empty', where: 'subject' }];
  const length = [...subject].length;
  if (length > SUBJECT_MAX_LENGTH) {
    return [
      {
        check: 'subject',
        severity: 'warning',
        message: `the subject has ${length} characters: over ${SUBJECT_MAX_LENGTH}, inboxes cut it off`,
        where: 'subject',
      },
    ];
  }
  return [];
}

/**
 * A preheader: the line an inbox shows after the subject. Without one, inboxes show the first
 * words of the body (often "View in browser" or a greeting). Found in the HTML as the first
 * element hidden with `display:none` or a `preheader` class, when not given.
 */
export function preheaderCheck(email: CheckableEmail): CheckFinding[] {
  if (email.html === undefined && email.preheader === undefined) return [];
  const preheader = visible(email.preheader ?? findPreheader(email.html ?? ''));
  if (preheader) return [];
  return [
    {
      check: 'preheader',
      severity: 'warning',
      message: 'no preheader: inboxes will show the first words of the body after the subject',
      where: 'html',
    },
  ];
}

/** Text without the invisible characters layouts pad a preheader with (zero-width, no-break spaces). */
function visible(text: string): string {
  return text.replace(/(?:[\u200b-\u200d\u00a0\ufeff\s]|\u034f)+/g, ' ').trim();
}

function findPreheader(html: string): string {
  const body = /<body\b[^>]*>/i.exec(html);
  const rest = body ? html.slice(body.index + body[0].length) : html;
  const hidden = /<(div|span|p|td)\b([^>]*)>([\s\S]*?)<\/\1>/gi;
  for (const m of rest.matchAll(hidden)) {
    const attrs = m[2] ?? '';
    if (/display\s*:\s*none/i.test(attrs) || /class\s*=\s*["']?[^"'>]*\bpreheader\b/i.test(attrs)) {
      return textOf(m[3] ?? '');
    }
    // A visible element with text came first: that is what the inbox shows.
    if (visible(textOf(m[3] ?? ''))) return '';
  }
  return '';
}

/** The HTML's size against Gmail's clipping ({@link GMAIL_CLIP_BYTES}): an error over, a warning within 10%. */
export function sizeCheck(email: CheckableEmail): CheckFinding[] {
  if (email.html === undefined) return [];
  const bytes = Buffer.byteLength(email.html, 'utf8');
  const kb = (bytes / 1024).toFixed(1);
  if (bytes > GMAIL_CLIP_BYTES) {
    return [
      {
        check: 'size',
        severity: 'error',
        message: `the HTML is ${kb} KB: Gmail clips email over 102 KB and hides the rest behind "View entire message"`,
        where: 'html',
      },
    ];
  }
  if (bytes > GMAIL_CLIP_BYTES * 0.9) {
    return [
      {
        check: 'size',
        severity: 'warning',
        message: `the HTML is ${kb} KB, close to Gmail's 102 KB clipping`,
        where: 'html',
      },
    ];
  }
  return [];
}

/** Decides whether a URL's host is this machine or a staging host, and how bad that is. */
interface LocalHosts {
  readonly matches: (host: string) => boolean;
  readonly severity: CheckSeverity;
}

function localHosts(options: CheckOptions): LocalHosts {
  const staging = hostCheck(options.stagingHosts, 'stagingHosts');
  const production = options.production ?? isProduction(process.env.NODE_ENV);
  return { matches: (host) => staging(host), severity: production ? 'error' : 'info' };
}

/** One URL attribute's problems: malformed, relative, not https, or a local or staging host. */
function urlFindings(
  check: 'links' | 'images',
  url: string,
  where: string,
  local: LocalHosts,
  allowed: readonly string[],
): CheckFinding[] {
  const trimmed = url.trim();
  const scheme = /^([a-z][a-z\d+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    return [
      {
        check,
        severity: 'error',
        message: `"${short(trimmed)}" is not an absolute URL: an email has no page to be relative to`,
        where,
      },
    ];
  }
  if (allowed.includes(scheme)) return [];
  if (scheme !== 'http' && scheme !== 'https') {
    return [
      {
        check,
        severity: 'error',
        message: `"${short(trimmed)}": the ${scheme}: scheme does not belong in an email`,
        where,
      },
    ];
  }
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
    if (!parsed.hostname || /\s/.test(trimmed)) throw new TypeError('no host');
  } catch {
    return [{ check, severity: 'error', message: `"${short(trimmed)}" is a malformed URL`, where }];
  }
  const out: CheckFinding[] = [];
  if (local.matches(parsed.host)) {
    const kind = isLoopback(parsed.hostname) ? 'this machine' : 'a staging host';
    out.push({
      check,
      severity: local.severity,
      message: `${parsed.host} is ${kind}: no recipient can reach it${local.severity === 'info' ? ' (an error in production)' : ''}`,
      where,
    });
  }
  if (scheme === 'http')
    out.push({ check, severity: 'warning', message: `"${short(trimmed)}" is not https`, where });
  return out;
}

/** Every `<a>`: an `href`, well-formed, absolute, https, not local (see {@link CheckOptions.stagingHosts}). */
export function linkCheck(scanned: ScannedHtml, local: LocalHosts): CheckFinding[] {
  const out: CheckFinding[] = [];
  for (const a of scanned.elements.filter((e) => e.tag === 'a')) {
    const href = a.attrs.get('href');
    const where = describe(a, 'href');
    if (href === undefined) {
      if (!a.attrs.has('name') && !a.attrs.has('id')) {
        out.push({
          check: 'links',
          severity: 'warning',
          message: `a link without href: "${short(a.inner ?? '')}" cannot be followed`,
          where,
        });
      }
      continue;
    }
    if (href.trim() === '' || href.trim() === '#') {
      out.push({
        check: 'links',
        severity: 'warning',
        message: 'a link that goes nowhere (empty or "#")',
        where,
      });
      continue;
    }
    if (href.startsWith('#')) continue;
    out.push(...urlFindings('links', href, where, local, ['mailto', 'tel', 'sms']));
  }
  return out;
}

/** Every `<img>`: `alt` (empty is fine for decoration), a `width` or `height` attribute, an https `src`. */
export function imageCheck(scanned: ScannedHtml, local: LocalHosts): CheckFinding[] {
  const out: CheckFinding[] = [];
  for (const img of scanned.elements.filter((e) => e.tag === 'img')) {
    const where = describe(img, 'src');
    if (!img.attrs.has('alt')) {
      out.push({
        check: 'images',
        severity: 'warning',
        message:
          'an image without alt: screen readers and clients that block images show nothing (alt="" for decoration)',
        where,
      });
    }
    // One of them is enough: clients scale the other to the image's proportions.
    if (!img.attrs.has('width') && !img.attrs.has('height')) {
      out.push({
        check: 'images',
        severity: 'warning',
        message:
          "an image without width or height: the layout jumps as it loads, and Outlook shows it at its file's size",
        where,
      });
    }
    const src = img.attrs.get('src');
    if (src === undefined || src.trim() === '') {
      out.push({ check: 'images', severity: 'error', message: 'an image without src', where });
      continue;
    }
    out.push(...urlFindings('images', src, where, local, ['cid', 'data']));
  }
  return out;
}

/** Each http(s) link of the HTML is in the text part too: a reader of the text part needs it as much. */
export function textLinkCheck(scanned: ScannedHtml, text: string | undefined): CheckFinding[] {
  const links = new Set(
    scanned.elements
      .filter((e) => e.tag === 'a')
      .map((e) => e.attrs.get('href')?.trim() ?? '')
      .filter((href) => /^https?:\/\/\S+$/i.test(href)),
  );
  if (links.size === 0) return [];
  if (text === undefined || text.trim() === '') {
    return [
      {
        check: 'text-links',
        severity: 'warning',
        message: `no text part, and the HTML has ${links.size} link(s)`,
        where: 'text part',
      },
    ];
  }
  const out: CheckFinding[] = [];
  for (const href of links) {
    const bare = href.replace(/\/$/, '');
    if (!text.includes(bare)) {
      out.push({
        check: 'text-links',
        severity: 'warning',
        message: `the text part does not have the link ${short(href)}`,
        where: 'text part',
      });
    }
  }
  return out;
}

/** HTML and CSS features the major clients do not support, from caniemail's data. */
export function clientSupportCheck(
  scanned: ScannedHtml,
  clients: readonly string[] = MAJOR_CLIENTS,
): CheckFinding[] {
  const { uses, support } = unsupportedUses(scanned, clients);
  if (!support) {
    return [
      {
        check: 'client-support',
        severity: 'info',
        message: 'the client-support data (caniemail) is not installed: not checked',
      },
    ];
  }
  return uses.map(({ use, missing, severity }) => ({
    check: 'client-support' as const,
    severity,
    message:
      `${use.feature.title} is not supported by ${clientNames(missing, support.names)}` +
      `${use.enhancement ? ' (an enhancement: the email reads the same without it)' : ''}; https://www.caniemail.com/features/${use.feature.slug}/`,
    where: use.where,
  }));
}

function describe(element: HtmlElement, attribute: string): string {
  const value = element.attrs.get(attribute);
  return value === undefined ? `<${element.tag}>` : `<${element.tag} ${attribute}="${short(value)}">`;
}

function short(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}
