/**
 * Internal: the heavy CommonJS dependencies, loaded on first use rather than when the package is
 * imported. juice (CSS inlining) and html-to-text are needed only to compile a template from
 * source, nodemailer only to build MIME or speak SMTP; a service that renders the precompiled
 * built-ins and sends with the memory or Mailgun transport never loads them.
 *
 * A synchronous `require` keeps every API that uses them synchronous. `import.meta.url` is
 * shimmed in the CommonJS build (tsup `shims`), so this one file serves both builds.
 */
import { createRequire } from 'node:module';
import type * as HtmlToText from 'html-to-text';
import type * as IntlMessageFormatModule from 'intl-messageformat';
import type Juice from 'juice';
import type Nodemailer from 'nodemailer';
import type AddressParser from 'nodemailer/lib/addressparser/index.js';
import type DKIM from 'nodemailer/lib/dkim/index.js';
import type MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type * as MimeFuncs from 'nodemailer/lib/mime-funcs/index.js';

const nodeRequire = createRequire(import.meta.url);

/** A function returning the module `id`, required on its first call and cached. */
export function lazyRequire<T>(id: string): () => T {
  let loaded: { module: T } | undefined;
  return () => {
    loaded ??= { module: nodeRequire(id) as T };
    return loaded.module;
  };
}

export const loadJuice = lazyRequire<typeof Juice>('juice');
export const loadHtmlToText = lazyRequire<typeof HtmlToText>('html-to-text');
export const loadNodemailer = lazyRequire<typeof Nodemailer>('nodemailer');
export const loadMailComposer = lazyRequire<typeof MailComposer>('nodemailer/lib/mail-composer/index.js');
export const loadDkim = lazyRequire<typeof DKIM>('nodemailer/lib/dkim/index.js');
/** nodemailer's parser of RFC 5322 address lists (`"Doe, Jane" <jane@x>, ops@x`), for address-valued custom headers. */
export const loadAddressParser = lazyRequire<typeof AddressParser>('nodemailer/lib/addressparser/index.js');
/** nodemailer's table of file name extensions to MIME types, for an attachment given without one. */
export const loadMimeFuncs = lazyRequire<typeof MimeFuncs>('nodemailer/lib/mime-funcs/index.js');
/** ICU MessageFormat (FormatJS), needed only when a template calls `t()`. An ES module: Node ≥ 20.19 requires it. */
export const loadMessageFormat = lazyRequire<typeof IntlMessageFormatModule>('intl-messageformat');
