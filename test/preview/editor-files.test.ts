/** The editor's file rules: atomic writes, only changed files, names that cannot leave the folder. */
import { mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTemplateError } from '../../src/errors.js';
import { EmailService, memoryTransport } from '../../src/index.js';
import {
  checkNewTemplateName,
  checkSetName,
  createFromStarter,
  inside,
  writeChanged,
  writeFileAtomic,
} from '../../src/preview/editor-files.js';
import { loadTemplatesDir } from '../../src/preview/sources.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailroom-editor-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the file by a rename and leaves no temp file behind', async () => {
    const path = join(dir, 'html.eta');
    await writeFile(path, 'old');
    const before = (await stat(path)).ino;
    writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
    // A rename puts a new inode in place: a reader holding the old file never sees half of the new one.
    expect((await stat(path)).ino).not.toBe(before);
    expect(await readdir(dir)).toEqual(['html.eta']);
  });

  it('removes its temp file and keeps the old content when the write fails', async () => {
    const path = join(dir, 'sub');
    await writeFile(join(dir, 'keep.txt'), 'kept');
    // The target is a folder: the rename fails after the temp file was written.
    await import('node:fs/promises').then((fs) => fs.mkdir(path));
    expect(() => writeFileAtomic(path, 'x')).toThrow();
    expect((await readdir(dir)).sort()).toEqual(['keep.txt', 'sub']);
  });
});

describe('writeChanged', () => {
  it('writes only the files whose text differs, and removes an emptied optional file', async () => {
    await writeFile(join(dir, 'subject.eta'), 'Same');
    await writeFile(join(dir, 'html.eta'), '<p>old</p>');
    await writeFile(join(dir, 'text.eta'), 'old text');
    const wanted = new Map([
      ['subject.eta', 'Same'],
      ['html.eta', '<p>new</p>'],
      ['text.eta', ''],
      ['style.css', ''],
      ['preview/default.json', '{}'],
    ]);
    expect(writeChanged(dir, wanted)).toEqual(['html.eta', 'text.eta', 'preview/default.json']);
    expect(await readFile(join(dir, 'html.eta'), 'utf8')).toBe('<p>new</p>');
    expect((await readdir(dir)).sort()).toEqual(['html.eta', 'preview', 'subject.eta']);
  });

  it('refuses to write through a symlinked folder that leads out', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'mailroom-editor-outside-'));
    try {
      await symlink(outside, join(dir, 'preview'));
      expect(() => writeChanged(dir, new Map([['preview/default.json', '{}']]))).toThrow(TypeError);
      expect(await readdir(outside)).toEqual([]);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('refuses a name that leaves the folder', () => {
    expect(() => writeChanged(dir, new Map([['../evil.eta', 'x']]))).toThrow(TypeError);
    expect(() => inside(dir, '/etc/passwd')).toThrow(TypeError);
    expect(() => inside(dir, '')).toThrow(TypeError);
  });
});

describe('template and data set names', () => {
  it.each(['../evil', 'a/b', '..', '.hidden', 'Invoice', '', 'a'.repeat(65), 'a..b', 'a\\b'])(
    'refuses %j with a TemplateError naming the field',
    (name) => {
      let error: unknown;
      try {
        checkNewTemplateName(name);
      } catch (caught) {
        error = caught;
      }
      expect(isTemplateError(error)).toBe(true);
      expect((error as { field?: string }).field).toBe('name');
    },
  );

  it('takes a valid name', () => {
    expect(checkNewTemplateName('order-shipped.v2')).toBe('order-shipped.v2');
    expect(checkSetName('invoice', 'huge-amount')).toBe('huge-amount');
    expect(() => checkSetName('invoice', '../x')).toThrow(/data set name/);
  });
});

describe('createFromStarter', () => {
  it('makes a template that loads, compiles and renders its default data set', () => {
    createFromStarter(dir, 'hello');
    const problems: unknown[] = [];
    const handles = loadTemplatesDir(dir, problems as never);
    expect(problems).toEqual([]);
    const mail = new EmailService({
      transport: memoryTransport(),
      from: 'a@example.com',
      templates: handles,
    });
    expect(mail.render('hello', { name: 'Jane' }).subject).toBe('Hello Jane');
  });

  it('refuses an existing folder', () => {
    createFromStarter(dir, 'hello');
    expect(() => createFromStarter(dir, 'hello')).toThrow(/EEXIST/);
  });
});
