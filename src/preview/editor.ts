/**
 * The preview's template editor (development only): reads a folder template's files, renders
 * unsaved sources through the same compile path as `compileAll()` (nothing written), saves only
 * the files that changed (atomically), and creates a template from a starter. Allowed only when
 * `NODE_ENV` is not production and the request reached the preview over loopback (by its `Host`
 * and by the address it arrived on); the `POST`s also pass the same-origin, JSON and token checks
 * of every other button (actions.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, resolve, sep } from 'node:path';
import { isProduction, productionSetting } from '../env-names.js';
import { isMailroomError } from '../errors.js';
import { isLoopback } from '../loopback.js';
import type { EmailCategory } from '../message.js';
import { EmailService, type EmailServiceOptions } from '../service.js';
import { defineTemplate, type Fields, placeInFolder, type TemplateHandle } from '../templates/define.js';
import type { ActionAnswer } from './actions.js';
import { describeProblem, type PreviewProblem } from './diagnose.js';
import {
  checkNewTemplateName,
  checkSetName,
  createFromStarter,
  EDITABLE_FILES,
  readIfExists,
  writeChanged,
} from './editor-files.js';
import { fromThisMachine } from './hosts.js';
import { inferFields, type PreviewSources, type PreviewTemplate } from './sources.js';

/** Why editing is refused for this request (shown instead of the Edit button), or undefined. */
export function editingRefusal(req: IncomingMessage, host: string | undefined): string | undefined {
  if (isProduction(process.env.NODE_ENV))
    return `editing templates is off with ${productionSetting(process.env.NODE_ENV)}`;
  if (!fromThisMachine(req, host)) {
    return 'editing templates works only on a preview opened over loopback (localhost, 127.0.0.1, [::1]), not through a proxy';
  }
  // Listening on every address (0.0.0.0, ::) or a network one, the machine's neighbours reach the
  // same server: editing stays off even for this loopback request.
  const listening = (req.socket as { server?: { address?: () => unknown } }).server?.address?.();
  const address =
    typeof listening === 'object' && listening !== null ? (listening as AddressInfo).address : undefined;
  if (address !== undefined && !isLoopback(address.replace(/^::ffff:/, ''))) {
    return `editing templates is off while the preview listens on ${address}, beyond loopback (listen on 127.0.0.1 to edit)`;
  }
  return undefined;
}

/** Why one template cannot be edited, or undefined: only templates of the templates folder can. */
export function notEditable(template: PreviewTemplate, templatesDir: string | undefined): string | undefined {
  if (template.builtin)
    return 'a built-in template ships with mailroom: copy its folder into your templates folder to change it';
  if (!template.dir || !templatesDir || !isDirectChild(templatesDir, template.dir))
    return 'only templates in the templates folder (--templates, or the config file’s templatesDir) can be edited here';
  return undefined;
}

function isDirectChild(root: string, dir: string): boolean {
  const rel = relative(resolve(root), resolve(dir));
  return rel !== '' && !rel.startsWith('..') && !rel.includes(sep);
}

/** `GET api/edit/NAME`: the template's files as text (missing optional ones empty) and its data sets. */
export function editorSources(sources: PreviewSources, templatesDir: string | undefined, name: string) {
  const template = sources.templates.find((t) => t.name === name);
  if (!template) return undefined;
  const why = notEditable(template, templatesDir);
  if (why || !template.dir) return { name, editable: false, why };
  const dir = template.dir;
  const files = Object.fromEntries(EDITABLE_FILES.map((file) => [file, readIfExists(join(dir, file)) ?? '']));
  return { name, editable: true, files, sets: readSets(dir) };
}

function readSets(dir: string): Record<string, string> {
  const folder = join(dir, 'preview');
  if (!existsSync(folder)) return {};
  const sets: Record<string, string> = {};
  for (const file of readdirSync(folder).sort()) {
    if (!file.endsWith('.json') || file.startsWith('.')) continue;
    sets[file.slice(0, -'.json'.length)] = readIfExists(join(folder, file)) ?? '';
  }
  return sets;
}

/** A draft: a template's files as the editor holds them, unsaved. */
interface Draft {
  readonly template: PreviewTemplate;
  readonly dir: string;
  readonly files: ReadonlyMap<string, string>;
  readonly sets: ReadonlyMap<string, string>;
  readonly set: string | undefined;
}

