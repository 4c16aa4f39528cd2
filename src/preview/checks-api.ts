/**
 * Internal: the preview's check routes. `api/checks` gives a summary for every template (with its
 * first data set) and every captured email, for the sidebar's badges, without the spam score (a
 * second each); `api/checks/template/NAME/SET` and `api/checks/email/ID` give one email's whole
 * report, spam score included, for the checks panel.
 */
import { type CheckOptions, type CheckReport, checkEmail, checkEmailLocally, report } from './checks.js';
import { describeProblem, type PreviewProblem } from './diagnose.js';
import { listOutbox, readEml, readOutbox } from './outbox.js';
import type { PreviewSources, PreviewTemplate } from './sources.js';

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
  const [kind, name, set] = parts;
  if (kind === 'template' && parts.length === 3 && name && set) {
    const template = sources().templates.find((t) => t.name === name);
    if (!template?.sets.some((s) => s.name === set)) return undefined;
    const rendered = renderTemplate(sources(), template, set);
    if ('failed' in rendered) return { failed: rendered.failed } satisfies CheckAnswer;
    return (await checkEmail(rendered, options)) satisfies CheckAnswer;
  }
  if (kind === 'email' && parts.length === 2 && name) {
    const email = await readOutbox(outboxDir, name);
    if (!email) return undefined;
    const raw = await readEml(outboxDir, name);
    return (await checkEmail(
      { subject: email.subject, html: email.html, text: email.text, raw: raw?.toString('utf8') },
      options,
    )) satisfies CheckAnswer;
  }
  return undefined;
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
  return { templates, emails };
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
