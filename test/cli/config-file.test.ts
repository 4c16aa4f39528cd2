/**
 * The `mailroom` command loads the app's own `mailroom.config.ts`: a template defined in
 * TypeScript (importing the app's own module) is seen by templates, render, send, preview and
 * worker. The app is a temp folder whose node_modules/mailroom-js is this package, as built.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailProducer } from '../../src/kafka/index.js';
import { BUILTIN_NAMES } from '../helpers/builtins.js';
import { type KafkaCluster, startKafkaCluster } from '../helpers/kafka-cluster.js';
import { startSmtpPeer } from '../helpers/smtp-peer.js';
import { freshTopics, kafkaClient, waitFor } from '../kafka/harness.js';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));
let app: string;

/** The app's config: an `invoice` template in TypeScript using the app's own helper, and a folder of templates. */
const CONFIG = `import { defineConfig, defineTemplate } from 'mailroom-js';
import { formatCents } from './src/money';

export const invoice = defineTemplate({
  name: 'invoice',
  fields: { number: 'string', totalCents: 'number' },
  subject: 'Invoice <%= it.number %>',
  html: '<p>Invoice <strong><%= it.number %></strong> for ' + formatCents(1999) + ' is ready (<%= it.totalCents %> cents).</p>',
  preview: { default: { number: 'A-0', totalCents: 100 } },
});

export default defineConfig({ templates: [invoice], templatesDir: './emails' });
`;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  app = await mkdtemp(join(tmpdir(), 'mailroom-config-app-'));
  await mkdir(join(app, 'node_modules'), { recursive: true });
  await symlink(repo, join(app, 'node_modules', 'mailroom-js'), 'dir');
  await mkdir(join(app, 'src'));
  await writeFile(
    join(app, 'src', 'money.ts'),
    "export function formatCents(cents: number): string {\n  return 'EUR ' + (cents / 100).toFixed(2);\n}\n",
  );
  await writeFile(join(app, 'mailroom.config.ts'), CONFIG);
  const receipt = join(app, 'emails', 'receipt');
  await mkdir(receipt, { recursive: true });
  await writeFile(join(receipt, 'subject.eta'), 'Receipt <%= it.number %>');
  await writeFile(join(receipt, 'html.eta'), '<p>Receipt <%= it.number %></p>');
  await writeFile(join(receipt, 'template.json'), JSON.stringify({ fields: { number: 'string' } }));
  await mkdir(join(app, 'nested', 'deeper'), { recursive: true });
});
/** Servers started by a test, stopped even when it times out. */
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(app, { recursive: true, force: true });
});

/** This process's environment without any mailroom setting, plus these. */
function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|KAFKA_|NODE_ENV$|DKIM_)/.test(k),
    ),
  );
  return { ...env, APP_NAME: 'Acme', MAILROOM_SANDBOX_DIR: join(app, 'outbox'), ...extra };
}

