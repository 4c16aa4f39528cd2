/**
 * The preview as a developer opens it in each example app: the page, the built-in templates with
 * their data sets, an email the sandbox captured, and what it refuses. Requests go through each
 * framework's own routing (supertest for Express, `app.inject` for Fastify), as a browser's would.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type RequestListener,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  type ConfigError,
  EmailService,
  type EmailServiceOptions,
  isConfigError,
  memoryTransport,
  sandboxFiles,
  sandboxTransport,
} from 'mailroom-js';
import { createPreviewHandler } from 'mailroom-js/preview';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getWithHost } from '../../test/helpers/http.js';
import { type AppOptions, createExpressApp } from './express.js';
import { createFastifyApp } from './fastify.js';

const from = 'Acme <no-reply@acme.example>';
// The app's own mail options: the preview renders the templates with them.
const mailOptions: EmailServiceOptions = { transport: memoryTransport(), from };

/** What a browser gets back, whichever framework answered. */
interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

/** An example app under test, driven over HTTP. */
interface Driven {
  request(path: string, method?: 'GET' | 'HEAD' | 'POST'): Promise<Answer>;
  close(): Promise<void>;
}

const frameworks: [string, (options: AppOptions) => Driven][] = [
  [
    'Express',
    (options) => {
      const app = createExpressApp(options);
      return {
        async request(path, method = 'GET') {
          const test =
            method === 'GET'
              ? request(app).get(path)
              : method === 'HEAD'
                ? request(app).head(path)
                : request(app).post(path);
          // Supertest never follows redirects; a download (message/rfc822) comes back as a Buffer.
          const res = await test.timeout(3000);
          const body = Buffer.isBuffer(res.body) ? res.body.toString('utf8') : (res.text ?? '');
          return { status: res.status, headers: res.headers, body };
        },
        close: async () => {},
      };
    },
  ],
  [
    'Fastify',
    (options) => {
      const app = createFastifyApp(options);
      return {
        async request(path, method = 'GET') {
          const res = await withTimeout(app.inject({ method, url: path }), 3000);
          const headers = Object.fromEntries(
            Object.entries(res.headers).map(([name, value]) => [
              name,
              value === undefined ? undefined : String(value),
            ]),
          );
          return { status: res.statusCode, headers, body: res.body };
        },
        // Also stops the preview (an onClose hook in fastify.ts).
        close: () => app.close(),
      };
    },
  ],
];

let outboxDir: string;
let captured: { id: string; eml: string };