/** Reads a draft from a request body `{ template, set?, files: { 'html.eta': … }, sets: { NAME: json } }`. */
function readDraft(
  sources: PreviewSources,
  templatesDir: string | undefined,
  body: Record<string, unknown>,
): Draft | ActionAnswer {
  const template = sources.templates.find((t) => t.name === body.template);
  if (!template) return bad('template', `no template ${JSON.stringify(body.template)}`);
  const why = notEditable(template, templatesDir);
  if (why || !template.dir) return { status: 403, body: { error: { name: 'Forbidden', message: why } } };
  const files = new Map<string, string>();
  const given = body.files;
  if (typeof given !== 'object' || given === null) return bad('files', 'must be an object of file texts');
  for (const [file, text] of Object.entries(given)) {
    if (!(EDITABLE_FILES as readonly string[]).includes(file))
      return bad(`files.${file.slice(0, 40)}`, `is not one of ${EDITABLE_FILES.join(', ')}`);
    if (typeof text !== 'string') return bad(`files.${file}`, 'must be a string');
    files.set(file, text);
  }
  const sets = new Map<string, string>();
  if (body.sets !== undefined) {
    if (typeof body.sets !== 'object' || body.sets === null) return bad('sets', 'must be an object');
    for (const [name, text] of Object.entries(body.sets)) {
      try {
        checkSetName(template.name, name);
      } catch (error) {
        return { status: 400, body: { error: pageError(error) } };
      }
      if (typeof text !== 'string') return bad(`sets.${name}`, 'must be a string (the JSON text)');
      sets.set(name, text);
    }
  }
  const set = typeof body.set === 'string' ? body.set : undefined;
  return { template, dir: template.dir, files, sets, set };
}

/** What a draft compiles and renders to: the email, or the first problem with its file and line. */
interface DraftResult {
  readonly problem?: PreviewProblem;
  readonly subject?: string;
  readonly html?: string;
  readonly text?: string;
}

/**
 * Compiles and renders a draft as `compileAll()` and a send would: `template.json` and every data set
 * must be JSON, the template must define and compile, and the chosen data set (else `default`, else
 * the first) must render.
 */
function renderDraft(service: EmailServiceOptions, draft: Draft): DraftResult {
  const { template, dir } = draft;
  const fileText = (file: string) => draft.files.get(file) ?? readIfExists(join(dir, file)) ?? '';
  const data = new Map<string, Record<string, unknown>>();
  // The sets on disk, with the draft's in their place: a request may send only what it changed.
  const sets = new Map([...Object.entries(readSets(dir)), ...draft.sets]);
  for (const [name, text] of sets) {
    const parsed = parseJson(text, join(dir, 'preview', `${name}.json`));
    if ('problem' in parsed) return parsed;
    if (typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) {
      return {
        problem: { message: 'a data set must be a JSON object', file: join(dir, 'preview', `${name}.json`) },
      };
    }
    data.set(name, parsed.value as Record<string, unknown>);
  }
  for (const required of ['subject.eta', 'html.eta']) {
    if (fileText(required).trim() === '') {
      return {
        problem: {
          message: `${required} must not be empty`,
          template: template.name,
          file: join(dir, required),
        },
      };
    }
  }
  const manifestText = fileText('template.json');
  let manifest: { fields?: Fields; layout?: string | false; category?: EmailCategory } = {};
  if (manifestText.trim() !== '') {
    const parsed = parseJson(manifestText, join(dir, 'template.json'));
    if ('problem' in parsed) return parsed;
    if (typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) {
      return {
        problem: { message: 'template.json must be a JSON object', file: join(dir, 'template.json') },
      };
    }
    manifest = parsed.value as typeof manifest;
  }
  const setName =
    draft.set !== undefined && data.has(draft.set)
      ? draft.set
      : data.has('default')
        ? 'default'
        : [...data.keys()][0];
  const sample = setName === undefined ? undefined : data.get(setName);
  let handle: TemplateHandle | undefined;
  try {
    const text = fileText('text.eta');
    const preheader = fileText('preheader.eta');
    const css = fileText('style.css');
    handle = placeInFolder(
      defineTemplate({
        name: template.name,
        fields: manifest.fields ?? inferFields(data.get('default') ?? sample),
        subject: fileText('subject.eta'),
        html: fileText('html.eta'),
        ...(text === '' ? {} : { text }),
        ...(preheader === '' ? {} : { preheader }),
        ...(css === '' ? {} : { css }),
        ...(manifest.layout === undefined ? {} : { layout: manifest.layout }),
        ...(manifest.category === undefined ? {} : { category: manifest.category }),
      }) as unknown as TemplateHandle,
      dir,
    );
    const mail = new EmailService({ ...service, templates: [handle] });
    mail.templates.compiled(handle);
    if (sample === undefined)
      return { problem: { message: 'add a data set to render it with', template: template.name } };
    const rendered = mail.render(handle.name, sample);
    return { subject: rendered.subject, html: rendered.html, text: rendered.text };
  } catch (error) {
    const problem = describeProblem(error, {
      template: template.name,
      ...(handle ? { handle } : {}),
      data: sample,
    });
    const setFile = setName === undefined ? undefined : join(dir, 'preview', `${setName}.json`);
    return { problem: problem.field && !problem.file && setFile ? { ...problem, file: setFile } : problem };
  }
}

