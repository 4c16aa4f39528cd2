/**
 * The service every command sends or renders with. Precedence: the command's flags, then the
 * config file (`mailroom.config.ts`), then the environment (`configFromEnv()`).
 */
import { configFromEnv, configFromEnvWith, providerVariables } from '../config.js';
import { ConfigError, isConfigError } from '../errors.js';
import type { PreviewProblem } from '../preview/diagnose.js';
import { loadTemplatesDir } from '../preview/sources.js';
import { EmailService, type EmailServiceOptions } from '../service.js';
import type { TemplateHandle } from '../templates/define.js';
import type { LoadedConfig } from './config-file.js';

/**
 * The templates of a folder, one per subfolder. A folder that cannot be read as templates is a
 * `ConfigError` naming `option` (`--templates`, or the config's `templatesDir`) and the file.
 */
export function folderTemplates(dir: string, option: string, strict = true): TemplateHandle[] {
  const problems: PreviewProblem[] = [];
  const templates = loadTemplatesDir(dir, problems);
  const [problem] = problems;
  if (problem && strict)
    throw new ConfigError(
      option,
      [problem.file ?? problem.template, problem.message].filter(Boolean).join(': '),
    );
  return templates;
}

/** The app's templates by where they came from, in order: the config's, its folder's, `--templates`'. */
export interface TemplateSources {
  readonly code: readonly TemplateHandle[];
  readonly configDir: readonly TemplateHandle[];
  readonly flagDir: readonly TemplateHandle[];
}

/**
 * The app's templates: the config's `templates`, its `templatesDir` (relative to the file) and
 * `--templates DIR` (relative to the working directory). A name in two of them is an error naming
 * both. A folder that cannot be read is an error too, unless not `strict` (the preview shows it).
 */
export function appTemplates(
  config: LoadedConfig | undefined,
  templatesFlag: string | undefined,
  strict = true,
): TemplateSources {
  const sources = {
    code: config?.config.templates ?? [],
    configDir: config?.templatesDir
      ? folderTemplates(config.templatesDir, `${config.name}: templatesDir`, strict)
      : [],
    flagDir: templatesFlag === undefined ? [] : folderTemplates(templatesFlag, '--templates', strict),
  };
  const labels = {
    code: `${config?.name}: templates`,
    configDir: `${config?.name}: templatesDir (${config?.config.templatesDir})`,
    flagDir: `--templates ${templatesFlag}`,
  };
  const seen = new Map<string, string>();
  for (const key of ['code', 'configDir', 'flagDir'] as const) {
    for (const handle of sources[key]) {
      const first = seen.get(handle.name);
      if (first !== undefined) {
        throw new ConfigError(labels[key], `defines "${handle.name}", as does ${first}: rename one of them`);
      }
      seen.set(handle.name, labels[key]);
    }
  }
  return sources;
}

/**
 * The service's options without templates: the config file's over the environment's. With a
 * config file the environment is read as `configFromEnv()` does, except that what the file gives
 * (transport, sender, app name) is not required of it.
 */
export function cliServiceOptions(config: LoadedConfig | undefined): EmailServiceOptions {
  if (config === undefined) return configFromEnv();
  const { config: c, name } = config;
  const env = configFromEnvWith({
    source: name,
    transport: c.transport,
    from: c.from !== undefined,
    appName: c.appName !== undefined,
  });
  const from = c.from ?? env.from;
  if (from === undefined && env.transport.captures !== true) {
    throw new ConfigError(
      `${name}: from`,
      `is required with the transport it sets (${env.transport.name}): set from in the config, or one of ${providerVariables()
        .map((provider) => provider.from)
        .join(', ')}`,
    );
  }
  const colors = { ...env.brand?.colors, ...c.brand?.colors };
  return {
    ...env,
    from: from ?? 'no-reply@example.com',
    brand: { ...env.brand, ...c.brand, ...(Object.keys(colors).length ? { colors } : {}) },
    ...pick(c, [
      'appName',
      'replyTo',
      'locale',
      'messages',
      'layouts',
      'partials',
      'css',
      'maxMessageBytes',
      'retry',
    ]),
  };
}

function pick<T extends object, K extends keyof T>(object: T, keys: readonly K[]): Partial<Pick<T, K>> {
  return Object.fromEntries(
    keys.filter((k) => object[k] !== undefined).map((k) => [k, object[k]]),
  ) as Partial<Pick<T, K>>;
}

/**
 * A service from these options and templates, every template compiled now, so a broken one stops
 * the command at once, naming its file and line. An option the config file set that the service
 * refuses is named with the file.
 */
export function buildService(
  options: EmailServiceOptions,
  templates: TemplateSources | undefined,
  config: LoadedConfig | undefined,
): EmailService {
  try {
    const service = new EmailService({
      ...options,
      templates: templates ? [...templates.code, ...templates.configDir, ...templates.flagDir] : [],
    });
    if (templates) service.templates.compileAll();
    return service;
  } catch (error) {
    if (!config || !isConfigError(error)) throw error;
    const field = error.option.split('.')[0] ?? '';
    if (!Object.hasOwn(config.config, field)) throw error;
    throw new ConfigError(`${config.name}: ${error.option}`, error.message.slice(error.option.length + 2));
  }
}

/** The service a command renders or sends with: the flags', the config file's and the environment's. */
export function serviceFromCli(
  config: LoadedConfig | undefined,
  templatesFlag: string | undefined,
): EmailService {
  return buildService(cliServiceOptions(config), appTemplates(config, templatesFlag), config);
}
