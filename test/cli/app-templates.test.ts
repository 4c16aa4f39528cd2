/**
 * Every command sees the app's own templates: `--templates ./emails`, relative to the working
 * directory as a user types it. Also each command's own --help, and a busy preview port.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
let app: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  // An app folder with its templates in ./emails, as the README lays them out.
  app = await mkdtemp(join(tmpdir(), 'mailroom-app-'));
  const invoice = join(app, 'emails', 'invoice');
  await mkdir(invoice, { recursive: true });
  await writeFile(join(invoice, 'subject.eta'), 'Invoice <%= it.number %>');
  await writeFile(join(invoice, 'html.eta'), '<p>Invoice <strong><%= it.number %></strong> is ready.</p>');
  await writeFile(join(invoice, 'template.json'), JSON.stringify({ fields: { number: 'string' } }));
});
afterAll(() => rm(app, { recursive: true, force: true }));

/** Runs the CLI in the app's folder with no mailroom configuration but a sandbox folder there. */
function run(...args: string[]) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|KAFKA_)/.test(k)),
  );
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd: app,
    env: { ...env, APP_NAME: 'Acme' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('--templates ./emails, relative to the working directory', () => {
  it('templates lists the app’s template beside the built-in ones', () => {
    const { code, stdout, stderr } = run('templates', '--templates', './emails');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.split('\n')).toEqual(expect.arrayContaining(['invoice', 'verification']));
  });

  it('render renders it', () => {
    const { code, stdout } = run(
      'render',
      'invoice',
      '--templates',
      'emails',
      '--data',
      '{"number":"A-1"}',
      '--format',
      'html',
    );
    expect(code).toBe(0);
    expect(stdout).toContain('Invoice <strong>A-1</strong> is ready.');
  });

  it('send sends it', async () => {
    const { code, stdout } = run(
      'send',
      'invoice',
      '--templates',
      './emails',
      '--to',
      'jane@example.com',
      '--data',
      '{"number":"A-2"}',
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Captured "invoice" for jane@example\.com/);
    const outbox = join(app, '.mailroom', 'outbox');
    const eml = (await readdir(outbox)).find((f) => f.endsWith('.eml'));
    expect(await readFile(join(outbox, eml ?? ''), 'utf8')).toContain('Subject: Invoice A-2');
  });

  it('worker loads it (and only then fails, on the unreachable broker)', () => {
    const r = spawnSync(
      process.execPath,
      [cli, 'worker', '--templates', './emails', '--brokers', '127.0.0.1:1'],
      {
        cwd: app,
        env: {
          ...Object.fromEntries(
            Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|KAFKA_)/.test(k)),
          ),
          APP_NAME: 'Acme',
          MAILROOM_TRANSPORT: 'sandbox',
        },
        encoding: 'utf8',
        timeout: 90_000,
      },
    );
    expect(r.stderr).not.toContain('--templates');
    expect(r.stderr).toMatch(/--brokers: could not reach the Kafka brokers 127\.0\.0\.1:1/);
    expect(r.status).toBe(1);
  });

  it('a broken template stops the command at once, naming the file', async () => {
    const broken = join(app, 'broken-emails', 'oops');
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'subject.eta'), 'Hi');
    await writeFile(join(broken, 'html.eta'), '<p><%= it.x </p>');
    await writeFile(join(broken, 'template.json'), JSON.stringify({ fields: { x: 'string' } }));
    const { code, stderr } = run('templates', '--templates', './broken-emails');
    expect(code).toBe(1);
    expect(stderr).toMatch(/oops/);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('mailroom <command> --help', () => {
  it.each(['templates', 'render', 'send', 'preview', 'worker'])(
    'describes %s: usage, defaults, an example',
    (command) => {
      const { code, stdout } = run(command, '--help');
      expect(code).toBe(0);
      expect(stdout.startsWith(`mailroom ${command}`)).toBe(true);
      expect(stdout).toMatch(/\nExample:\n {2}.*mailroom /);
    },
  );

  it('mailroom help send is the same page', () => {
    expect(run('help', 'send').stdout).toBe(run('send', '--help').stdout);
  });
});

describe('mailroom preview on a busy port', () => {
  let busy: Server;
  beforeAll(async () => {
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

  it('says to pass --port, in one line', () => {
    const port = String((busy.address() as { port: number }).port);
    const { code, stderr } = run('preview', '--port', port);
    expect(code).toBe(2);
    expect(stderr).toMatch(
      new RegExp(`^mailroom: port ${port} on 127\\.0\\.0\\.1 is already in use: pass --port`),
    );
  });

  it('says a --host that is not this machine’s is not, in one line', () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it, so the bind fails and nothing is sent.
    const { code, stderr } = run('preview', '--port', '0', '--host', '192.0.2.1');
    expect(code).toBe(2);
    expect(stderr.split('\n')[0]).toBe(
      'mailroom: --host 192.0.2.1 is not an address of this machine: pass another --host (127.0.0.1 is this machine)',
    );
  });

  it('says a --host that names no host is not found, in one line, not as an unexpected error', () => {
    // .invalid never resolves (RFC 6761).
    const { code, stderr } = run('preview', '--port', '0', '--host', 'no-such-host.invalid');
    expect(code).toBe(2);
    expect(stderr.split('\n')[0]).toMatch(
      /^mailroom: --host no-such-host\.invalid names no host this machine can find.*: pass another --host/,
    );
  });
});
