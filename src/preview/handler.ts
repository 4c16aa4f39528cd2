/**
 * The preview as a plain node:http request handler: mount it in any Node server (Express, Fastify,
 * node:http) or run it with `mailroom preview`. Off unless enabled, refused in production unless
 * forced; every name in a URL is looked up in what was loaded, never used as a path.
 */

import { randomBytes } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { configFromEnv } from '../config.js';
import { isProduction, productionSetting } from '../env-names.js';
import { ConfigError } from '../errors.js';
import type { EmailServiceOptions } from '../service.js';
import { isHoldTransport } from '../transports/hold.js';
import {
  type ActionAnswer,
  deleteCaptured,
  discard,
  heldForPage,
  readJson,
  refusal,
  release,
  sendTest,
} from './actions.js';
import type { OutboxAttachment } from './attachments.js';
import type { CheckOptions } from './checks.js';
import { checkRoute } from './checks-api.js';
import { describeProblem, type PreviewProblem } from './diagnose.js';
import {
  Drafts,
  editingRefusal,
  editorSources,
  newTemplateRoute,
  notEditable,
  renderRoute,
  saveRoute,
} from './editor.js';
import { hostCheck, hostName } from './hosts.js';
import { listOutbox, readAttachment, readEml, readOutbox } from './outbox.js';
import { page } from './page.js';
import { settingsView, verifyTransport } from './settings.js';
import { loadPreviewSources, type PreviewSources, type PreviewTemplate } from './sources.js';

/** Options of {@link createPreviewHandler}. */
export interface PreviewOptions {
  /** Must be `true`: the preview is off unless you turn it on. */
  enabled: boolean;
  /** Serve even when `NODE_ENV` is `production`. Default false. */
  force?: boolean;
  /** The options your `EmailService` is built with (templates, brand, layouts). Default: `configFromEnv()`. */
  service?: EmailServiceOptions;
  /**
   * A folder of more templates, one subfolder each (see the README). Its templates are the ones the
   * page can edit and create, in development and over loopback only (never with
   * `NODE_ENV=production`, not even with `force`). Default none.
   */
  templatesDir?: string;
  /** The sandbox folder whose captured emails to show. Default `MAILROOM_SANDBOX_DIR` or `.mailroom/outbox`. */
  outboxDir?: string;
  /** Reload the page when a template, stylesheet, data set or captured email changes. Default true. */
  watch?: boolean;
  /**
   * Where the handler is mounted, for servers that pass it full URLs (Fastify, node:http): this
   * prefix is taken off each request's path. Not needed with Express's `app.use(path, …)`.
   */
  basePath?: string;
  /**
   * Host names the preview answers besides loopback (`localhost`, `127.0.0.0/8`, `[::1]`, any
   * port), matched against each request's `Host` header: your app's own name when it is mounted
   * in an app you open as `http://myapp.test:3000`, or the name of a machine you open it from.
   * A leading dot takes the subdomains too (`'.myapp.test'`). Names only: no scheme, no port.
   * Any other `Host` gets a 403 on every route, so that a page on a DNS-rebinding name cannot
   * read captured emails. Default none.
   *
   * @example ['myapp.test', '.preview.internal']
   */
  allowedHosts?: readonly string[];
  /**
   * A secret the page's buttons that change something (release, discard, send a test email, save a
   * template: that one on loopback only) must
   * present: required when the page is reached by a name that is not loopback (an `allowedHosts`
   * name), and then whenever it is set. Open the page as `…/?token=TOKEN`; it sends the token in
   * an `X-Mailroom-Token` header. Default `MAILROOM_PREVIEW_TOKEN`, else none: those buttons work
   * on loopback only. Viewing is never token-protected: use `allowedHosts` for that.
   */
  token?: string;
  /**
   * Options of the checks the page shows (see `checkEmail`): `production`, `stagingHosts`,
   * `clients`, and `spam: false` to take the checks panel's SpamAssassin button away. SpamAssassin
   * runs only when that button is pressed. Default `{}`.
   */
  checks?: CheckOptions;
  /**
   * The config file `service` was read from (the CLI passes its `mailroom.config.ts`): the settings
   * view names it as the source of what it sets. Default none: options given in `service` are
   * shown as set in code.
   */
  configFile?: string;
}

