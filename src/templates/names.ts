/**
 * Templates by name, typed: the registry interface an app augments so that sending, rendering,
 * publishing and asserting by name type-check the data as a handle does.
 */
import type { BuiltinTemplates } from './builtins.js';
import type { TemplateHandle } from './define.js';

/**
 * The templates an app sends by name, and the data each takes: the built-in emails, and yours once
 * you declare them here (declaration merging). Then `sendTemplate('invoice', { data })`,
 * `render('invoice', data)`, `producer.publish({ template: 'invoice', data })` and
 * `outbox.expectSent({ template: 'invoice' })` offer and check the template's own fields.
 *
 * @example
 * ```ts
 * export const invoice = defineTemplate({ name: 'invoice', fields: { number: 'string', payUrl: 'url' }, dir });
 *
 * declare module 'mailroom-js' {
 *   interface MailroomTemplates {
 *     invoice: TemplateData<typeof invoice>;
 *   }
 * }
 * ```
 */
export interface MailroomTemplates extends BuiltinTemplates {}

/** The data type of a template handle: `TemplateData<typeof invoice>`. */
export type TemplateData<T> = T extends TemplateHandle<infer Data> ? Data : never;

/** A template's name: a known one (completed by editors), or any other (looked up at run time). */
export type TemplateName = keyof MailroomTemplates | (string & {});

/**
 * A template as the send methods take it: a handle from `defineTemplate`, a name declared in
 * {@link MailroomTemplates}, or another name (looked up at run time, data unchecked).
 */
// biome-ignore lint/suspicious/noExplicitAny: a handle of any data; DataFor recovers it
export type TemplateRef = TemplateHandle<any> | TemplateName;

/** The data a {@link TemplateRef} takes: the handle's, the declared name's, or any record. */
export type DataFor<T> =
  T extends TemplateHandle<infer Data>
    ? Data
    : T extends keyof MailroomTemplates
      ? MailroomTemplates[T]
      : Record<string, unknown>;
