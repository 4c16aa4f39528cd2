/**
 * Internal: the preview's check routes. `api/checks` gives a summary for every template (with its
 * first data set) and every captured email, for the sidebar's badges; `api/checks/template/NAME/SET`
 * and `api/checks/email/ID` give one email's report for the checks panel. None of them runs
 * SpamAssassin (a second or more of CPU per email, on every click): the panel asks for it with
 * `…/spam` appended, when a person presses its button.
 */
import {
  type CheckableEmail,
  type CheckOptions,
  type CheckReport,
  checkEmailLocally,
  report,
} from './checks.js';
import { describeProblem, type PreviewProblem } from './diagnose.js';
import { listOutbox, readEml, readOutbox } from './outbox.js';
import type { PreviewSources, PreviewTemplate } from './sources.js';
import { spamCheck } from './spam.js';

/** A sidebar badge: the counts, or why the template could not be rendered. */
export interface CheckSummary {
  readonly errors: number;
  readonly warnings: number;
  readonly infos: number;
  /** The template does not compile or render with this data set: nothing was checked. */
  readonly failed?: PreviewProblem;
}

/** The panel's answer: a report, or the problem that stopped it. */
export type CheckAnswer =
  | (CheckReport & { readonly failed?: undefined })
  | { readonly failed: PreviewProblem };

/**
 * Answers `api/checks…` (`parts` is the path after `api/checks`); undefined for a path it does not
 * know or a name that is not there (the handler answers 404).
 */
export async function checkRoute(
  parts: readonly string[],
  sources: () => PreviewSources,
  outboxDir: string,
  options: CheckOptions = {},
): Promise<unknown> {
  if (parts.length === 0) return summaries(sources(), outboxDir, options);
  const spam = parts.at(-1) === 'spam';
  if (spam && options.spam === false) return undefined;
  const [kind, name, set] = spam ? parts.slice(0, -1) : parts;
  const length = parts.length - (spam ? 1 : 0);
  let email: CheckableEmail | { failed: PreviewProblem } | undefined;
  if (kind === 'template' && length === 3 && name && set) {
    const template = sources().templates.find((t) => t.name === name);
    if (!template?.sets.some((s) => s.name === set)) return undefined;
    email = renderTemplate(sources(), template, set);
  } else if (kind === 'email' && length === 2 && name) {
    const captured = await readOutbox(outboxDir, name);
    if (!captured) return undefined;
    const raw = spam ? (await readEml(outboxDir, name))?.toString('utf8') : undefined;
    email = { subject: captured.subject, html: captured.html, text: captured.text, raw };
  }
  if (email === undefined) return undefined;
  if ('failed' in email) return { failed: email.failed } satisfies CheckAnswer;
  if (spam) return report(await spamCheck(email, options.from)) satisfies CheckAnswer;
  return report(checkEmailLocally(email, options)) satisfies CheckAnswer;
}

async function summaries(sources: PreviewSources, outboxDir: string, options: CheckOptions) {
  const local = { ...options, spam: false };
  const templates: Record<string, CheckSummary> = {};
  for (const template of sources.templates) {
    const first = template.sets[0];
    const rendered = first
      ? renderTemplate(sources, template, first.name)
      : { failed: { message: 'no data set' } };
    templates[template.name] =
      'failed' in rendered
        ? { errors: 0, warnings: 0, infos: 0, failed: rendered.failed }
        : counts(report(checkEmailLocally(rendered, local)));
  }
  // Templates that could not even be defined are listed by the page as problems; marked here too.
  for (const problem of sources.problems) {
    if (problem.template && !templates[problem.template]) {
      templates[problem.template] = { errors: 0, warnings: 0, infos: 0, failed: problem };
    }
  }
  const emails: Record<string, CheckSummary> = {};
  for (const entry of await listOutbox(outboxDir)) {
    const email = await readOutbox(outboxDir, entry.id);
    if (email) emails[entry.id] = counts(report(checkEmailLocally(email, local)));
  }
  // Whether the panel offers SpamAssassin: `checks: { spam: false }` turns it off.
  return { templates, emails, spam: options.spam !== false };
}

function counts(r: CheckReport): CheckSummary {
  return { errors: r.errors, warnings: r.warnings, infos: r.infos };
}

function renderTemplate(
  sources: PreviewSources,
  template: PreviewTemplate,
  setName: string,
): { subject: string; html: string; text: string } | { failed: PreviewProblem } {
  const set = template.sets.find((s) => s.name === setName);
  if (!set || set.problem || set.data === undefined)
    return { failed: set?.problem ?? { message: 'no data' } };
  try {
    return sources.service.render(template.name, set.data);
  } catch (error) {
    return {
      failed: describeProblem(error, { template: template.name, handle: template.handle, data: set.data }),
    };
  }
}