/** The preview is for development: under NODE_ENV=production only `force: true` serves it. Internal. */
export function refuseInProduction(force: boolean | undefined): void {
  if (isProduction(process.env.NODE_ENV) && force !== true) {
    throw new ConfigError(
      'force',
      `refusing to serve the preview with ${productionSetting(process.env.NODE_ENV)} (force: true overrides)`,
    );
  }
}

/** A node:http request handler; `close()` stops watching files and ends open event streams. */
export interface PreviewHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  close(): void;
}

/** What the page gets for one template and data set, or one captured email. */
interface View {
  subject?: string;
  html?: string;
  text?: string;
  headers?: readonly (readonly [string, string])[];
  attachments?: readonly (OutboxAttachment & { href: string })[];
  frame?: string;
  problem?: PreviewProblem;
}

/**
 * The preview as a request handler.
 *
 * @example
 * ```ts
 * import { isProduction } from 'mailroom-js';
 * import { createPreviewHandler } from 'mailroom-js/preview';
 *
 * // Throws a ConfigError (option `force`) under production's rules: see isProduction.
 * if (!isProduction()) {
 *   app.use('/_mail', createPreviewHandler({ enabled: true, service: mailOptions }));
 * }
 * ```
 */
export function createPreviewHandler(options: PreviewOptions): PreviewHandler {
  if (options?.enabled !== true) throw new ConfigError('enabled', 'the preview is off unless enabled: true');
  refuseInProduction(options.force);
  const serviceOptions = options.service ?? configFromEnv();
  if (
    options.configFile !== undefined &&
    (typeof options.configFile !== 'string' || options.configFile === '')
  ) {
    throw new ConfigError('configFile', 'must be the name of the config file the service options came from');
  }
  const origin = { code: options.service !== undefined, configFile: options.configFile };
  // The hold of the service's transport, if it has one: its folder is the outbox, its emails get buttons.
  const hold = isHoldTransport(serviceOptions.transport) ? serviceOptions.transport : undefined;
  const outboxDir = resolve(
    options.outboxDir ?? hold?.dir ?? process.env.MAILROOM_SANDBOX_DIR ?? '.mailroom/outbox',
  );
  const tokenOption = options.token ?? process.env.MAILROOM_PREVIEW_TOKEN;
  if (tokenOption !== undefined && (typeof tokenOption !== 'string' || tokenOption.trim().length < 8)) {
    throw new ConfigError('token', 'must be a string of at least 8 characters (MAILROOM_PREVIEW_TOKEN)');
  }
  const token = tokenOption?.trim();
  const templatesDir = options.templatesDir === undefined ? undefined : resolve(options.templatesDir);
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  if (basePath && !/^\/[\w./~-]*$/.test(basePath))
    throw new ConfigError('basePath', 'must be a path such as /_mail');
  const allowedHost = hostCheck(options.allowedHosts);
  hostCheck(options.checks?.stagingHosts, 'checks.stagingHosts');
  let sources: PreviewSources | undefined;
  const load = () => {
    sources ??= loadPreviewSources(serviceOptions, templatesDir);
    return sources;
  };

  const drafts = new Drafts();
  const streams = new Set<ServerResponse>();
  const watchers: FSWatcher[] = [];
  let pending: NodeJS.Timeout | undefined;
  const changed = () => {
    // Editors write several times per save: one reload per burst.
    clearTimeout(pending);
    pending = setTimeout(() => {
      sources = undefined;
      for (const res of streams) res.write('event: change\ndata: {}\n\n');
    }, 80);
  };
  const watched = new Set<string>();
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const watchAll = () => {
    if (options.watch === false || closed) return;
    let missing = false;
    for (const dir of [...load().watch, outboxDir]) {
      if (watched.has(dir)) continue;
      try {
        watchers.push(watch(dir, { recursive: true }, changed));
        watched.add(dir);
      } catch {
        missing = true;
      }
    }
    // A folder that does not exist yet (the outbox before the first email) is looked for again,
    // and its arrival reloads the page.
    if (missing && !retry) {
      retry = setTimeout(() => {
        retry = undefined;
        const before = watched.size;
        watchAll();
        if (watched.size > before) changed();
      }, 1000).unref();
    }
  };

  const handler = ((req, res, next) => {
    route(req, res).catch((error: unknown) => {
      if (next) return next(error);
      if (!res.headersSent) send(res, 500, 'text/plain', 'The preview failed; see the server log.');
      console.error(error);
    });
  }) as PreviewHandler;
  handler.close = () => {
    closed = true;
    clearTimeout(pending);
    clearTimeout(retry);
    for (const w of watchers) w.close();
    for (const res of streams) res.end();
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // First, on every route: a DNS-rebinding page must learn nothing, not even what exists.
    const host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
    if (!allowedHost(host)) return forbidden(res, host);
    const post = req.method === 'POST';
    if (req.method !== 'GET' && req.method !== 'HEAD' && !post)
      return send(res, 405, 'text/plain', 'Method not allowed');
    let path = req.url ?? '/';
    if (basePath) {
      if (path !== basePath && !path.startsWith(`${basePath}/`) && !path.startsWith(`${basePath}?`))
        return notFound(res);
      path = path.slice(basePath.length);
    }
    // Appended, not resolved: `//evil.example` is a path here, never a host.
    const url = new URL(`http://preview.invalid${path.startsWith('/') ? path : `/${path}`}`);
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return send(res, 400, 'text/plain; charset=utf-8', 'Bad request');
    }
    const [head, a, b] = parts;
    if (post) return action(req, res, host, parts.join('/'));
    watchAll();
    if (parts.length === 0) {
      // Mounted at /_mail, the page must be at /_mail/ so that its relative links resolve.
      const original = basePath
        ? (req.url ?? '/')
        : ((req as { originalUrl?: string }).originalUrl ?? req.url ?? '/');
      const pagePath = original.split('?')[0] ?? '/';
      // One leading slash only, so the redirect cannot point at another host (`//evil.example`).
      if (!pagePath.endsWith('/')) return redirect(res, `/${pagePath.replace(/^[/\\]+/, '')}/${url.search}`);
      const nonce = randomBytes(16).toString('base64');
      return send(res, 200, 'text/html; charset=utf-8', page(nonce), pageHeaders(nonce));
    }
    if (head === 'api' && a === 'templates' && parts.length === 2) {
      return json(res, templateList(load(), templatesDir, editingRefusal(req, host)));
    }
    if ((head === 'api' && a === 'edit') || (head === 'frame' && a === 'draft')) {
      const refused = editingRefusal(req, host);
      if (refused)
        return reply(res, { status: 403, body: { error: { name: 'Forbidden', message: refused } } });
      if (parts.length !== 3 || !b) return notFound(res);
      if (head === 'frame') {
        const html = drafts.get(b);
        return html === undefined
          ? notFound(res)
          : send(res, 200, 'text/html; charset=utf-8', colorScheme(html, url.searchParams), FRAME);
      }
      const view = editorSources(load(), templatesDir, b);
      return view ? json(res, view) : notFound(res);
    }
    if (head === 'api' && a === 'templates' && parts.length === 4) {
      return json(res, templateView(load(), parts[2]!, parts[3]!, url.searchParams.get('locale') || null));
    }
    if (head === 'api' && a === 'outbox' && parts.length === 2) return json(res, await listOutbox(outboxDir));
    if (head === 'api' && a === 'settings' && parts.length === 2) {
      return json(res, settingsView(load().service, origin));
    }
    if (head === 'api' && a === 'hold' && parts.length === 2) {
      const transport = load().service.transport;
      return json(res, {
        enabled: hold !== undefined,
        sendsThrough: transport.describe?.() ?? transport.name,
        captures: transport.captures === true,
        emails: hold ? (await hold.list()).map(heldForPage) : [],
      });
    }
    if (head === 'api' && a === 'outbox' && parts.length === 3 && b) {
      const email = await readOutbox(outboxDir, b);
      if (!email) return notFound(res);
      const held = hold ? await hold.get(email.id).catch(() => undefined) : undefined;
      return json(res, {
        ...(held ? { hold: heldForPage(held) } : {}),
        subject: email.subject,
        html: email.html,
        text: email.text,
        headers: email.headers,
        attachments: email.attachments.map((file) => ({
          ...file,
          href: `attachment/${encodeURIComponent(email.id)}/${file.index}`,
        })),
        frame: `frame/outbox/${encodeURIComponent(email.id)}`,
      } satisfies View);
    }
    if (head === 'api' && a === 'checks') {
      // Checks run programs (SpamAssassin): another site's page may not start them in the background.
      const site = req.headers['sec-fetch-site'];
      if (site === 'cross-site' || site === 'same-site') {
        const message = `a ${site} request cannot run checks here`;
        return reply(res, { status: 403, body: { error: { name: 'Forbidden', message } } });
      }
      const answer = await checkRoute(parts.slice(2), load, outboxDir, options.checks);
      return answer === undefined ? notFound(res) : json(res, answer);
    }
    if (head === 'frame' && a === 'template' && parts.length === 4) {
      const view = templateView(load(), parts[2]!, parts[3]!, url.searchParams.get('locale') || null);
      return view.html === undefined
        ? notFound(res)
        : send(res, 200, 'text/html; charset=utf-8', colorScheme(view.html, url.searchParams), FRAME);
    }
    if (head === 'frame' && a === 'outbox' && parts.length === 3 && b) {
      const email = await readOutbox(outboxDir, b);
      return email?.html === undefined
        ? notFound(res)
        : send(res, 200, 'text/html; charset=utf-8', colorScheme(email.html, url.searchParams), FRAME);
    }
    if (head === 'attachment' && parts.length === 3 && a && /^\d{1,4}$/.test(b ?? '')) {
      const file = await readAttachment(outboxDir, a, Number(b));
      if (!file) return notFound(res);
      // Always a download, never rendered on the preview's origin: an HTML attachment is the sender's page.
      return send(res, 200, 'application/octet-stream', file.content, {
        'content-disposition': `attachment; filename="${file.filename.replace(/[^\w. -]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(file.filename)}`,
        'content-security-policy': "sandbox; default-src 'none'",
      });
    }
    if (head === 'eml' && parts.length === 2 && a) {
      const id = a.replace(/\.eml$/, '');
      const eml = await readEml(outboxDir, id);
      if (!eml) return notFound(res);
      return send(res, 200, 'message/rfc822', eml, {
        'content-disposition': `attachment; filename="${id}.eml"`,
      });
    }
    if (head === 'events' && parts.length === 1) {
      startResponse(res, 200, { 'content-type': 'text/event-stream', connection: 'keep-alive' });
      if (req.method === 'HEAD' || closed) return void res.end();
      res.write('retry: 1000\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    return notFound(res);
  }

  /**
   * The buttons: `POST api/hold/release`, `api/hold/discard`, `api/send`, `api/outbox/delete`,
   * `api/settings/verify`, and the editor's `api/edit/render`, `api/edit/save`, `api/edit/new`.
   */
  async function action(req: IncomingMessage, res: ServerResponse, host: string | undefined, route: string) {
    const known = [
      'api/hold/release',
      'api/hold/discard',
      'api/send',
      'api/outbox/delete',
      'api/settings/verify',
      'api/edit/render',
      'api/edit/save',
      'api/edit/new',
    ];
    if (!known.includes(route)) return send(res, 405, 'text/plain', 'Method not allowed');
    const editing = route.startsWith('api/edit/');
    // Editing needs loopback and development first, then the same checks as every other button.
    const refused = (editing ? editingRefusal(req, host) : undefined) ?? refusal(req, host, token);
    if (refused) return reply(res, { status: 403, body: { error: { name: 'Forbidden', message: refused } } });
    const body = await readJson(req, editing ? 2 * 1024 * 1024 : undefined);
    if (!body) {
      return reply(res, {
        status: 415,
        body: {
          error: {
            name: 'UnsupportedMediaType',
            message: 'send a JSON object (content-type: application/json)',
          },
        },
      });
    }
    if (route === 'api/edit/render')
      return reply(res, renderRoute(serviceOptions, load(), templatesDir, drafts, body));
    if (route === 'api/edit/save' || route === 'api/edit/new') {
      const answer =
        route === 'api/edit/save'
          ? saveRoute(serviceOptions, load(), templatesDir, body)
          : newTemplateRoute(load(), templatesDir, body);
      // The sidebar, the render and the badges read the new files now, not after the watcher's delay.
      if (answer.status === 200) {
        sources = undefined;
        changed();
      }
      return reply(res, answer);
    }
    if (route === 'api/send') return reply(res, await sendTest(load(), body));
    if (route === 'api/outbox/delete') return reply(res, await deleteCaptured(outboxDir, hold, body));
    if (route === 'api/settings/verify') return reply(res, await verifyTransport(load().service));
    if (!hold) {
      return reply(res, {
        status: 409,
        body: {
          error: {
            name: 'ConfigError',
            message: 'nothing is held: set MAILROOM_HOLD=true (or give the service a holdTransport)',
          },
        },
      });
    }
    return reply(res, route === 'api/hold/release' ? await release(hold, body) : await discard(hold, body));
  }

  return handler;
}

function reply(res: ServerResponse, answer: ActionAnswer): void {
  send(res, answer.status, 'application/json; charset=utf-8', JSON.stringify(answer.body));
}

function templateList(
  sources: PreviewSources,
  templatesDir: string | undefined,
  editingRefused: string | undefined,
) {
  return {
    templates: sources.templates.map((t) => {
      const why = editingRefused ?? notEditable(t, templatesDir);
      return {
        name: t.name,
        builtin: t.builtin,
        sets: t.sets.map((s) => s.name),
        editable: why === undefined,
        ...(why === undefined ? {} : { notEditable: why }),
      };
    }),
    problems: sources.problems,
    locales: previewLocales(sources),
    editing: {
      allowed: editingRefused === undefined,
      ...(editingRefused === undefined ? {} : { why: editingRefused }),
      canCreate: editingRefused === undefined && templatesDir !== undefined,
    },
  };
}

/**
 * The locale picker's choices: the service's default first, then every locale a catalog has (the
 * built-in ones, the service's `messages`, the templates' own), sorted.
 */
function previewLocales(sources: PreviewSources): { default: string; available: string[] } {
  const service = sources.service;
  const found = new Set<string>();
  for (const layer of service.templates.messageLayers()) for (const locale of layer.keys()) found.add(locale);
  for (const template of sources.templates)
    for (const locale of template.handle.messages.keys()) found.add(locale);
  found.delete(service.locale);
  return { default: service.locale, available: [service.locale, ...[...found].sort()] };
}

function templateView(
  sources: PreviewSources,
  name: string,
  setName: string,
  locale: string | null = null,
): View {
  const template: PreviewTemplate | undefined = sources.templates.find((t) => t.name === name);
  const set = template?.sets.find((s) => s.name === setName);
  if (!template || !set)
    return { problem: { message: `no template "${name}" with a data set "${setName}"` } };
  if (set.problem || set.data === undefined) return { problem: set.problem ?? { message: 'no data' } };
  try {
    const language = locale ?? sources.service.locale;
    const rendered = sources.service.render(template.name, set.data, { locale: language });
    const app = sources.service.app;
    return {
      subject: rendered.subject,
      html: rendered.html,
      text: rendered.text,
      headers: [
        ['Subject', rendered.subject],
        ['From', `${app.senderName} <${app.senderAddress}>`],
        ['Template', template.name],
        ['Data set', set.file ?? `${set.name} (in code)`],
        ['Language', language],
      ],
      frame: `frame/template/${encodeURIComponent(template.name)}/${encodeURIComponent(set.name)}?locale=${encodeURIComponent(language)}`,
    };
  } catch (error) {
    const problem = describeProblem(error, {
      template: template.name,
      handle: template.handle,
      data: set.data,
    });
    // A data mistake is in the data set's file, not the template's.
    return { problem: problem.field && set.file ? { ...problem, file: set.file } : problem };
  }
}

/**
 * Email HTML is shown in a sandboxed frame: no script runs, whatever the email contains (no
 * `allow-scripts`, and no `script-src`). It keeps the preview's origin (`allow-same-origin`) so that
 * the page's own script can measure the email's height and size the frame to it; without scripts of
 * its own, the email cannot use that origin for anything.
 */
const FRAME = {
  'content-security-policy':
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src *",
};

/**
 * The dark-mode toggle: with `?scheme=dark` (or `light`) the email's `prefers-color-scheme` media
 * features are rewritten, for this response only, into ones that always (or never) match, so the
 * frame shows the email's own dark (or light) rules whatever the viewer's system is set to. The
 * frame runs no script, so this is done before it loads rather than in it.
 */
export function colorScheme(html: string, params: URLSearchParams): string {
  const scheme = params.get('scheme');
  if (scheme !== 'dark' && scheme !== 'light') return html;
  return html.replace(/\(\s*prefers-color-scheme\s*:\s*(dark|light)\s*\)/gi, (_, wanted: string) =>
    wanted.toLowerCase() === scheme ? '(min-width: 0px)' : '(max-width: -1px)',
  );
}

function pageHeaders(nonce: string) {
  return {
    'content-security-policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      "frame-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
    ].join('; '),
  };
}

