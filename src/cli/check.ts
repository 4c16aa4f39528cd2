/**
 * `mailroom check [template]`: the preview's checks from the command line, for CI. Each template
 * (or the one named) is rendered with `--data`, else with every preview data set it has, and
 * checked; errors and warnings are printed, one line each. The brand's colours are checked once,
 * first (warnings only: a brand is its owner's choice). False (exit 1) when any email has an error
 * or does not render.
 */
import { checkBrand } from '../preview/brand-check.js';
import { type CheckFinding, type CheckOptions, checkEmail } from '../preview/checks.js';
import { loadPreviewSources } from '../preview/sources.js';
import type { LoadedConfig } from './config-file.js';
import { appTemplates, cliServiceOptions } from './service.js';

/** What the command was given. */
export interface CheckCommand {
  readonly template: string | undefined;
  readonly data: Record<string, unknown> | undefined;
  readonly templatesDir: string | undefined;
  readonly options: CheckOptions;
}

/** Runs the checks and prints them; true when no email has an error. */
export async function runCheckCommand(
  command: CheckCommand,
  config: LoadedConfig | undefined,
  out: (line: string) => void,
): Promise<boolean> {
  // The same templates as mailroom preview: a folder that does not load is reported, not thrown.
  const templates = appTemplates(config, command.templatesDir, false);
  const sources = loadPreviewSources(
    {
      ...cliServiceOptions(config),
      templates: [...templates.code, ...(command.templatesDir ? templates.configDir : [])],
    },
    command.templatesDir ?? config?.templatesDir,
  );
  let ok = true;
  for (const problem of sources.problems) {
    if (command.template && problem.template !== command.template) continue;
    out(`${problem.template ?? 'templates'}: does not load: ${problem.message}`);
    ok = false;
  }
  const chosen = sources.templates.filter((t) => !command.template || t.name === command.template);
  // An unknown name: the same error (with its "did you mean") as mailroom render gives.
  if (command.template && chosen.length === 0 && ok) sources.service.templates.get(command.template);
  const brand = checkBrand(sources.service.app);
  if (brand.warnings) {
    out(`brand: ${count(brand.warnings, 'warning')}`);
    print(brand.findings, out);
  }
  let totals = { errors: 0, warnings: brand.warnings, emails: 0 };
  for (const template of chosen) {
    const sets = command.data
      ? [{ name: '--data', data: command.data, problem: undefined }]
      : template.sets.map((s) => ({ name: s.name, data: s.data, problem: s.problem }));
    for (const set of sets) {
      const label = `${template.name} (${set.name})`;
      let rendered: { subject: string; html: string; text: string };
      try {
        if (set.problem || !set.data) throw new Error(set.problem?.message ?? 'no data');
        rendered = sources.service.render(template.name, set.data);
      } catch (error) {
        out(`${label}: does not render: ${(error as Error).message.split('\n')[0]}`);
        ok = false;
        continue;
      }
      const report = await checkEmail(rendered, command.options);
      totals = {
        errors: totals.errors + report.errors,
        warnings: totals.warnings + report.warnings,
        emails: totals.emails + 1,
      };
      if (report.errors) ok = false;
      out(`${label}: ${count(report.errors, 'error')}, ${count(report.warnings, 'warning')}`);
      print(report.findings, out);
    }
  }
  out(
    `${count(totals.emails, 'email')} checked: ${count(totals.errors, 'error')}, ${count(totals.warnings, 'warning')}`,
  );
  return ok;
}

function print(findings: readonly CheckFinding[], out: (line: string) => void): void {
  for (const f of findings) {
    if (f.severity === 'info') continue;
    out(`  ${f.severity} ${f.check}: ${f.message}${f.where ? ` (${f.where})` : ''}`);
  }
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
