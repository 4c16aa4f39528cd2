/**
 * What an editor offers: the TypeScript language service, asked for completions inside a template's
 * data as a user types it, lists that template's own fields (a handle's, or a name declared in
 * MailroomTemplates), never the built-in emails' fields.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const virtual = join(root, 'test', 'types', '__typed__.ts');

/** A language service over the project's tsconfig and one virtual file. */
function languageService(source: string) {
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  const host: ts.LanguageServiceHost = {
    getCompilationSettings: () => parsed.options,
    getScriptFileNames: () => [virtual],
    getScriptVersion: () => '1',
    getScriptSnapshot: (file) => {
      const text =
        file === virtual ? source : ts.sys.fileExists(file) ? readFileSync(file, 'utf8') : undefined;
      return text === undefined ? undefined : ts.ScriptSnapshot.fromString(text);
    },
    getCurrentDirectory: () => root,
    getDefaultLibFileName: (options) => ts.getDefaultLibFilePath(options),
    fileExists: (file) => file === virtual || ts.sys.fileExists(file),
    readFile: (file) => (file === virtual ? source : ts.sys.readFile(file)),
    readDirectory: ts.sys.readDirectory,
    directoryExists: ts.sys.directoryExists,
    getDirectories: ts.sys.getDirectories,
  };
  return ts.createLanguageService(host, ts.createDocumentRegistry());
}

/** The names completed where `|` stands in `source`. */
function completionsAt(source: string): string[] {
  const at = source.indexOf('|');
  const text = source.slice(0, at) + source.slice(at + 1);
  const service = languageService(text);
  const completions = service.getCompletionsAtPosition(virtual, at, {});
  return (completions?.entries ?? []).map((entry) => entry.name);
}

const prelude = `
import { defineTemplate, EmailService, memoryTransport, type TemplateData } from 'mailroom-js';
const invoice = defineTemplate({
  name: 'completion-invoice',
  fields: { number: 'string', payUrl: 'url', dueDate: 'string?' },
  subject: 's',
  html: 'h',
});
declare module 'mailroom-js' {
  interface MailroomTemplates {
    'completion-invoice': TemplateData<typeof invoice>;
  }
}
const mail = new EmailService({ transport: memoryTransport(), from: 'Acme <no-reply@acme.example>' });
`;

describe('completions in template data', { timeout: 60_000 }, () => {
  it('sendTemplate(handle, { data: { | } }) offers the handle’s fields, not a built-in’s', () => {
    const names = completionsAt(
      `${prelude}mail.sendTemplate(invoice, { to: 'a@example.com', data: { | } });`,
    );
    expect(names).toEqual(expect.arrayContaining(['number', 'payUrl', 'dueDate']));
    expect(names).not.toContain('resetUrl');
    expect(names).not.toContain('verificationUrl');
  });

  it('render(handle, { | }) offers the handle’s fields', () => {
    const names = completionsAt(`${prelude}mail.render(invoice, { | });`);
    expect(names).toEqual(expect.arrayContaining(['number', 'payUrl', 'dueDate']));
    expect(names).not.toContain('resetUrl');
  });

  it('a declared name offers that template’s fields', () => {
    const names = completionsAt(`${prelude}mail.render('completion-invoice', { | });`);
    expect(names).toEqual(expect.arrayContaining(['number', 'payUrl', 'dueDate']));
    const builtin = completionsAt(`${prelude}mail.render('password-reset', { | });`);
    expect(builtin).toEqual(expect.arrayContaining(['username', 'resetUrl', 'expiresInMinutes']));
    expect(builtin).not.toContain('payUrl');
  });

  it('the template name itself is completed from the declared and built-in names', () => {
    const names = completionsAt(`${prelude}mail.render('|', {});`);
    expect(names).toEqual(expect.arrayContaining(['completion-invoice', 'verification', 'welcome']));
  });
});