/**
 * What every answer of the preview carries, whatever its route: never cached; never sniffed into
 * another type (a captured email's HTML, text or JSON read as a page); no referrer, since the page
 * is opened as `…/?token=…` and shows senders' links and images.
 */
const EVERY_RESPONSE = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/**
 * Framed only by the preview itself (the page frames its email renders), never by another site's
 * page: added to each response's own policy, and the whole policy of a response without one.
 */
const FRAME_ANCESTORS = "frame-ancestors 'self'";

/** Every response's head is written here, so no route can leave out the headers above. */
function startResponse(res: ServerResponse, status: number, headers: Record<string, string>): void {
  const policy = headers['content-security-policy'];
  res.writeHead(status, {
    ...EVERY_RESPONSE,
    ...headers,
    'content-security-policy': policy ? `${policy}; ${FRAME_ANCESTORS}` : FRAME_ANCESTORS,
  });
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  startResponse(res, status, { 'content-type': type, ...headers });
  res.end(body);
}

function json(res: ServerResponse, value: unknown): void {
  send(res, 200, 'application/json; charset=utf-8', JSON.stringify(value));
}

function notFound(res: ServerResponse): void {
  send(res, 404, 'text/plain; charset=utf-8', 'Not found');
}

function forbidden(res: ServerResponse, host: string | undefined): void {
  // Only a name that parsed is echoed: nothing else of the request reaches the body.
  const name = hostName(host);
  const as = name ? `"${name}"` : 'this Host';
  send(
    res,
    403,
    'text/plain; charset=utf-8',
    `Forbidden: the mail preview answers only localhost and the names in its allowedHosts option, not ${as}.\n` +
      (name
        ? `To open it as ${name}, allow that name: createPreviewHandler({ allowedHosts: ['${name}'] }) or mailroom preview --allowed-hosts ${name}.\n`
        : ''),
  );
}

function redirect(res: ServerResponse, location: string): void {
  startResponse(res, 302, { location });
  res.end();
}
