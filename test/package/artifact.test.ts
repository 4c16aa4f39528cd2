/**
 * Checks the published artifact, not the source: packs the package with `npm pack`, installs the
 * tarball into a scratch project outside the repo the way a user would, and runs node, tsc, the
 * `mailroom` bin, publint and attw against what was installed. Needs a fresh `dist/` (`npm test`
 * builds first; on its own, run `npm run build`).
 *
 * The Kafka clients (kafkajs, @confluentinc/kafka-javascript) are optional peers: the scratch
 * project does not have them, so `mailroom-js` and `mailroom-js/kafka` are shown to load without them.
 * The check of the clients' real declarations installs them in a project of their own nested in it.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, npmInstall, type Run, repo, run, show, showTsc, tsc } from './run.js';

// Each test spawns node, tsc or npm; tsc with --skipLibCheck false is the slow one (5-20 s).
const CHILD = 60_000;
const SLOW = 120_000;

let packDir = '';
let scratch = '';
let tarball = '';
let packedFiles: { path: string; mode: number }[] = [];
let repoPackage: Record<string, unknown> = {};

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

  // --ignore-scripts: `prepare` would rebuild dist/ under the other tests' feet; it is fresh already.
  const pack = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], {
    cwd: repo,
  });
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
  // A real install of the tarball and its dependencies, from the npm cache.
  const install = await npmInstall([tarball], scratch);
  if (install.code !== 0) throw new Error(`npm install of ${tarball} failed:\n${show(install)}`);

  const installed = await lstat(join(scratch, 'node_modules', 'mailroom-js'));
  if (!installed.isDirectory() || installed.isSymbolicLink()) {
    throw new Error('node_modules/mailroom-js is not a real copy of the tarball');
  }
}, 180_000);

afterAll(async () => {
  for (const dir of [packDir, scratch]) if (dir) await rm(dir, { recursive: true, force: true });
});

const MAIN_NAMES = [
  'EmailService',
  'defineTemplate',
  'defineConfig',
  'sendVerificationEmail',
  'sendPasswordResetEmail',
  'sendWelcomeEmail',
  'configure',
  'configFromEnv',
  'isEmailError',
  'memoryTransport',
  'sandboxTransport',
  'postgresSuppressionStore',
  'suppressionTableSql',
];
const TESTING_NAMES = ['createTestMailer', 'extractLink', 'Outbox'];
const KAFKA_NAMES = [
  'createEmailProducer',
  'createEmailWorker',
  'memoryIdempotencyStore',
  'redisIdempotencyStore',
  'parseEnvelope',
];
/** The optional peers that mailroom-js/kafka is written against and never imports (the Kafka clients, ioredis). */
const KAFKA_CLIENTS = ['kafkajs', '@confluentinc/kafka-javascript', 'ioredis'];
/** A module path, URL or specifier that belongs to one of those clients. */
const CLIENT_PATH = /kafkajs|confluentinc|ioredis/;
/**
 * Every optional peer: the Kafka clients and ioredis, prom-client, Nest (for `mailroom-js/nestjs`
 * only), the AWS SDK's SES client (for `sesTransport` only) and pg (required only when a
 * PostgreSQL store opens its own pool).
 */