/** The rendered drafts the frame shows (`frame/draft/ID`): the last few, in memory only. */
export class Drafts {
  readonly #html = new Map<string, string>();

  add(html: string): string {
    const id = randomBytes(9).toString('base64url');
    this.#html.set(id, html);
    if (this.#html.size > 16) this.#html.delete(this.#html.keys().next().value as string);
    return id;
  }

  get(id: string): string | undefined {
    return this.#html.get(id);
  }
}

/** `POST api/edit/render`: the draft's email (its HTML in `frame/draft/ID`), or its problem. Writes nothing. */
export function renderRoute(
  service: EmailServiceOptions,
  sources: PreviewSources,
  templatesDir: string | undefined,
  drafts: Drafts,
  body: Record<string, unknown>,
): ActionAnswer {
  const draft = readDraft(sources, templatesDir, body);
  if ('status' in draft) return draft;
  const result = renderDraft(service, draft);
  if (result.problem) return { status: 200, body: { problem: result.problem } };
  return {
    status: 200,
    body: {
      subject: result.subject,
      text: result.text,
      frame: `frame/draft/${drafts.add(result.html ?? '')}`,
    },
  };
}

/**
 * `POST api/edit/save`: renders the draft first; a problem is answered (422) and nothing is
 * written. Otherwise writes the files and data sets that differ from the disk, each atomically.
 */
export function saveRoute(
  service: EmailServiceOptions,
  sources: PreviewSources,
  templatesDir: string | undefined,
  body: Record<string, unknown>,
): ActionAnswer {
  const draft = readDraft(sources, templatesDir, body);
  if ('status' in draft) return draft;
  const result = renderDraft(service, draft);
  if (result.problem) return { status: 422, body: { problem: result.problem, saved: [] } };
  const wanted = new Map(draft.files);
  for (const [name, text] of draft.sets) wanted.set(`preview/${name}.json`, text);
  return { status: 200, body: { saved: writeChanged(draft.dir, wanted) } };
}

/** `POST api/edit/new` `{ name }`: a template folder from the starter; an existing name is refused (409). */
export function newTemplateRoute(
  sources: PreviewSources,
  templatesDir: string | undefined,
  body: Record<string, unknown>,
): ActionAnswer {
  if (!templatesDir) {
    return {
      status: 409,
      body: {
        error: {
          name: 'ConfigError',
          message: 'no templates folder: start the preview with --templates DIR',
        },
      },
    };
  }
  let name: string;
  try {
    name = checkNewTemplateName(body.name);
  } catch (error) {
    return { status: 400, body: { error: pageError(error) } };
  }
  if (sources.templates.some((t) => t.name === name) || existsSync(join(templatesDir, name))) {
    return conflict(name);
  }
  try {
    createFromStarter(templatesDir, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return conflict(name);
    throw error;
  }
  return { status: 200, body: { created: name } };
}

function conflict(name: string): ActionAnswer {
  return {
    status: 409,
    body: {
      error: { name: 'TemplateError', field: 'name', message: `a template named "${name}" exists already` },
    },
  };
}

/** JSON text parsed, or the problem with its file and line (from V8's position or line in the message). */
function parseJson(text: string, file: string): { value: unknown } | { problem: PreviewProblem } {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    const message = (error as Error).message;
    const line = /line (\d+)/.exec(message)?.[1];
    const position = /position (\d+)/.exec(message)?.[1];
    const at = line
      ? Number(line)
      : position
        ? text.slice(0, Number(position)).split('\n').length
        : undefined;
    return { problem: { message: `not valid JSON: ${message}`, file, ...(at ? { line: at } : {}) } };
  }
}

function pageError(error: unknown) {
  if (isMailroomError(error)) {
    return { name: error.name, field: (error as { field?: string }).field, message: error.message };
  }
  throw error;
}

function bad(field: string, message: string): ActionAnswer {
  return { status: 400, body: { error: { name: 'TypeError', field, message: `${field}: ${message}` } } };
}
