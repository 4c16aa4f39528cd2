/**
 * Checks the published artifact, not the source: packs the package with `npm pack`, installs the
 * tarball into a scratch project outside the repo the way a user would, and runs node, tsc, the
 * `mailroom` bin, publint and attw against what was installed. Needs a fresh `dist/` (`npm test`
 * builds first; on its own, run `npm run build`).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));
// Each test spawns node, tsc or npm; tsc with --skipLibCheck false is the slow one (5-20 s).
const CHILD = 60_000;
const SLOW = 120_000;
const bin = (name: string) => join(repo, 'node_modules', '.bin', name);

let packDir = '';
let scratch = '';
let tarball = '';
let packedFiles: { path: string; mode: number }[] = [];
let repoPackage: Record<string, unknown> = {};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

// Children get a clean environment: no mailroom configuration, no colours, no preloaded loaders.
const env: NodeJS.ProcessEnv = { NO_COLOR: '1' };
for (const [key, value] of Object.entries(process.env)) {
  if (/^(APP_NAME|NODE_OPTIONS|NODE_PATH|FORCE_COLOR)$|^(MAILROOM|SMTP|MAILGUN)_/.test(key)) continue;
  env[key] = value;
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: { ...env, ...options.env }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}\n${error.message}` : stderr });
      },
    );
  });
}

const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

function parseJson<T>(what: string, result: Run): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`${what} did not print JSON:\n${show(result)}`);
  }
}

/** Runs a script with node in the scratch project and parses the JSON it prints. */
async function runScript(file: string, source: string): Promise<Record<string, unknown>> {
  await writeFile(join(scratch, file), source);
  const result = await run(process.execPath, [file], { cwd: scratch });
  if (result.code !== 0) throw new Error(`node ${file} failed:\n${show(result)}`);
  return parseJson(`node ${file}`, result);
}