const OPTIONAL_PEERS = [
  ...KAFKA_CLIENTS,
  'prom-client',
  '@nestjs/common',
  '@nestjs/core',
  '@aws-sdk/client-sesv2',
  'pg',
];
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

  it('neither bundles nor imports a Kafka client, and npm installs none: they are optional peers', async () => {
    const installed = join(scratch, 'node_modules', 'mailroom-js');
    const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'));
    expect(Object.keys(pkg.peerDependencies ?? {}).sort()).toEqual([...OPTIONAL_PEERS].sort());
    for (const name of OPTIONAL_PEERS) {
      expect(pkg.peerDependenciesMeta?.[name], name).toEqual({ optional: true });
      expect(existsSync(join(scratch, 'node_modules', name)), `npm installed ${name}`).toBe(false);
    }
    const files = (await readdir(join(installed, 'dist'), { recursive: true })).map(String);
    const imports: string[] = [];
    const bundled: string[] = [];
    for (const file of files.filter((name) => /\.(c?js|map)$/.test(name))) {
      const text = await readFile(join(installed, 'dist', file), 'utf8');
      if (/\.c?js$/.test(file)) {
        // import … from 'kafkajs', import('kafkajs'), require('kafkajs'), and their subpaths (ioredis
        // and pg too: pg is required by name only inside the store that opens a pool, lazyRequire("pg")).
        const found = text.match(
          /(?:\bfrom|\bimport|\brequire)\s*\(?\s*["'](?:kafkajs|@confluentinc\/kafka-javascript|ioredis|pg)(?:\/[^"']*)?["']/g,
        );
        imports.push(...(found ?? []).map((hit) => `${file}: ${hit}`));
      } else if (file.endsWith('.map')) {
        // A bundled dependency shows up among the sources; tsup's own shims are the only outsider.
        const { sources } = JSON.parse(text) as { sources: string[] };
        const outside = sources.filter((s) => /node_modules\//.test(s) && !/node_modules\/tsup\//.test(s));
        bundled.push(...outside.map((source) => `${file}: ${source}`));
      }
    }
    expect(files).toContain('kafka/index.js.map');
    // The one exception: `mailroom worker` loads the Kafka client when it runs (kafkajs, or
    // Confluent's with MAILROOM_KAFKA_CLIENT=confluent), with an install hint if absent.
    expect(imports.sort()).toEqual([
      'cli/index.js: import("@confluentinc/kafka-javascript"',
      'cli/index.js: import("kafkajs"',
    ]);
    expect(bundled).toEqual([]);
  });

  it('works from ESM: import mailroom and mailroom-js/testing, send and read a verification email', {
    timeout: CHILD,
  }, async () => {
    const out = await runScript(
      'check-esm.mjs',
      `import * as mailroom from 'mailroom-js';
import * as testing from 'mailroom-js/testing';
${CHECK}
const resolved = [import.meta.resolve('mailroom-js'), import.meta.resolve('mailroom-js/testing')];
console.log(JSON.stringify(await check(mailroom, testing, resolved)));
`,
    );
    const dist = join(scratch, 'node_modules', 'mailroom-js', 'dist');
    expect(out.resolved).toEqual([
      pathToFileURL(join(dist, 'index.js')).href,
      pathToFileURL(join(dist, 'testing', 'index.js')).href,
    ]);
    expectSentVerification(out);
  });

  it('works from CJS: require mailroom and mailroom-js/testing, send and read a verification email', {
    timeout: CHILD,
  }, async () => {
    const out = await runScript(
      'check-cjs.cjs',
      `const mailroom = require('mailroom-js');
const testing = require('mailroom-js/testing');
${CHECK}
const resolved = [require.resolve('mailroom-js'), require.resolve('mailroom-js/testing')];
check(mailroom, testing, resolved).then((out) => console.log(JSON.stringify(out)));
`,
    );
    const dist = join(scratch, 'node_modules', 'mailroom-js', 'dist');
    expect(out.resolved).toEqual([join(dist, 'index.cjs'), join(dist, 'testing', 'index.cjs')]);
    expectSentVerification(out);
  });

  it('serves mailroom-js/preview from ESM and CJS, with the built-in data sets', {
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
      body("import http from 'node:http';\nimport { createPreviewHandler } from 'mailroom-js/preview';"),
    );
    const cjs = await runScript(
      'check-preview.cjs',
      body(
        "const http = require('node:http');\nconst { createPreviewHandler } = require('mailroom-js/preview');",
      ),
    );
    for (const out of [esm, cjs]) {
      expect(out).toEqual({
        sets: [
          'maintenance-notice:default|long-values|no-name',
          'order-confirmation:default|long-values',
          'password-reset:default|long-name|one-minute',
          'product-update:default|long-values',
          'reminder:default|long-values|no-list',
          'security-alert:default|long-values|password-changed',
          'verification:default|long-name|unicode',
          'welcome:default|long-name|no-action',
        ],
        subject: expect.stringMatching(/^Verify your email address/),
      });
    }
  });

  it('takes a signed Mailgun bounce with mailroom-js/webhooks from ESM and CJS, into the suppression list of mailroom-js', {
    timeout: CHILD,
  }, async () => {
    const body = (load: string) => `${load}
const store = memorySuppressionStore();
const handler = createWebhookHandler({ provider: 'mailgun', signingKey: 'key-1', onEvent: suppressFromEvents(store) });
const server = http.createServer(handler).listen(0, '127.0.0.1', async () => {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const token = crypto.randomBytes(25).toString('hex');
  const signature = crypto.createHmac('sha256', 'key-1').update(timestamp + token).digest('hex');
  const eventData = { event: 'failed', severity: 'permanent', recipient: 'gone@example.com', timestamp: 1534110422 };
  const status = (await fetch('http://127.0.0.1:' + server.address().port, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ signature: { timestamp, token, signature }, 'event-data': eventData }),
  })).status;
  const list = await store.list();
  console.log(JSON.stringify({ status, suppressed: list.map((s) => s.address + ':' + s.reason) }));
  server.close();
});
`;
    const esm = await runScript(
      'check-webhooks.mjs',
      body(
        "import http from 'node:http';\nimport crypto from 'node:crypto';\nimport { memorySuppressionStore, suppressFromEvents } from 'mailroom-js';\nimport { createWebhookHandler } from 'mailroom-js/webhooks';",
      ),
    );
    const cjs = await runScript(
      'check-webhooks.cjs',
      body(
        "const http = require('node:http');\nconst crypto = require('node:crypto');\nconst { memorySuppressionStore, suppressFromEvents } = require('mailroom-js');\nconst { createWebhookHandler } = require('mailroom-js/webhooks');",
      ),
    );
    for (const out of [esm, cjs]) {
      expect(out).toEqual({ status: 200, suppressed: ['gone@example.com:hard-bounce'] });
    }
  });

  it('takes a one-click unsubscribe with mailroom-js/unsubscribe from ESM and CJS, into the preferences of mailroom-js', {
    timeout: CHILD,
  }, async () => {
    const body = (load: string) => `${load}
const secrets = ['artifact-unsubscribe-secret-artifact-unsubscribe'];
const preferences = memoryPreferenceStore();
const handler = createUnsubscribeHandler({ secrets, preferences });
const server = http.createServer(handler).listen(0, '127.0.0.1', async () => {
  const token = signUnsubscribeToken({ address: 'jane@example.com', category: 'marketing' }, secrets[0]);
  const status = (await fetch('http://127.0.0.1:' + server.address().port + '/?token=' + token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'List-Unsubscribe=One-Click',
  })).status;
  const choice = await preferences.get('jane@example.com', 'marketing');
  console.log(JSON.stringify({ status, allowed: choice.allowed, source: choice.source }));
  server.close();
});
`;
    const esm = await runScript(
      'check-unsubscribe.mjs',
      body(
        "import http from 'node:http';\nimport { memoryPreferenceStore } from 'mailroom-js';\nimport { createUnsubscribeHandler, signUnsubscribeToken } from 'mailroom-js/unsubscribe';",
      ),
    );
    const cjs = await runScript(
      'check-unsubscribe.cjs',
      body(
        "const http = require('node:http');\nconst { memoryPreferenceStore } = require('mailroom-js');\nconst { createUnsubscribeHandler, signUnsubscribeToken } = require('mailroom-js/unsubscribe');",
      ),
    );
    for (const out of [esm, cjs]) {
      expect(out).toEqual({ status: 200, allowed: false, source: 'one-click-unsubscribe' });
    }
  });

  it("checks an email and a brand's contrast with mailroom-js/preview from ESM and CJS, the client-support table included (caniemail is not installed)", {
    timeout: CHILD,
  }, async () => {
    const body = (load: string) => `${load}
checkEmail(
  { subject: 'Hello', html: '<div style="display:flex; gap:4px"><video src="https://a.example/v.mp4" width="2" height="2"></video></div>', text: '' },
  { spam: false },
).then((report) => console.log(JSON.stringify({
  clientSupport: report.findings.filter((f) => f.check === 'client-support' && f.severity === 'warning').map((f) => f.message.split(' is not')[0]),
  contrast: checkBrand(
    new EmailService({ transport: memoryTransport(), from: 'Acme <a@acme.example>', brand: { colors: { primary: '#FFC107' } } }).app,
  ).findings.map((f) => \`\${f.check} \${f.where}\`),
})));
`;
    const esm = await runScript(
      'check-checks.mjs',
      body(
        "import { EmailService, memoryTransport } from 'mailroom-js';\nimport { checkBrand, checkEmail } from 'mailroom-js/preview';",
      ),
    );
    const cjs = await runScript(
      'check-checks.cjs',
      body(
        "const { EmailService, memoryTransport } = require('mailroom-js');\nconst { checkBrand, checkEmail } = require('mailroom-js/preview');",
      ),
    );
    for (const out of [esm, cjs]) {
      expect(out).toEqual({
        clientSupport: ['gap, column-gap, row-gap', '<video> element'],
        contrast: ['contrast links'],
      });
    }
    expect(existsSync(join(scratch, 'node_modules', 'caniemail'))).toBe(false);
  });

  it('loads mailroom and mailroom-js/kafka from ESM and CJS without a Kafka client, never asking for one', {
    timeout: CHILD,
  }, async () => {
    // Shared by both scripts: the clients are not installed, for the scratch project nor for mailroom.
    const unresolvable = `
const unresolvable = {};
for (const name of ${JSON.stringify(KAFKA_CLIENTS)}) {
  unresolvable[name] = [${JSON.stringify(join(scratch, 'package.json'))}, ${JSON.stringify(join(scratch, 'node_modules', 'mailroom-js', 'package.json'))}]
    .every((from) => { try { createRequire(from).resolve(name); return false; } catch { return true; } });
}
`;
    // A fake client: creating a producer or a worker must not connect anywhere.
    const fake = `
const fakeClient = {
  producer: () => ({ connect: async () => {}, send: async () => [], sendBatch: async () => [], disconnect: async () => {}, on: () => () => {}, events: {} }),
  consumer: () => ({ connect: async () => {}, subscribe: async () => {}, run: async () => {}, commitOffsets: async () => {}, pause: () => {}, resume: () => {}, stop: async () => {}, disconnect: async () => {}, on: () => () => {}, events: {} }),
};
function probe(mailroom, kafka) {
  const service = new mailroom.EmailService({ transport: mailroom.memoryTransport(), from: 'a@b.example' });
  const producer = kafka.createEmailProducer({ kafka: fakeClient });
  const worker = kafka.createEmailWorker({ kafka: fakeClient, service, allowCapturingTransport: true });
  return {
    missing: ${JSON.stringify(KAFKA_NAMES)}.filter((name) => typeof kafka[name] !== 'function'),
    producer: { name: producer.name, publish: typeof producer.publish, publishMany: typeof producer.publishMany },
    worker: { start: typeof worker.start, close: typeof worker.close, stats: worker.stats },
  };
}
`;
    // ESM: a resolve hook records every specifier asked for and every URL it resolved to, and
    // hands the record back as a module ('artifact:asked?…', fresh each time).
    await writeFile(
      join(scratch, 'trace-hooks.mjs'),
      `const asked = [];
export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('artifact:asked?')) {
    return { shortCircuit: true, url: 'data:text/javascript,export default ' + encodeURIComponent(JSON.stringify(asked)) };
  }
  asked.push(specifier);
  const resolved = await nextResolve(specifier, context);
  asked.push(resolved.url);
  return resolved;
}
`,
    );
    const esm = await runScript(
      'check-kafka.mjs',
      `import { createRequire, register } from 'node:module';
${unresolvable}
${fake}
register('./trace-hooks.mjs', import.meta.url);
const mailroom = await import('mailroom-js');
const afterMain = (await import('artifact:asked?main')).default;
const kafka = await import('mailroom-js/kafka');
const afterKafka = (await import('artifact:asked?kafka')).default;
const loaded = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({
  unresolvable,
  traced: afterKafka.length > 0 && afterKafka.some((url) => url.endsWith('/dist/kafka/index.js')),
  mainLoadedKafkaEntry: afterMain.some((url) => url.includes('/dist/kafka/')),
  askedByMain: afterMain.filter((s) => ${CLIENT_PATH}.test(s)),
  askedByKafka: afterKafka.filter((s) => ${CLIENT_PATH}.test(s)),
  loaded: loaded.filter((s) => ${CLIENT_PATH}.test(s)),
  resolved: import.meta.resolve('mailroom-js/kafka'),
  ...probe(mailroom, kafka),
}));
`,
    );
    // CJS: every require() goes through Module._resolveFilename, so that is where it is recorded.
    const cjs = await runScript(
      'check-kafka.cjs',
      `const Module = require('node:module');
const { createRequire } = Module;
${unresolvable}
${fake}
const asked = [];
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  asked.push(request);
  return resolveFilename.call(this, request, ...rest);
};
const mailroom = require('mailroom-js');
const afterMain = [...asked, ...Object.keys(require.cache)];
const kafka = require('mailroom-js/kafka');
const afterKafka = [...asked, ...Object.keys(require.cache)];
console.log(JSON.stringify({
  unresolvable,
  traced: asked.includes('mailroom-js/kafka'),
  mainLoadedKafkaEntry: afterMain.some((file) => file.includes('/dist/kafka/')),
  askedByMain: afterMain.filter((s) => ${CLIENT_PATH}.test(s)),
  askedByKafka: afterKafka.filter((s) => ${CLIENT_PATH}.test(s)),
  loaded: Object.keys(require.cache).filter((s) => ${CLIENT_PATH}.test(s)),
  resolved: require.resolve('mailroom-js/kafka'),
  ...probe(mailroom, kafka),
}));
`,
    );
    const dist = join(scratch, 'node_modules', 'mailroom-js', 'dist');
    expect(esm.resolved).toBe(pathToFileURL(join(dist, 'kafka', 'index.js')).href);
    expect(cjs.resolved).toBe(join(dist, 'kafka', 'index.cjs'));
    for (const out of [esm, cjs]) {
      expect(out).toMatchObject({
        unresolvable: Object.fromEntries(KAFKA_CLIENTS.map((name) => [name, true])),
        traced: true,
        mainLoadedKafkaEntry: false,
        askedByMain: [],
        askedByKafka: [],
        loaded: [],
        missing: [],
        producer: { name: 'kafka', publish: 'function', publishMany: 'function' },
        worker: {
          start: 'function',
          close: 'function',
          stats: { sent: 0, retried: 0, deadLettered: 0, duplicates: 0 },
        },
      });
    }
  });

  it('loads without @aws-sdk/client-sesv2 from ESM and CJS; sesTransport() names the package to install', {
    timeout: CHILD,
  }, async () => {
    const probe = `
function probe(mailroom) {
  try {
    mailroom.sesTransport({ region: 'eu-west-1' });
    return { built: true };
  } catch (error) {
    return { isConfigError: mailroom.isConfigError(error), option: error.option, message: error.message };
  }
}
`;
    const esm = await runScript(
      'ses-esm.mjs',
      `import * as mailroom from 'mailroom-js';\n${probe}\nconsole.log(JSON.stringify(probe(mailroom)));\n`,
    );
    const cjs = await runScript(
      'ses-cjs.cjs',
      `const mailroom = require('mailroom-js');\n${probe}\nconsole.log(JSON.stringify(probe(mailroom)));\n`,
    );
    const expected = {
      isConfigError: true,
      option: 'client',
      message:
        'client: the Amazon SES transport needs the package @aws-sdk/client-sesv2: npm install @aws-sdk/client-sesv2',
    };
    expect([esm, cjs]).toEqual([expected, expected]);
  });

  it('recognises errors across the ESM and CJS builds (dual-package hazard)', {
    timeout: CHILD,
  }, async () => {
    const out = await runScript(
      'check-dual.mjs',
      `import { createRequire } from 'node:module';
import * as esm from 'mailroom-js';
const cjs = createRequire(import.meta.url)('mailroom-js');

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

  it('has types that resolve and type-check from .mts (ESM) and .cts (CJS) under node16, mailroom-js/kafka included', {
    timeout: SLOW,
  }, async () => {
    const source = (
      start: string,
    ) => `import { defineTemplate, EmailService, isEmailError, memoryTransport, type SendResult, type TemplateData } from 'mailroom-js';
import { createTestMailer, extractLink, type Outbox } from 'mailroom-js/testing';
import { createEmailProducer, createEmailWorker, type KafkaClientLike } from 'mailroom-js/kafka';

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
// Sending by name is typed once the app declares the template (declaration merging).
declare module 'mailroom-js' {
  interface MailroomTemplates {
    invoice: TemplateData<typeof invoice>;
  }
}
service.render('invoice', { customer: 'Jane', amount: 42, payUrl: 'https://example.com/pay' });
// @ts-expect-error: a declared name checks its data: \`amount\` is a number
service.render('invoice', { customer: 'Jane', amount: '42', payUrl: 'https://example.com/pay' });
const mailer = createTestMailer();
const outbox: Outbox = mailer.outbox;
${start} mailer.service.sendVerificationEmail({ to: 'a@example.com', username: 'A', verificationUrl: 'https://example.com/v' });
const link: string = extractLink(outbox.expectSent({ to: 'a@example.com' }));
const guard: (err: unknown) => boolean = isEmailError;
// Any object shaped like a Kafka client will do; the real clients are checked in a test of their own.
const noop = async () => {};
const client: KafkaClientLike = {
  producer: () => ({ connect: noop, disconnect: noop, send: async () => [] }),
  consumer: () => ({ connect: noop, disconnect: noop, subscribe: noop, run: noop, commitOffsets: noop, pause() {}, resume() {} }),
};
const producer = createEmailProducer({ kafka: client, topic: 'notifications.email' });
const producerName: 'kafka' = producer.name;
const worker = createEmailWorker({ kafka: client, service, concurrency: 4 });
// @ts-expect-error: \`kafka\` (the client) is required
createEmailProducer({ topic: 'notifications.email' });
// @ts-expect-error: a worker needs the EmailService that sends
createEmailWorker({ kafka: client });
export { guard, link, producerName, sent, worker };
`;
    await writeFile(join(scratch, 'types-esm.mts'), source('await'));
    await writeFile(join(scratch, 'types-cjs.cts'), source('void'));
    const checked = await tsc(['types-esm.mts', 'types-cjs.cts'], scratch);
    expect(checked.code, showTsc(checked)).toBe(0);
    // Each mode read its own declarations: .d.ts for import, .d.cts for require.
    const dist = join(scratch, 'node_modules', 'mailroom-js', 'dist');
    for (const entry of ['index', 'testing/index', 'kafka/index']) {
      for (const file of [`${entry}.d.ts`, `${entry}.d.cts`]) {
        expect(checked.listed, file).toContain(join(dist, file));
      }
    }
    // mailroom-js/kafka's declarations stand alone: no Kafka client is installed, and none was read.
    expect(checked.listed.filter((file) => /kafkajs|confluentinc/.test(file))).toEqual([]);
  });

  it("accepts kafkajs's and @confluentinc/kafka-javascript's real clients, by their own declarations", {
    timeout: SLOW,
  }, async () => {
    // A project of their own inside the scratch one: 'mailroom-js' resolves from the scratch
    // node_modules above, the clients from this one, and the other tests never see them.
    const clients = join(scratch, 'kafka-clients');
    await mkdir(clients, { recursive: true });
    await writeFile(
      join(clients, 'package.json'),
      JSON.stringify({ name: 'mailroom-kafka-clients', version: '0.0.0', private: true }),
    );
    const peers = repoPackage.peerDependencies as Record<string, string>;
    // --ignore-scripts: @confluentinc/kafka-javascript's install step fetches or builds its native
    // binding (librdkafka); only its declarations are used here, and they need no binding.
    const install = await npmInstall(
      KAFKA_CLIENTS.map((name) => `${name}@${peers[name]}`),
      clients,
      ['--ignore-scripts'],
    );
    expect(install.code, `npm install of the Kafka clients failed:\n${show(install)}`).toBe(0);

    const source = `import { KafkaJS } from '@confluentinc/kafka-javascript';
import { Kafka } from 'kafkajs';
import { createEmailProducer, createEmailWorker } from 'mailroom-js/kafka';
import { EmailService, memoryTransport } from 'mailroom-js';
const service = new EmailService({ transport: memoryTransport(), from: 'a@b.example' });
createEmailProducer({ kafka: new KafkaJS.Kafka({ kafkaJS: { brokers: ['x:9092'] } }) });
createEmailWorker({ kafka: new KafkaJS.Kafka({ kafkaJS: { brokers: ['x:9092'] } }), service });
createEmailProducer({ kafka: new Kafka({ brokers: ['x:9092'] }) });
createEmailWorker({ kafka: new Kafka({ brokers: ['x:9092'] }), service });
// @ts-expect-error: a producer is not a client (kafka.producer() makes one)
createEmailProducer({ kafka: new Kafka({ brokers: ['x:9092'] }).producer() });
// @ts-expect-error: nor is a consumer
createEmailWorker({ kafka: new KafkaJS.Kafka({ kafkaJS: { brokers: ['x:9092'] } }).consumer({ kafkaJS: { groupId: 'g' } }), service });
`;
    await writeFile(join(clients, 'clients-esm.mts'), source);
    await writeFile(join(clients, 'clients-cjs.cts'), source);
    const checked = await tsc(['clients-esm.mts', 'clients-cjs.cts'], clients);
    expect(checked.code, showTsc(checked)).toBe(0);
    // tsc read the clients' own declarations (no stub, no any) and both of mailroom-js/kafka's.
    const read = (path: string) => checked.listed.some((file) => file.startsWith(path));
    expect(read(join(clients, 'node_modules', 'kafkajs', 'types')), 'kafkajs types').toBe(true);
    const confluent = join(clients, 'node_modules', '@confluentinc', 'kafka-javascript', 'types');
    expect(read(confluent), '@confluentinc/kafka-javascript types').toBe(true);
    const dist = join(scratch, 'node_modules', 'mailroom-js', 'dist');
    expect(checked.listed).toContain(join(dist, 'kafka', 'index.d.ts'));
    expect(checked.listed).toContain(join(dist, 'kafka', 'index.d.cts'));
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

    // The Kafka clients are optional peers, neither installed here: the worker says how to get one.
    const worker = await run(mailroom, ['worker', '--brokers', '127.0.0.1:9'], { cwd: scratch, env: cliEnv });
    expect(worker.code, show(worker)).toBe(1);
    expect(worker.stderr.trim()).toBe(
      'mailroom: kafkajs: mailroom worker needs the kafkajs package: npm install kafkajs (or @confluentinc/kafka-javascript)',
    );
    const confluent = await run(
      mailroom,
      ['worker', '--brokers', '127.0.0.1:9', '--kafka-client', 'confluent'],
      {
        cwd: scratch,
        env: cliEnv,
      },
    );
    expect(confluent.code, show(confluent)).toBe(1);
    expect(confluent.stderr.trim()).toBe(
      'mailroom: @confluentinc/kafka-javascript: MAILROOM_KAFKA_CLIENT=confluent needs the @confluentinc/kafka-javascript package: npm install @confluentinc/kafka-javascript',
    );
    // pg is an optional peer too: the suppression list says how to get it, and never shows the URL.
    const suppressions = await run(mailroom, ['suppressions', 'list'], {
      cwd: scratch,
      env: { ...cliEnv, MAILROOM_SUPPRESSIONS_URL: 'postgres://app:artifact-pw-3@127.0.0.1:9/app' },
    });
    expect(suppressions.code, show(suppressions)).toBe(1);
    expect(suppressions.stderr.trim()).toBe(
      'mailroom: pg: postgresSuppressionStore needs the pg package (node-postgres): npm install pg',
    );
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
          r.resolution?.fileName.replace('/node_modules/mailroom-js/', ''),
        ]),
      );
    expect(typesFor('.')).toEqual({
      node10: 'dist/index.d.cts',
      'node16-cjs': 'dist/index.d.cts',
      'node16-esm': 'dist/index.d.ts',
      bundler: 'dist/index.d.ts',
    });
    // node10 (TypeScript's `moduleResolution: node`, the default with `module: commonjs`) ignores
    // "exports"; package.json's "typesVersions" is what points it at the subpaths' declarations.
    for (const entry of ['testing', 'preview', 'kafka', 'webhooks', 'unsubscribe']) {
      expect(typesFor(`./${entry}`), entry).toEqual({
        node10: `dist/${entry}/index.d.cts`,
        'node16-cjs': `dist/${entry}/index.d.cts`,
        'node16-esm': `dist/${entry}/index.d.ts`,
        bundler: `dist/${entry}/index.d.ts`,
      });
    }
  });
});

/**
 * The ```ts blocks of README.md's `## Quick start` section, read at test time: the README is the
 * source, so an edit to it is what gets run.
 */
async function quickStartBlocks(): Promise<string[]> {
  const readme = await readFile(join(repo, 'README.md'), 'utf8');
  const section = /^## Quick start[ \t]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(readme)?.[1];
  if (section === undefined) throw new Error('README.md has no "## Quick start" section');
  return [...section.matchAll(/^```(?:ts|typescript)[ \t]*\n([\s\S]*?)^```/gm)].map((m) => m[1] ?? '');
}

/** What a reader fills in for the names the Quick start leaves to them, and nothing else. */
const READER_FILLS: Record<string, string> = {
  to: "'jane@example.com'",
  username: "'Jane'",
  verificationUrl: "'https://acme.example/verify?token=quick-start-7Qx'",
  resetUrl: "'https://acme.example/reset?token=quick-start-7Qx'",
  actionUrl: "'https://acme.example/start'",
  expiresInMinutes: '30',
};

describe("the README's Quick start", () => {
  it('runs verbatim against the installed tarball, with the sandbox, once a reader fills in its names', {
    timeout: SLOW,
  }, async () => {
    const blocks = await quickStartBlocks();
    expect(blocks.length, 'the Quick start has ```ts blocks').toBeGreaterThan(0);
    // In the scratch project, so 'mailroom-js' is the installed tarball.
    const dir = join(scratch, 'quick-start');
    await mkdir(dir, { recursive: true });
    const file = (i: number, ext: string) => `block-${i + 1}.${ext}`;

    // 1. What the blocks leave to the reader: the names tsc cannot find.
    await Promise.all(blocks.map((code, i) => writeFile(join(dir, file(i, 'mts')), code)));
    const first = await tsc(
      blocks.map((_, i) => file(i, 'mts')),
      dir,
      { skipLibCheck: true },
    );
    const missing = blocks.map(() => new Set<string>());
    const unknownName = /^(block-(\d+)\.mts)\(\d+,\d+\): error TS(?:2304|18004): [^']*'([$\w]+)'/gm;
    for (const [, , n, name] of first.stdout.matchAll(unknownName)) missing[Number(n) - 1]?.add(name!);
    const unfillable = missing.flatMap((names) => [...names].filter((name) => !(name in READER_FILLS)));
    expect(unfillable, `the Quick start uses names a reader cannot fill in:\n${showTsc(first)}`).toEqual([]);

    // 2. Filled in, each block type-checks against the installed declarations...
    const filled = blocks.map(
      (code, i) =>
        `${[...missing[i]!].map((name) => `const ${name} = ${READER_FILLS[name]};\n`).join('')}${code}`,
    );
    await Promise.all(filled.map((code, i) => writeFile(join(dir, file(i, 'mts')), code)));
    const checked = await tsc(
      filled.map((_, i) => file(i, 'mts')),
      dir,
      { skipLibCheck: true },
    );
    expect(checked.code, showTsc(checked)).toBe(0);

    // 3. ...and runs, from a folder of its own: with no configuration, mail goes to the sandbox there.
    for (const [i, code] of filled.entries()) {
      const js = ts.transpileModule(code, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      await writeFile(join(dir, file(i, 'mjs')), js);
      const cwd = join(dir, `run-${i + 1}`);
      await mkdir(cwd);
      const ran = await run(process.execPath, [join(dir, file(i, 'mjs'))], { cwd });
      expect(ran.code, `${file(i, 'mts')}:\n${code}\n${show(ran)}`).toBe(0);
      const outbox = join(cwd, '.mailroom', 'outbox');
      const captured = existsSync(outbox) ? (await readdir(outbox)).filter((f) => f.endsWith('.eml')) : [];
      // Every awaited send in the block was captured.
      const sends = code.match(/\bawait\s+[\w.]*\bsend\w*\(/g)?.length ?? 0;
      expect(captured.length, `emails captured by ${file(i, 'mts')}`).toBeGreaterThanOrEqual(
        Math.max(1, sends),
      );
      for (const eml of captured) {
        expect(await readFile(join(outbox, eml), 'utf8')).toMatch(/^To: jane@example\.com\r?$/m);
      }
    }
  });
});
