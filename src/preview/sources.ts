/**
 * What the preview shows: every template of a service, each with its named preview data sets, read
 * afresh from disk on every load so that edits show at once. Problems (a broken template, a data
 * set that is not JSON) are collected, never thrown: the page shows them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { EmailCategory } from '../message.js';
import { EmailService, type EmailServiceOptions } from '../service.js';
import { BUILTIN_FIELDS, builtinTemplatesDir, clearBuiltinCache } from '../templates/builtins.js';
import {
  checkTemplateName,
  defineTemplate,
  type FieldSpec,
  type Fields,
  redefineTemplate,
  type TemplateHandle,
} from '../templates/define.js';
import { sampleValue } from '../templates/fields.js';
import { describeProblem, type PreviewProblem } from './diagnose.js';

/** One named sample of a template's data. */
export interface PreviewSet {
  readonly name: string;
  readonly data: Readonly<Record<string, unknown>> | undefined;
  /** The JSON file it came from, when it came from one. */
  readonly file: string | undefined;
  /** Why it could not be read. */
  readonly problem: PreviewProblem | undefined;
}

/** A template as the preview lists it. */
export interface PreviewTemplate {
  readonly name: string;
  readonly builtin: boolean;
  /** The folder of its files, when it has one. */
  readonly dir: string | undefined;
  readonly handle: TemplateHandle;
  /** Its data sets, `default` first; a set made from its fields when it has none. */
  readonly sets: readonly PreviewSet[];
}

/** Everything one load found. */
export interface PreviewSources {
  readonly service: EmailService;
  readonly templates: readonly PreviewTemplate[];
  /** Templates that could not even be defined (a missing html.eta, a bad template.json …). */
  readonly problems: readonly PreviewProblem[];
  /** Folders whose changes should reload the page. */
  readonly watch: readonly string[];
}

/** Reads the service's templates, those of `templatesDir`, and every data set, afresh. */
export function loadPreviewSources(service: EmailServiceOptions, templatesDir?: string): PreviewSources {
  clearBuiltinCache();
  const problems: PreviewProblem[] = [];
  const handles: TemplateHandle[] = [];
  for (const handle of service.templates ?? []) {
    try {
      handles.push(redefineTemplate(handle));
    } catch (error) {
      problems.push(describeProblem(error, { template: handle.name }));
    }
  }
  if (templatesDir !== undefined) handles.push(...loadTemplatesDir(templatesDir, problems));
  const built = new EmailService({ ...service, templates: handles });
  const builtinRoot = builtinTemplatesDir();
  const templates = built.templates.names().map((name): PreviewTemplate => {
    const handle = built.templates.get(name);
    const dir = handle.source.file ? dirname(handle.source.file) : undefined;
    return {
      name,
      builtin: name in BUILTIN_FIELDS && dir === join(builtinRoot, name),
      dir,
      handle,
      sets: dataSets(handle, dir),
    };
  });
  const watch = [builtinRoot, ...templates.flatMap((t) => (t.dir ? [t.dir] : []))];
  if (templatesDir !== undefined) watch.push(templatesDir);
  return { service: built, templates, problems, watch: [...new Set(watch)] };
}

/**
 * Templates from a folder, one subfolder each (`html.eta`, `subject.eta`, optional `text.eta`,
 * `preheader.eta`, `style.css`). Fields come from `template.json` (`{ "fields": { … }, "layout": …, "category": … }`),
 * or else are read off the `default` data set.
 */
export function loadTemplatesDir(folder: string, problems: PreviewProblem[] = []): TemplateHandle[] {
  // A relative folder is relative to the working directory, as on a command line.
  const root = resolve(folder);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    problems.push({ message: `the templates folder ${root} does not exist` });
    return [];
  }
  const handles: TemplateHandle[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const dir = join(root, entry.name);
    if (!entry.isDirectory() || !existsSync(join(dir, 'html.eta'))) continue;
    try {
      const name = checkTemplateName(entry.name);
      const manifest = readJson(join(dir, 'template.json')) as
        | { fields?: Fields; layout?: string | false; category?: EmailCategory }
        | undefined;
      const fields = manifest?.fields ?? inferFields(readSetFiles(dir)[0]?.data);
      handles.push(
        defineTemplate({
          name,
          fields,
          dir,
          ...(manifest?.layout === undefined ? {} : { layout: manifest.layout }),
          ...(manifest?.category === undefined ? {} : { category: manifest.category }),
        }) as unknown as TemplateHandle,
      );
    } catch (error) {
      problems.push(describeProblem(error, { template: entry.name, file: dir }));
    }
  }
  return handles;
}

function dataSets(handle: TemplateHandle, dir: string | undefined): PreviewSet[] {
  const inCode = Object.entries(handle.preview).map(
    ([name, data]): PreviewSet => ({ name, data, file: undefined, problem: undefined }),
  );
  const onDisk = dir ? readSetFiles(dir) : [];
  const sets = [...inCode, ...onDisk.filter((set) => !inCode.some((c) => c.name === set.name))];
  if (sets.length === 0) {
    sets.push({ name: 'generated', data: sampleData(handle.fields), file: undefined, problem: undefined });
  }
  return sets.sort((a, b) =>
    a.name === 'default' ? -1 : b.name === 'default' ? 1 : a.name.localeCompare(b.name),
  );
}

function readSetFiles(dir: string): PreviewSet[] {
  const folder = join(dir, 'preview');
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((file) => file.endsWith('.json'))
    .sort((a, b) => (a === 'default.json' ? -1 : b === 'default.json' ? 1 : a.localeCompare(b)))
    .map((file): PreviewSet => {
      const path = join(folder, file);
      const name = file.slice(0, -'.json'.length);
      try {
        const data = readJson(path);
        if (typeof data !== 'object' || data === null || Array.isArray(data)) {
          throw new Error('a data set must be a JSON object');
        }
        return { name, data: data as Record<string, unknown>, file: path, problem: undefined };
      } catch (error) {
        return { name, data: undefined, file: path, problem: describeProblem(error, { file: path }) };
      }
    });
}

function readJson(path: string): unknown {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`${path}: ${(error as Error).message}`);
  }
}

/** Field types read off sample data: a string that is an http(s) URL is a `url`. Internal. */
export function inferFields(data: Readonly<Record<string, unknown>> | undefined): Fields {
  const fields: Record<string, FieldSpec> = {};
  for (const [key, value] of Object.entries(data ?? {})) {
    fields[key] =
      typeof value === 'number'
        ? 'number'
        : typeof value === 'boolean'
          ? 'boolean'
          : typeof value === 'string' && /^https?:\/\//i.test(value)
            ? 'url'
            : 'string';
  }
  return fields;
}

/** Data made from a template's fields, for a template that has no data set. */
function sampleData(fields: Fields): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(fields)) {
    data[key] = sampleValue(spec.replace(/\?$/, ''), key);
  }
  return data;
}
