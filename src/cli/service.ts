/** The service every command sends or renders with: configured from the environment, with the app's templates. */
import { configFromEnv } from '../config.js';
import { ConfigError } from '../errors.js';
import type { PreviewProblem } from '../preview/diagnose.js';
import { loadTemplatesDir } from '../preview/sources.js';
import { EmailService } from '../service.js';
import type { TemplateHandle } from '../templates/define.js';

/**
 * The templates of `--templates DIR` (relative to the working directory), or none. A folder that
 * cannot be read as templates is a `ConfigError` naming `--templates` and the file.
 */
export function cliTemplates(templatesDir: string | undefined): TemplateHandle[] {
  if (templatesDir === undefined) return [];
  const problems: PreviewProblem[] = [];
  const templates = loadTemplatesDir(templatesDir, problems);
  const [problem] = problems;
  if (problem)
    throw new ConfigError('--templates', `${problem.file ?? problem.template ?? ''}: ${problem.message}`);
  return templates;
}

/**
 * The service a command renders or sends with: `configFromEnv()` and the app's templates, every
 * template compiled now, so a broken one stops the command at once, naming its file and line.
 */
export function serviceFromCli(templatesDir: string | undefined): EmailService {
  const service = new EmailService({ ...configFromEnv(), templates: cliTemplates(templatesDir) });
  service.templates.compileAll();
  return service;
}