/** Every file package.json points at: main, types, the exports targets and the bins. */
function referencedFiles(pkg: Record<string, unknown>): string[] {
  const found: string[] = [];
  const walk = (value: unknown) => {
    if (typeof value === 'string') found.push(value.replace(/^\.\//, ''));
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk([pkg.main, pkg.types, pkg.exports, pkg.bin]);
  return [...new Set(found)];
}

beforeAll(async () => {
  repoPackage = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8'));
  const missing = referencedFiles(repoPackage).filter(
    (file) => file.startsWith('dist/') && !existsSync(join(repo, file)),
  );
  if (missing.length > 0) {
    throw new Error(
      `dist/ is missing or incomplete (no ${missing.join(', ')}): run \`npm run build\` first.`,
    );
  }

  packDir = await realpath(await mkdtemp(join(tmpdir(), 'mailroom-pack-')));
  scratch = await realpath(await mkdtemp(join(tmpdir(), 'mailroom-scratch-')));

  const pack = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: repo });
  if (pack.code !== 0) throw new Error(`npm pack failed:\n${show(pack)}`);
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as {
    filename: string;
    files: { path: string; mode: number }[];
  }[];
  if (!info) throw new Error(`npm pack printed no package:\n${show(pack)}`);
  tarball = join(packDir, info.filename);
  packedFiles = info.files;

  // No "type": the scratch project is CommonJS, like most apps that would install this.
  await writeFile(
    join(scratch, 'package.json'),
    JSON.stringify({ name: 'mailroom-artifact-check', version: '0.0.0', private: true }),
  );
  // A real install of the tarball and its dependencies. --offline takes everything from the npm
  // cache (warm after `npm ci`); if the cache lacks something, fall back to --prefer-offline.
  const common = ['install', tarball, '--no-audit', '--no-fund', '--loglevel=error'];
  let install = await run('npm', [...common, '--offline'], { cwd: scratch });
  if (install.code !== 0) install = await run('npm', [...common, '--prefer-offline'], { cwd: scratch });
  if (install.code !== 0) throw new Error(`npm install of ${tarball} failed:\n${show(install)}`);

  const installed = await lstat(join(scratch, 'node_modules', 'mailroom'));
  if (!installed.isDirectory() || installed.isSymbolicLink()) {
    throw new Error('node_modules/mailroom is not a real copy of the tarball');
  }
}, 180_000);

afterAll(async () => {
  for (const dir of [packDir, scratch]) if (dir) await rm(dir, { recursive: true, force: true });
});

const MAIN_NAMES = [
  'EmailService',
  'defineTemplate',
  'sendVerificationEmail',
  'sendPasswordResetEmail',
  'sendWelcomeEmail',
  'configure',
  'configFromEnv',
  'isEmailError',
  'memoryTransport',
  'sandboxTransport',
];
const TESTING_NAMES = ['createTestMailer', 'extractLink', 'Outbox'];
const VERIFY_URL = 'https://acme.example/verify?token=artifact-7Qx';

/** The body shared by the ESM and the CJS script: `mailroom` and `testing` are the loaded modules. */
const CHECK = `
async function check(mailroom, testing, resolved) {
  const mailer = testing.createTestMailer();
  const result = await mailer.service.sendVerificationEmail({
    to: 'jane@example.com',
    username: 'Jane',
    verificationUrl: ${JSON.stringify(VERIFY_URL)},
  });
  const email = mailer.outbox.expectSent({ to: 'jane@example.com', template: 'verification' });
  return {
    resolved,
    missing: ${JSON.stringify(MAIN_NAMES)}.filter((name) => typeof mailroom[name] !== 'function'),
    missingTesting: ${JSON.stringify(TESTING_NAMES)}.filter((name) => typeof testing[name] !== 'function'),
    sameClasses: mailer.service instanceof mailroom.EmailService && mailer.outbox instanceof testing.Outbox,
    result: { accepted: result.accepted, transport: result.transport },
    subject: email.subject,
    html: email.html,
    text: email.text,
    link: testing.extractLink(email),
  };
}
`;

function expectSentVerification(out: Record<string, unknown>) {
  expect(out.missing).toEqual([]);
  expect(out.missingTesting).toEqual([]);
  // testing's service is the same EmailService class the main entry exports (shared chunk).
  expect(out.sameClasses).toBe(true);
  expect(out.result).toEqual({ accepted: ['jane@example.com'], transport: 'memory' });
  expect(out.subject).toMatch(/verify/i);
  expect(out.html).toContain(`href="${VERIFY_URL}"`);
  expect(out.html).toMatch(/<html[\s>]/);
  expect(out.text).toContain('Hi Jane');
  expect(out.link).toBe(VERIFY_URL);
}

describe('the packed tarball', () => {
  it('ships every file package.json points at, the templates, and nothing from the repo', () => {
    const paths = packedFiles.map((file) => file.path);
    expect(referencedFiles(repoPackage).filter((file) => !paths.includes(file))).toEqual([]);
    expect(paths).toContain('templates/layout.eta');
    expect(paths).toContain('LICENSE');
    expect(paths).toContain('templates/verification/html.eta');
    expect(
      paths.filter(
        (path) => !/^(dist|templates)\/|^(package\.json|README\.md|CHANGELOG\.md|LICENSE)$/.test(path),
      ),
    ).toEqual([]);
    const cli = packedFiles.find((file) => file.path === 'dist/cli/index.js');
    expect(cli && (cli.mode & 0o111) !== 0, 'dist/cli/index.js is executable').toBe(true);
  });

  it('works from ESM: import mailroom and mailroom/testing, send and read a verification email', {
    timeout: CHILD,
  }, async () => {
    const out = await runScript(
      'check-esm.mjs',
      `import * as mailroom from 'mailroom';
import * as testing from 'mailroom/testing';
${CHECK}
const resolved = [import.meta.resolve('mailroom'), import.meta.resolve('mailroom/testing')];
console.log(JSON.stringify(await check(mailroom, testing, resolved)));
`,
    );
    const dist = join(scratch, 'node_modules', 'mailroom', 'dist');
    expect(out.resolved).toEqual([
      pathToFileURL(join(dist, 'index.js')).href,
      pathToFileURL(join(dist, 'testing', 'index.js')).href,
    ]);
    expectSentVerification(out);
  });

  it('works from CJS: require mailroom and mailroom/testing, send and read a verification email', {
    timeout: CHILD,
  }, async () => {
    const out = await runScript(
      'check-cjs.cjs',
      `const mailroom = require('mailroom');
const testing = require('mailroom/testing');
${CHECK}
const resolved = [require.resolve('mailroom'), require.resolve('mailroom/testing')];
check(mailroom, testing, resolved).then((out) => console.log(JSON.stringify(out)));
`,
    );
    const dist = join(scratch, 'node_modules', 'mailroom', 'dist');
    expect(out.resolved).toEqual([join(dist, 'index.cjs'), join(dist, 'testing', 'index.cjs')]);
    expectSentVerification(out);
  });

  it('serves mailroom/preview from ESM and CJS, with the built-in data sets', {
    timeout: CHILD,
  }, async () => {
    const body = (load: string) => `${load}
const handler = createPreviewHandler({ enabled: true, watch: false });
const server = http.createServer(handler).listen(0, '127.0.0.1', async () => {
  const base = 'http://127.0.0.1:' + server.address().port;
  const list = await (await fetch(base + '/api/templates')).json();
  const view = await (await fetch(base + '/api/templates/verification/long-name')).json();
  console.log(JSON.stringify({ sets: list.templates.map((t) => t.name + ':' + t.sets.join('|')), subject: view.subject }));
  handler.close();
  server.close();
});
`;
    const esm = await runScript(
      'check-preview.mjs',
      body("import http from 'node:http';\nimport { createPreviewHandler } from 'mailroom/preview';"),
    );
    const cjs = await runScript(
      'check-preview.cjs',
      body(
        "const http = require('node:http');\nconst { createPreviewHandler } = require('mailroom/preview');",
      ),
    );
    for (const out of [esm, cjs]) {
      expect(out).toEqual({
        sets: [
          'password-reset:default|long-name|one-minute',
          'verification:default|long-name|unicode',
          'welcome:default|long-name|no-action',
        ],
        subject: expect.stringMatching(/^Verify your email address/),
      });
    }
  });

  it('recognises errors across the ESM and CJS builds (dual-package hazard)', {
    timeout: CHILD,
  }, async () => {
    const out = await runScript(
      'check-dual.mjs',
      `import { createRequire } from 'node:module';
import * as esm from 'mailroom';
const cjs = createRequire(import.meta.url)('mailroom');

const service = new esm.EmailService({ transport: esm.memoryTransport(), from: 'no-reply@example.com' });
let templateError;
try {
  service.render('verification', { username: 'Jane' });
} catch (err) {
  templateError = err;
}
const emailError = new esm.EmailError('connection reset', { code: 'network', transport: 'smtp' });
const cjsEmailError = new cjs.EmailError('connection reset', { code: 'network', transport: 'smtp' });
const lookalike = Object.assign(new Error('not ours'), { kind: 'delivery' });
console.log(JSON.stringify({
  twoCopies: esm.EmailError !== cjs.EmailError && esm.isEmailError !== cjs.isEmailError,
  templateMessage: templateError?.message,
  template: {
    instanceofEsm: templateError instanceof esm.TemplateError,
    instanceofCjs: templateError instanceof cjs.TemplateError,
    isTemplateError: cjs.isTemplateError(templateError),
    isMailroomError: cjs.isMailroomError(templateError),
    isEmailError: cjs.isEmailError(templateError),
  },
  email: {
    instanceofCjs: emailError instanceof cjs.EmailError,
    isEmailError: cjs.isEmailError(emailError),
    isTemplateError: cjs.isTemplateError(emailError),
  },
  cjsToEsm: esm.isEmailError(cjsEmailError),
  lookalike: cjs.isEmailError(lookalike) || esm.isEmailError(lookalike),
}));
`,
    );
    // Two copies of every class are loaded, so instanceof fails across them...
    expect(out.twoCopies).toBe(true);
    expect(out.templateMessage).toMatch(/verificationUrl/);
    // ...and the Symbol.for brand is what makes the guards work anyway.
    expect(out.template).toEqual({
      instanceofEsm: true,
      instanceofCjs: false,
      isTemplateError: true,
      isMailroomError: true,
      isEmailError: false,
    });
    expect(out.email).toEqual({ instanceofCjs: false, isEmailError: true, isTemplateError: false });
    expect(out.cjsToEsm).toBe(true);
    expect(out.lookalike).toBe(false);
  });

  it('has types that resolve and type-check from .mts (ESM) and .cts (CJS) under node16', {
    timeout: SLOW,
  }, async () => {
    const source = (
      start: string,
    ) => `import { defineTemplate, EmailService, isEmailError, memoryTransport, type SendResult } from 'mailroom';
import { createTestMailer, extractLink, type Outbox } from 'mailroom/testing';

const invoice = defineTemplate({
  name: 'invoice',
  fields: { customer: 'string', amount: 'number', payUrl: 'url', note: 'string?' },
  subject: 'Invoice for <%= it.customer %>',
  html: '<p><%= it.amount %></p>',
});
const service: EmailService = new EmailService({ transport: memoryTransport(), from: 'billing@example.com' });
const sent: Promise<SendResult> = service.sendTemplate(invoice, {
  to: 'jane@example.com',
  data: { customer: 'Jane', amount: 42, payUrl: 'https://example.com/pay' },
});
// @ts-expect-error: \`amount\` is a number
service.sendTemplate(invoice, { to: 'jane@example.com', data: { customer: 'Jane', amount: '42', payUrl: 'https://example.com/pay' } });
// @ts-expect-error: there is no field \`customerName\`
service.sendTemplate(invoice, { to: 'jane@example.com', data: { customerName: 'Jane', amount: 42, payUrl: 'https://example.com/pay' } });
const mailer = createTestMailer();
const outbox: Outbox = mailer.outbox;
${start} mailer.service.sendVerificationEmail({ to: 'a@example.com', username: 'A', verificationUrl: 'https://example.com/v' });
const link: string = extractLink(outbox.expectSent({ to: 'a@example.com' }));
const guard: (err: unknown) => boolean = isEmailError;
export { guard, link, sent };
`;
    await writeFile(join(scratch, 'types-esm.mts'), source('await'));
    await writeFile(join(scratch, 'types-cjs.cts'), source('void'));
    const tsc = await run(
      process.execPath,
      [
        join(repo, 'node_modules', 'typescript', 'bin', 'tsc'),
        ...['--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16'],
        ...['--target', 'es2022', '--lib', 'es2022', '--skipLibCheck', 'false', '--types', 'node'],
        // @types/node comes from the repo: the scratch project installs nothing but the tarball.
        ...['--typeRoots', join(repo, 'node_modules', '@types'), '--listFiles'],
        'types-esm.mts',
        'types-cjs.cts',
      ],
      { cwd: scratch },
    );
    expect(tsc.code, show(tsc)).toBe(0);
    // Each mode read its own declarations: .d.ts for import, .d.cts for require.
    const dist = join(scratch, 'node_modules', 'mailroom', 'dist');
    const listed = tsc.stdout.split('\n').map((line) => line.trim());
    for (const file of ['index.d.ts', 'index.d.cts', 'testing/index.d.ts', 'testing/index.d.cts']) {
      expect(listed, file).toContain(join(dist, file));
    }
  });

  it('has a mailroom bin that renders, and fails on a bad template name with one line and no stack', {
    timeout: CHILD,
  }, async () => {
    const mailroom = join(scratch, 'node_modules', '.bin', 'mailroom');
    const cliEnv = { APP_NAME: 'Artifact Check' };
    const data = JSON.stringify({ username: 'Jane', verificationUrl: VERIFY_URL });
    const render = await run(mailroom, ['render', 'verification', '--data', data, '--format', 'json'], {
      cwd: scratch,
      env: cliEnv,
    });
    expect(render.code, show(render)).toBe(0);
    const rendered = parseJson<Record<string, unknown>>('mailroom render', render);
    expect(rendered).toMatchObject({
      subject: expect.any(String),
      html: expect.any(String),
      text: expect.any(String),
    });
    expect(rendered.subject).toContain('Artifact Check');
    expect(rendered.html).toContain(`href="${VERIFY_URL}"`);
    expect(rendered.text).toContain(VERIFY_URL);

    const bad = await run(mailroom, ['render', '../x'], { cwd: scratch, env: cliEnv });
    expect(bad.code).toBeGreaterThan(0);
    expect(bad.stdout).toBe('');
    const lines = bad.stderr.trimEnd().split('\n');
    expect(lines, bad.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^mailroom: .*\.\.\/x.*not a valid template name/);
    expect(bad.stderr).not.toMatch(/^\s+at /m);

    const version = await run(mailroom, ['--version'], { cwd: scratch });
    expect(version.stdout.trim(), show(version)).toBe(repoPackage.version);
  });

  it('passes publint with no errors or warnings', { timeout: CHILD }, async () => {
    // --level warning hides suggestions; --strict turns warnings into errors (a non-zero exit).
    const args = ['run', tarball, '--level', 'warning', '--strict'];
    const publint = await run(process.execPath, [bin('publint'), ...args], { cwd: repo });
    expect(publint.code, show(publint)).toBe(0);
    expect(publint.stdout, show(publint)).toContain('All good!');
  });

  it('passes attw in every resolution mode, node10 included', { timeout: CHILD }, async () => {
    // --no-definitely-typed: the package must carry its own types (and attw stays offline).
    const args = [tarball, '--format', 'json', '--no-definitely-typed'];
    const attw = await run(process.execPath, [bin('attw'), ...args], { cwd: repo });
    const report = parseJson<{
      analysis: {
        types: { kind: string };
        problems: unknown[];
        entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName: string } }> }>;
      };
    }>('attw', attw);
    expect(report.analysis.problems).toEqual([]);
    expect(attw.code, show(attw)).toBe(0);
    expect(report.analysis.types.kind).toBe('included');
    const typesFor = (entry: string) =>
      Object.fromEntries(
        Object.entries(report.analysis.entrypoints[entry]?.resolutions ?? {}).map(([kind, r]) => [
          kind,
          r.resolution?.fileName.replace('/node_modules/mailroom/', ''),
        ]),
      );
    expect(typesFor('.')).toEqual({
      node10: 'dist/index.d.cts',
      'node16-cjs': 'dist/index.d.cts',
      'node16-esm': 'dist/index.d.ts',
      bundler: 'dist/index.d.ts',
    });
    // node10 (TypeScript's `moduleResolution: node`, the default with `module: commonjs`) ignores
    // "exports"; package.json's "typesVersions" is what points it at the testing declarations.
    expect(typesFor('./testing')).toEqual({
      node10: 'dist/testing/index.d.cts',
      'node16-cjs': 'dist/testing/index.d.cts',
      'node16-esm': 'dist/testing/index.d.ts',
      bundler: 'dist/testing/index.d.ts',
    });
  });
});