/** Runs the CLI without blocking this process (a server in it can answer), in `cwd` (default: the app). */
async function run(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
      cwd: options.cwd ?? app,
      env: envWith(options.env),
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Writes a config file into the app (besides mailroom.config.ts) and returns its name. */
async function configFile(name: string, source: string): Promise<string> {
  await writeFile(join(app, name), source);
  return name;
}

const invoiceData = JSON.stringify({ number: 'A-1', totalCents: 1999 });

describe('mailroom.config.ts in the working directory', () => {
  it('templates lists the TypeScript template and the config folder’s beside the built-ins', async () => {
    const { code, stdout, stderr } = await run(['templates']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toEqual([...BUILTIN_NAMES, 'invoice', 'receipt'].sort());
  });

  it('render renders it, with the helper the config imported', async () => {
    const { code, stdout, stderr } = await run([
      'render',
      'invoice',
      '--data',
      invoiceData,
      '--format',
      'json',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const rendered = JSON.parse(stdout) as { subject: string; html: string };
    expect(rendered.subject).toBe('Invoice A-1');
    expect(rendered.html).toContain('Invoice <strong>A-1</strong> for EUR 19.99 is ready (1999 cents).');
  });

  it('render checks the TypeScript template’s own fields', async () => {
    const { code, stderr } = await run(['render', 'invoice', '--data', '{"number":"A-1"}']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^mailroom: .*invoice.*totalCents/);
  });

  it('send sends it through the sandbox named by MAILROOM_TRANSPORT', async () => {
    const outbox = join(app, 'send-outbox');
    const { code, stdout } = await run(
      ['send', 'invoice', '--to', 'jane@example.com', '--data', invoiceData],
      {
        env: { MAILROOM_TRANSPORT: 'sandbox', MAILROOM_SANDBOX_DIR: outbox },
      },
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Captured "invoice" for jane@example\.com/);
    const eml = (await readdir(outbox)).find((f) => f.endsWith('.eml'));
    const raw = await readFile(join(outbox, eml ?? ''), 'utf8');
    expect(raw).toContain('Subject: Invoice A-1');
    expect(raw).toContain('EUR 19.99');
  });

  it('preview serves a page that lists and renders it', async () => {
    const child = spawn(process.execPath, [cli, 'preview', '--port', '0'], {
      cwd: app,
      env: envWith({ NODE_ENV: 'development' }),
    });
    children.add(child);
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let stdout = '';
        child.stdout.on('data', (chunk) => {
          stdout += chunk;
          const found = /http:\/\/\S+\//.exec(stdout);
          if (found) resolve(found[0]);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      const list = (await (await fetch(`${url}api/templates`)).json()) as {
        templates: { name: string; sets: string[] }[];
      };
      expect(list.templates.map((t) => t.name)).toEqual(
        expect.arrayContaining(['invoice', 'receipt', 'verification']),
      );
      expect(list.templates.find((t) => t.name === 'invoice')?.sets).toContain('default');
      const view = (await (await fetch(`${url}api/templates/invoice/default`)).json()) as {
        subject?: string;
        html?: string;
      };
      expect(view.subject).toBe('Invoice A-0');
      expect(view.html).toContain('for EUR 19.99 is ready (100 cents)');
      // The config's folder is reloaded live: an edit and a new template show without a restart.
      await writeFile(join(app, 'emails', 'receipt', 'subject.eta'), 'Your receipt <%= it.number %>');
      await mkdir(join(app, 'emails', 'refund'));
      await writeFile(join(app, 'emails', 'refund', 'subject.eta'), 'Refund');
      await writeFile(join(app, 'emails', 'refund', 'html.eta'), '<p>Refunded</p>');
      let seen: { subject?: string; names: string[] } = { names: [] };
      await waitFor(
        () => seen.subject?.startsWith('Your receipt') === true && seen.names.includes('refund'),
        'the edited and the new template on the page',
        15_000,
        async () => {
          const names = (
            (await (await fetch(`${url}api/templates`)).json()) as { templates: { name: string }[] }
          ).templates;
          const receipt = (await (await fetch(`${url}api/templates/receipt/generated`)).json()) as {
            subject?: string;
          };
          seen = { subject: receipt.subject, names: names.map((t) => t.name) };
        },
      );
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(stderr).toBe('');
  }, 30_000);
});

describe('--config FILE', () => {
  it('is relative to the working directory; the config’s templatesDir to its own folder', async () => {
    const { code, stdout, stderr } = await run(['templates', '--config', '../../mailroom.config.ts'], {
      cwd: join(app, 'nested', 'deeper'),
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.split('\n')).toEqual(expect.arrayContaining(['invoice', 'receipt']));
  });

  it('is not looked for above the working directory: without one, only the built-ins', async () => {
    const { stdout } = await run(['templates'], { cwd: join(app, 'nested') });
    expect(stdout.trim().split('\n')).toEqual(BUILTIN_NAMES);
  });

  it('names a missing file', async () => {
    const { code, stderr } = await run(['templates', '--config', 'nope.config.ts']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^mailroom: --config: .*nope\.config\.ts does not exist\n$/);
  });

  it('--templates adds to the config’s templates; the same name in both is an error naming both', async () => {
    const extra = join(app, 'more-emails', 'invoice');
    await mkdir(extra, { recursive: true });
    await writeFile(join(extra, 'subject.eta'), 'Other invoice');
    await writeFile(join(extra, 'html.eta'), '<p>Other</p>');
    const { code, stderr } = await run(['templates', '--templates', './more-emails']);
    expect(code).toBe(1);
    expect(stderr).toBe(
      'mailroom: --templates ./more-emails: defines "invoice", as does mailroom.config.ts: templates: rename one of them\n',
    );
  });
});

describe('a broken config file: one line naming the file (and the field), exit 1', () => {
  it.each([
    [
      'a syntax error',
      'export default {',
      /^mailroom: broken\.config\.ts: cannot be loaded: .*broken\.config\.ts/,
    ],
    [
      'a throw',
      "throw new Error('no secrets here');",
      /^mailroom: broken\.config\.ts: cannot be loaded: no secrets here$/,
    ],
    [
      'no default export',
      'export const config = {};',
      /^mailroom: broken\.config\.ts: has no default export/,
    ],
    [
      'templates: "x"',
      "import { defineConfig } from 'mailroom-js';\nexport default defineConfig({ templates: 'x' as never });",
      /^mailroom: broken\.config\.ts: templates: must be an array of defineTemplate\(\) handles$/,
    ],
    [
      'a misspelt field',
      'export default { templtes: [] };',
      /^mailroom: broken\.config\.ts: templtes: is not a config field; did you mean templates\?$/,
    ],
    ['a bad sender', "export default { from: 'not an address' };", /^mailroom: broken\.config\.ts: from: /],
    [
      'a Kafka client it does not know',
      "export default { worker: { client: 'node-rdkafka' } };",
      /^mailroom: broken\.config\.ts: worker\.client: must be 'kafkajs' or 'confluent'/,
    ],
    [
      'a broker that is not host:port',
      "export default { worker: { brokers: ['kafka-1:9092', 'kafka-2'] } };",
      /^mailroom: broken\.config\.ts: worker\.brokers\[1\]: "kafka-2" is not host:port \(no port: kafka-2:9092, say\)$/,
    ],
    [
      'a broker list with a trailing comma',
      "export default { worker: { brokers: 'kafka-1:9092,' } };",
      /^mailroom: broken\.config\.ts: worker\.brokers: "kafka-1:9092," has an empty entry \(a trailing comma\)/,
    ],
    [
      'a blank topic, which would read as the default',
      "export default { worker: { topic: '  ' } };",
      /^mailroom: broken\.config\.ts: worker\.topic: must be a non-empty string$/,
    ],
    [
      'delay topics that are not a boolean',
      "export default { worker: { delayTopics: 'yes' } };",
      /^mailroom: broken\.config\.ts: worker\.delayTopics: must be true or false$/,
    ],
  ])('%s', async (_, source, message) => {
    const file = await configFile('broken.config.ts', source);
    const { code, stdout, stderr } = await run(['render', 'welcome', '--config', file]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr.trimEnd()).toMatch(message);
  });
});

describe('where mail goes with a transport in the config', () => {
  const smtpConfig = (port: number) => `import { defineConfig, smtpTransport } from 'mailroom-js';
import base from './mailroom.config';

export default defineConfig({
  ...base,
  from: 'Acme Billing <billing@acme.example>',
  transport: smtpTransport({ host: '127.0.0.1', port: ${port}, tls: 'none' }),
});
`;

  it('is used: send delivers to the SMTP server it names, not the sandbox', async () => {
    const peer = await startSmtpPeer({ starttls: false });
    try {
      const file = await configFile('smtp.config.ts', smtpConfig(peer.port));
      const outbox = join(app, 'smtp-outbox');
      const { code, stdout, stderr } = await run(
        ['send', 'invoice', '--config', file, '--to', 'jane@example.com', '--data', invoiceData],
        { env: { MAILROOM_SANDBOX_DIR: outbox } },
      );
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Sent "invoice" to jane@example\.com via smtp/);
      expect(peer.messages).toHaveLength(1);
      const raw = peer.messages[0]!.raw.toString();
      expect(raw).toContain('Subject: Invoice A-1');
      expect(raw).toContain('From: Acme Billing <billing@acme.example>');
      expect(existsSync(outbox)).toBe(false);
    } finally {
      await peer.close();
    }
  });

  it('is wrapped by the staging variables: a recipient off the allowlist gets nothing', async () => {
    const peer = await startSmtpPeer({ starttls: false });
    try {
      const file = await configFile('smtp.config.ts', smtpConfig(peer.port));
      const { code, stderr } = await run(
        ['send', 'invoice', '--config', file, '--to', 'jane@example.com', '--data', invoiceData],
        { env: { MAILROOM_STAGING_ALLOW: '@acme.example' } },
      );
      expect(code).toBe(1);
      expect(stderr).toMatch(/^mailroom: .*no recipient is on the allowlist/);
      expect(peer.messages).toHaveLength(0);
    } finally {
      await peer.close();
    }
  });

  it('MAILROOM_TRANSPORT naming another transport is an error, not a silent choice', async () => {
    const file = await configFile('smtp.config.ts', smtpConfig(1));
    const { code, stderr } = await run(
      ['send', 'invoice', '--config', file, '--to', 'j@example.com', '--data', invoiceData],
      {
        env: { MAILROOM_TRANSPORT: 'sandbox' },
      },
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^mailroom: MAILROOM_TRANSPORT: is sandbox, but smtp\.config\.ts sets transport \(smtp\)/,
    );
  });

  it('needs a sender when it delivers', async () => {
    const file = await configFile(
      'nosender.config.ts',
      "import { smtpTransport } from 'mailroom-js';\nexport default { transport: smtpTransport({ host: '127.0.0.1', port: 1, tls: 'none' }) };",
    );
    const { code, stderr } = await run(['render', 'welcome', '--config', file, '--data', '{"username":"J"}']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^mailroom: nosender\.config\.ts: from: is required/);
  });

  it('a sandbox in the config is refused under production unless MAILROOM_TRANSPORT names it', async () => {
    const file = await configFile(
      'sandbox.config.ts',
      "import { sandboxTransport } from 'mailroom-js';\nexport default { transport: sandboxTransport() };",
    );
    const args = ['send', 'welcome', '--config', file, '--to', 'j@example.com', '--data', '{"username":"J"}'];
    const refused = await run(args, { env: { NODE_ENV: 'production' } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^mailroom: MAILROOM_TRANSPORT: is required under NODE_ENV=production: sandbox\.config\.ts sets transport sandbox/,
    );
    const beside = await run(args, {
      env: { NODE_ENV: 'production', MAILROOM_TRANSPORT: 'sandbox', SMTP_HOST: 'smtp.acme.example' },
    });
    expect(beside.stderr).toMatch(/^mailroom: MAILROOM_TRANSPORT: is sandbox, but SMTP_HOST is set/);
    const named = await run(args, { env: { NODE_ENV: 'production', MAILROOM_TRANSPORT: 'sandbox' } });
    expect(named.code).toBe(0);
    expect(named.stdout).toMatch(/^Captured "welcome"/);
  });
});

describe('precedence: flags, then the config file, then the environment', () => {
  it('the config’s app name and colour win over APP_NAME and MAILROOM_PRIMARY_COLOR; the rest of the environment stays', async () => {
    const file = await configFile(
      'brand.config.ts',
      "import { defineConfig } from 'mailroom-js';\nexport default defineConfig({ appName: 'Acme Config', brand: { colors: { primary: '#FF5A00' } } });",
    );
    const data = JSON.stringify({ username: 'Jane', verificationUrl: 'https://acme.example/v/1' });
    const env = {
      APP_NAME: 'Acme Env',
      MAILROOM_PRIMARY_COLOR: '#111111',
      MAILROOM_LOGO_URL: 'https://env.acme.example/logo.png',
    };
    const { code, stdout } = await run(['render', 'verification', '--config', file, '--data', data], { env });
    expect(code).toBe(0);
    const rendered = JSON.parse(stdout) as { subject: string; html: string };
    expect(rendered.subject).toBe('Verify your email address for Acme Config');
    expect(rendered.html).toMatch(/#FF5A00/i);
    expect(rendered.html).not.toMatch(/#111111/);
    expect(rendered.html).toContain('src="https://env.acme.example/logo.png"');
    // A config that sets no app name: the environment’s.
    const plain = await run(['render', 'verification', '--config', 'mailroom.config.ts', '--data', data], {
      env,
    });
    expect(JSON.parse(plain.stdout).subject).toBe('Verify your email address for Acme Env');
  });
});

describe('mailroom worker with the config file', () => {
  let cluster: KafkaCluster;
  beforeAll(async () => {
    cluster = await startKafkaCluster();
  });
  afterAll(() => cluster?.stop());

  it('consumes an envelope for the TypeScript template and sends it; brokers from the config, the topic from the flag', async () => {
    const topics = await freshTopics(cluster);
    const file = await configFile(
      'worker.config.ts',
      `import { defineConfig } from 'mailroom-js';
import base from './mailroom.config';
export default defineConfig({
  ...base,
  worker: { brokers: ${JSON.stringify(cluster.brokers)}, topic: 'not-this-topic', group: '${topics.groupId}' },
});
`,
    );
    const producer = createEmailProducer({ kafka: kafkaClient(cluster), topic: topics.topic });
    await producer.publish({
      template: 'invoice',
      data: { number: 'K-7', totalCents: 700 },
      to: 'jane@example.com',
    });
    await producer.disconnect();
    const outbox = join(app, 'worker-outbox');
    const worker: ChildProcess = spawn(
      process.execPath,
      [cli, 'worker', '--config', file, '--topic', topics.topic],
      {
        cwd: app,
        // The environment's brokers lose to the config's.
        env: envWith({
          MAILROOM_TRANSPORT: 'sandbox',
          MAILROOM_SANDBOX_DIR: outbox,
          KAFKA_BROKERS: '127.0.0.1:1',
        }),
      },
    );
    children.add(worker);
    let stdout = '';
    worker.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    const exited = new Promise<number | null>((resolve) => worker.once('exit', resolve));
    try {
      const emls = () => (existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith('.eml')) : []);
      await waitFor(() => emls().length >= 1, 'the invoice in the sandbox');
      expect(stdout).toContain(`consuming ${topics.topic} as group ${topics.groupId}`);
      const raw = await readFile(join(outbox, emls()[0]!), 'utf8');
      expect(raw).toContain('Subject: Invoice K-7');
      expect(raw).toContain('EUR 19.99');
      worker.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      worker.kill('SIGKILL');
    }
  });

  it('refuses a capturing transport from the config unless MAILROOM_TRANSPORT=sandbox names it', async () => {
    const file = await configFile(
      'worker-sandbox.config.ts',
      `import { sandboxTransport } from 'mailroom-js';\nexport default { transport: sandboxTransport(), worker: { brokers: ${JSON.stringify(cluster.brokers)} } };`,
    );
    const { code, stderr } = await run(['worker', '--config', file]);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^mailroom: MAILROOM_TRANSPORT: is required for the worker when worker-sandbox\.config\.ts sets transport sandbox and it only captures mail/,
    );
  });
});

describe('a transport from the config that keeps some mail', () => {
  it('mailroom worker refuses a failover to memory: the mail memory took would be committed and gone', async () => {
    const file = await configFile(
      'worker-failover.config.ts',
      `import { failoverTransport, memoryTransport, smtpTransport } from 'mailroom-js';\nexport default { appName: 'Acme', from: 'no-reply@acme.example', transport: failoverTransport([smtpTransport({ host: '127.0.0.1', port: 9, tls: 'none' }), memoryTransport()]), worker: { brokers: ['127.0.0.1:9'] } };`,
    );
    const { code, stderr } = await run(['worker', '--config', file]);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^mailroom: MAILROOM_TRANSPORT: is required for the worker when worker-failover\.config\.ts sets transport failover and it keeps some mail \(a capturing transport is behind it\)/,
    );
  });
});

describe('a hold from the config', () => {
  it('mailroom release refuses a hold that releases into memory: "released" would reach nobody', async () => {
    const file = await configFile(
      'hold-memory.config.ts',
      `import { holdTransport, memoryTransport } from 'mailroom-js';\nexport default { appName: 'Acme', transport: holdTransport({ transport: memoryTransport(), onFirstWrite: false }) };`,
    );
    const { code, stderr } = await run(['release', '--all', '--config', file]);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^mailroom: transport: the hold releases through memory, which keeps mail instead of delivering it/,
    );
  });
});

describe('--help', () => {
  it.each(['templates', 'render', 'send', 'preview', 'check', 'release', 'discard', 'worker'])(
    'of %s names --config and where it is looked for',
    async (command) => {
      const { stdout } = await run([command, '--help']);
      expect(stdout).toContain('--config FILE');
      // In the synopsis as well as among the flags.
      expect(stdout.split('\n')[0]).toMatch(/ \[--config FILE\]$/);
      expect(stdout).toContain('mailroom.config.ts, .mts, .cts, .js,\n                    .mjs, .cjs');
      expect(stdout).toContain('Flags override it; it overrides the environment');
    },
  );
});