beforeAll(async () => {
  // One email captured the way an app in development sends it: by the sandbox transport.
  outboxDir = await mkdtemp(join(tmpdir(), 'mailroom-preview-'));
  const mail = new EmailService({ transport: sandboxTransport({ dir: outboxDir }), from });
  const files = sandboxFiles(await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' }));
  if (!files) throw new Error('expected the sandbox to capture the email');
  captured = { id: basename(files.eml, '.eml'), eml: await readFile(files.eml, 'utf8') };
});

afterAll(async () => {
  await rm(outboxDir, { recursive: true, force: true });
});

describe.each(frameworks)('the preview mounted in the %s app', (_name, start) => {
  let app: Driven;
  // No file watching in tests: nothing is left to keep the process alive.
  beforeAll(() => {
    app = start({ mailOptions, outboxDir, watch: false });
  });
  afterAll(() => app.close());

  const getJson = async (path: string) => {
    const res = await app.request(path);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    return JSON.parse(res.body);
  };

  it('redirects /_mail to /_mail/, where the relative links of the page resolve', async () => {
    const res = await app.request('/_mail');

    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/_mail/');
  });

  it('serves the page with a Content-Security-Policy that allows only its own nonce', async () => {
    const res = await app.request('/_mail/');

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = res.headers['content-security-policy'] ?? '';
    const nonce = /script-src 'nonce-([\w+/=]+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(res.body).toContain(`<script nonce="${nonce}">`);
    expect(res.body).toContain('<title>mailroom preview</title>');
    // A fresh nonce on every response.
    expect((await app.request('/_mail/')).headers['content-security-policy']).not.toBe(csp);
  });

  it('lists the built-in templates, each with its data sets, default first', async () => {
    const list = await getJson('/_mail/api/templates');

    expect(list.problems).toEqual([]);
    expect(list.templates.map((t: { name: string }) => t.name)).toEqual([
      'maintenance-notice',
      'order-confirmation',
      'password-reset',
      'product-update',
      'reminder',
      'security-alert',
      'verification',
      'welcome',
    ]);
    for (const [name, sets] of [
      ['password-reset', ['default', 'long-name', 'one-minute']],
      ['verification', ['default', 'long-name', 'unicode']],
      ['welcome', ['default', 'long-name', 'no-action']],
      ['security-alert', ['default', 'long-values', 'password-changed']],
      ['maintenance-notice', ['default', 'long-values', 'no-name']],
    ] as const) {
      const template = list.templates.find((t: { name: string }) => t.name === name);
      expect(template).toMatchObject({ builtin: true, sets: expect.arrayContaining([...sets]) });
      expect(template.sets[0]).toBe('default');
    }
  });

  it('renders a template with one of its data sets, with the app’s own options', async () => {
    const view = await getJson('/_mail/api/templates/verification/default');

    expect(view.subject).toBe('Verify your email address for Acme');
    expect(view.html).toContain('https://acme.example/verify?token=3f9c2a71e8b04d65');
    expect(view.text).toContain('https://acme.example/verify?token=3f9c2a71e8b04d65');
    expect(view.problem).toBeUndefined();
    // The frame renders in the language shown (the preview's picker; the service's default here).
    expect(view.frame).toBe('frame/template/verification/default?locale=en');
  });

  it('shows email HTML only in a sandboxed frame, where no script runs', async () => {
    for (const path of [
      '/_mail/frame/template/verification/default',
      `/_mail/frame/outbox/${encodeURIComponent(captured.id)}`,
    ]) {
      const res = await app.request(path);

      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['content-security-policy']).toMatch(/^sandbox /);
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
      expect(res.body).toContain('Acme');
    }
  });

  it('lists the email the sandbox captured, and downloads it as a .eml file', async () => {
    const outbox = await getJson('/_mail/api/outbox');
    expect(outbox).toEqual([
      expect.objectContaining({
        id: captured.id,
        subject: 'Welcome to Acme, Jane!',
        to: ['jane@example.com'],
        template: 'welcome',
      }),
    ]);

    const email = await getJson(`/_mail/api/outbox/${encodeURIComponent(captured.id)}`);
    expect(email.subject).toBe('Welcome to Acme, Jane!');
    expect(email.headers).toContainEqual(['Subject', 'Welcome to Acme, Jane!']);

    const download = await app.request(`/_mail/eml/${encodeURIComponent(captured.id)}.eml`);
    expect(download.status).toBe(200);
    expect(download.headers['content-type']).toBe('message/rfc822');
    expect(download.headers['content-disposition']).toBe(`attachment; filename="${captured.id}.eml"`);
    expect(download.body).toBe(captured.eml);
  });

  it('looks every name up in what it loaded, and never serves a path from the URL', async () => {
    for (const path of [
      '/_mail/eml/..%2F..%2Fetc%2Fpasswd.eml',
      '/_mail/eml/..%2F..%2F..%2Fpackage.json',
      '/_mail/frame/outbox/..%2Fx',
      '/_mail/frame/outbox/..%2F..%2Fetc%2Fpasswd',
      '/_mail/frame/template/..%2F..%2Fpackage.json/default',
      '/_mail/api/outbox/..%2F..%2Fpackage',
      '/_mail/nothing-here',
    ]) {
      const res = await app.request(path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toMatch(/"name": "mailroom-js"|root:/);
    }

    // A template view answers 200 with a problem for the page to show, never the file's contents.
    const res = await app.request('/_mail/api/templates/..%2F..%2Fpackage.json/default');
    expect(res.body).not.toMatch(/"name": "mailroom-js"/);
    expect(JSON.parse(res.body)).toEqual({ problem: { message: expect.stringMatching(/^no template/) } });
  });

  it('answers a malformed URL with a 4xx, not an error page', async () => {
    const res = await app.request('/_mail/eml/%E0%A4%A.eml');

    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body).not.toMatch(/URIError|handler\.ts/);
  });

  it('ends a HEAD request for the event stream at once', async () => {
    const res = await app.request('/_mail/events', 'HEAD');

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
  });

  it('answers anything but GET and HEAD with 405', async () => {
    expect((await app.request('/_mail/', 'POST')).status).toBe(405);
  });
});

