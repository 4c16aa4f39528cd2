/**
 * Internal: the files the preview's editor writes. Names are fixed here (or checked like template
 * names), never taken as paths from a request; every write is atomic (a temp file in the same
 * folder, then a rename), so a reader or a crash sees the old file or the new one, never half.
 */
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { TemplateError } from '../errors.js';
import { checkTemplateName } from '../templates/define.js';

/** The files of a folder template the editor shows, in the order it shows them. */
export const EDITABLE_FILES = [
  'subject.eta',
  'html.eta',
  'text.eta',
  'preheader.eta',
  'style.css',
  'template.json',
] as const;
export type EditableFile = (typeof EDITABLE_FILES)[number];

/** Files a template needs: emptying one of these is refused; emptying another removes it. */
export const REQUIRED_FILES: readonly EditableFile[] = ['subject.eta', 'html.eta'];

/** A data set's name: the file `preview/NAME.json`; the same rule as a template name. */
const SET_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/**
 * Checks the name of a template to create: a valid template name (lower-case letters, digits,
 * `.`, `_`, `-`, at most 64, no `..`), so that it is one folder right under the templates folder.
 * Throws a {@link TemplateError} with field `name` otherwise.
 */
export function checkNewTemplateName(name: unknown): string {
  try {
    return checkTemplateName(name);
  } catch {
    throw new TemplateError(
      String(name).slice(0, 80),
      'not a valid template name: lower-case letters, digits, . _ - (at most 64, starting with a letter or digit)',
      { field: 'name' },
    );
  }
}

/** Checks a data set's name (it becomes `preview/NAME.json`); a {@link TemplateError} naming the set otherwise. */
export function checkSetName(template: string, name: unknown): string {
  if (typeof name !== 'string' || !SET_NAME.test(name) || name.includes('..')) {
    throw new TemplateError(template, 'not a valid data set name: letters, digits, . _ -', {
      field: `sets.${String(name).slice(0, 80)}`,
    });
  }
  return name;
}

/**
 * `relative` inside `folder`, or a TypeError: the last guard before a write, whatever the caller
 * checked already.
 */
export function inside(folder: string, relative: string): string {
  const root = resolve(folder);
  const path = resolve(root, relative);
  if (!path.startsWith(root + sep)) throw new TypeError(`${relative} is not inside ${root}`);
  return path;
}

/**
 * Writes `content` to `path` atomically: a temp file (`.NAME.RANDOM.tmp`, created exclusively) in
 * the same folder, then a rename over `path`, which POSIX makes atomic on one file system. The temp
 * file is removed when the write fails. Creates the folder when `makeDir` is true.
 */
export function writeFileAtomic(path: string, content: string, makeDir = false): void {
  const dir = dirname(path);
  if (makeDir) mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, content, { encoding: 'utf8', flag: 'wx' });
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** A file's text, or undefined when it does not exist. */
export function readIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/**
 * Writes the files of `wanted` (relative names, already checked) that differ from what is on disk,
 * under `dir`; an empty text removes an optional file. Returns the names written or removed.
 */
export function writeChanged(dir: string, wanted: ReadonlyMap<string, string>): string[] {
  const changed: string[] = [];
  for (const [name, content] of wanted) {
    const path = inside(dir, name);
    const current = readIfExists(path);
    if (content === '' && !REQUIRED_FILES.includes(name as EditableFile)) {
      if (current === undefined) continue;
      rmSync(path);
    } else {
      if (content === current) continue;
      mkdirSync(dirname(path), { recursive: true });
      // A symlinked `preview/` folder would carry the write elsewhere: the real folder must be inside too.
      const real = realpathSync(dirname(path));
      const realRoot = realpathSync(dir);
      if (real !== realRoot && !real.startsWith(realRoot + sep)) {
        throw new TypeError(`${name} is not inside ${realRoot}`);
      }
      writeFileAtomic(path, content);
    }
    changed.push(name);
  }
  return changed;
}

/** The starter a new template is made from: a minimal folder that compiles and renders. */
export const STARTER: Readonly<Record<string, string>> = {
  'subject.eta': 'Hello <%= it.name %>\n',
  'html.eta': '<h1>Hello <%= it.name %></h1>\n<p>Write your email here.</p>\n',
  'template.json': `${JSON.stringify({ fields: { name: 'string' } }, null, 2)}\n`,
  'preview/default.json': `${JSON.stringify({ name: 'Jane' }, null, 2)}\n`,
};

/**
 * Creates `root/name` from the {@link STARTER}. The folder is made with a plain `mkdir`, which
 * fails when it exists: an existing template is never overwritten, even by a race.
 */
export function createFromStarter(root: string, name: string): string {
  const dir = inside(root, checkNewTemplateName(name));
  mkdirSync(resolve(root), { recursive: true });
  mkdirSync(dir);
  for (const [file, content] of Object.entries(STARTER)) writeFileAtomic(inside(dir, file), content, true);
  return dir;
}