/** An example app listening on loopback for real, as `server.ts` runs it. */
const servers: [string, (options: AppOptions) => Promise<{ port: number; close(): Promise<void> }>][] = [
  [
    'Express',
    async (options) => {
      const server = createExpressApp(options).listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      return {
        port: (server.address() as AddressInfo).port,
        close: async () => {
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    },
  ],
  [
    'Fastify',
    async (options) => {
      const app = createFastifyApp(options);
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
    },
  ],
];

describe.each(servers)('over HTTP, the preview mounted in the %s app', (_name, listen) => {
  let port: number;
  let close: () => Promise<void>;
  beforeAll(async () => {
    // The app is opened as http://myapp.test:3000 too, so it names itself.
    ({ port, close } = await listen({ mailOptions, outboxDir, watch: false, allowedHosts: ['myapp.test'] }));
  });
  afterAll(() => close());

  const paths = () => [
    '/_mail/',
    '/_mail/api/templates',
    `/_mail/api/outbox/${encodeURIComponent(captured.id)}`,
    `/_mail/frame/outbox/${encodeURIComponent(captured.id)}`,
    `/_mail/eml/${encodeURIComponent(captured.id)}.eml`,
    '/_mail/events',
  ];

  it.each(['evil.example', '127.0.0.1.nip.io:3000'])(
    'refuses Host %s with a 403 on every preview route (DNS rebinding)',
    async (host) => {
      for (const path of paths()) {
        const res = await getWithHost(port, host, path);
        expect(res.status, path).toBe(403);
        expect(res.body, path).toMatch(/allowedHosts/);
        expect(res.body, path).not.toContain('Jane');
      }
      // The app's own routes are the app's business.
      expect((await getWithHost(port, host, '/')).status).toBe(200);
    },
  );

  it.each(['localhost:3000', '127.0.0.1', 'myapp.test:3000'])(
    'answers Host %s, the captured email included',
    async (host) => {
      for (const path of paths()) expect((await getWithHost(port, host, path)).status, path).toBe(200);
      const email = JSON.parse((await getWithHost(port, host, paths()[2]!)).body);
      expect(email.subject).toBe('Welcome to Acme, Jane!');
    },
  );
});

// live: a NODE_ENV mailroom does not know as development, test or staging, held to production's rules.
describe.each(['production', 'live'])('with NODE_ENV=%s', (value) => {
  let nodeEnv: string | undefined;
  beforeEach(() => {
    nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = value;
  });
  afterEach(() => {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  });

  it.each(frameworks)('the %s app does not mount the preview', async (_name, start) => {
    const app = start({ mailOptions, outboxDir, watch: false });
    try {
      for (const path of ['/_mail', '/_mail/', '/_mail/api/templates', `/_mail/eml/${captured.id}.eml`]) {
        expect((await app.request(path)).status, path).toBe(404);
      }
      expect((await app.request('/')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('createPreviewHandler refuses to start unless forced', () => {
    let error: unknown;
    try {
      createPreviewHandler({ enabled: true, service: mailOptions, outboxDir, watch: false });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error)).toBe(true);
    expect((error as ConfigError).option).toBe('force');

    const forced = createPreviewHandler({ enabled: true, force: true, service: mailOptions, watch: false });
    forced.close();
  });
});

describe('createPreviewHandler', () => {
  it('is off unless enabled: true', () => {
    expect(() => createPreviewHandler({ enabled: false } as never)).toThrow(/enabled/);
    expect(() => createPreviewHandler({} as never)).toThrow(/enabled/);
    expect(() => createPreviewHandler({ enabled: 'yes' } as never)).toThrow(/enabled/);
  });

  // Mounted at the root, as `mailroom preview` serves it, a path whose first segment is empty
  // must not turn into a redirect to another host (`//host/` and `/\host/` are both
  // protocol-relative to a browser).
  it.each(['//evil.example', '/\\evil.example'])('never redirects %s to another host', async (path) => {
    const handler = createPreviewHandler({ enabled: true, service: mailOptions, outboxDir, watch: false });
    try {
      const res = await rawGet(handler, path);
      const location = res.headers.location ?? '/';
      expect(location).toMatch(/^\/(?![/\\])/);
    } finally {
      handler.close();
    }
  });
});

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no response within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** GET with the request target exactly as given (an HTTP client would normalise `/\\`), on node:http. */
async function rawGet(
  handler: RequestListener,
  path: string,
): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      })
        .on('error', reject)
        .end();
    });
  } finally {
    server.close();
    server.closeAllConnections();
  }
}
