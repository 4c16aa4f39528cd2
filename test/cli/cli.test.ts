import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_FLAGS, COMMAND_HELP } from '../../src/cli/help.js';
import { BUILTIN_NAMES } from '../helpers/builtins.js';
import { startSmtpPeer } from '../helpers/smtp-peer.js';

// The CLI is tested as built (`npm test` builds first), the way a user runs it.
const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
let outbox: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  outbox = await mkdtemp(join(tmpdir(), 'mailroom-cli-'));
});
afterAll(() => rm(outbox, { recursive: true, force: true }));

/** This process's environment without any mailroom setting, plus the sandbox folder and these. */
function envWith(extra: Record<string, string> = {}) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|NODE_EXTRA_CA_CERTS)/.test(k),
    ),
  );
  return { ...env, MAILROOM_SANDBOX_DIR: outbox, APP_NAME: 'Acme', ...extra };
}

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { env: envWith(), encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI without blocking this process, so a server in it can answer. */
async function runAsync(env: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
      env: envWith(env),
      encoding: 'utf8',
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const data = JSON.stringify({ username: 'Jane', verificationUrl: 'https://acme.example/verify?token=abc' });

describe('mailroom render', () => {
  it('prints subject, html and text as JSON', () => {
    const { code, stdout } = run('render', 'verification', '--data', data);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.subject).toBe('Verify your email address for Acme');
    expect(out.html).toContain('href="https://acme.example/verify?token=abc"');
    expect(out.text).toContain('https://acme.example/verify?token=abc');
  });

  it.each([
    ['html', /^<!DOCTYPE html>/],
    ['text', /^Acme\n\nConfirm your email address\n\nHi Jane,/],
  ])('prints only the %s with --format', (format, pattern) => {
    const { code, stdout } = run('render', 'verification', '--data', data, '--format', format);
    expect(code).toBe(0);
    expect(stdout).toMatch(pattern);
  });

  it('lists the templates', () => {
    expect(run('templates').stdout.trim().split('\n')).toEqual(BUILTIN_NAMES);
  });
});

describe('mailroom send', () => {
  const welcome = '{"username":"Jane"}';
  /** The To header of the .eml the sandbox wrote, from the command's output. */
  const toHeader = async (stdout: string) => {
    const eml = stdout.match(/eml\s+(\S+\.eml)/)?.[1] ?? '';
    expect(eml.startsWith(outbox)).toBe(true);
    return (await readFile(eml, 'utf8')).match(/^To: (.*)\r$/m)?.[1];
  };

  it('captures through the sandbox by default, says it was not delivered and where the files went', async () => {
    const { code, stdout } = run('send', 'welcome', '--to', 'jane@example.com', '--data', welcome);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      new RegExp(
        `^Captured "welcome" for jane@example.com, not delivered: kept in the sandbox folder ${outbox} \\(<.+>\\)\n`,
      ),
    );
    expect(stdout).not.toMatch(/Sent|via/);
    const eml = stdout.match(/eml\s+(\S+\.eml)/)?.[1] ?? '';
    expect(eml.startsWith(outbox)).toBe(true);
    expect(await readFile(eml, 'utf8')).toMatch(/^Subject: Welcome to Acme, Jane!/m);
  });

  it('sends as the --category given, the template’s otherwise, and refuses an unknown one naming it', async () => {
    const summary = async (stdout: string) =>
      JSON.parse(await readFile(stdout.match(/json\s+(\S+\.json)/)?.[1] ?? '', 'utf8')) as {
        category: string;
      };
    const plain = run('send', 'welcome', '--to', 'jane@example.com', '--data', welcome);
    expect((await summary(plain.stdout)).category).toBe('transactional');
    const product = run(
      'send',
      'welcome',
      '--to',
      'jane@example.com',
      '--data',
      welcome,
      '--category',
      'product',
    );
    expect(product.code).toBe(0);
    expect((await summary(product.stdout)).category).toBe('product');
    const bad = run('send', 'welcome', '--to', 'jane@example.com', '--data', welcome, '--category', 'urgent');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /^mailroom: category: must be one of security, transactional, product, marketing/,
    );
  });

  it('says a memory capture is not delivered and gone when the command exits', () => {
    const r = spawnSync(
      process.execPath,
      [cli, 'send', 'welcome', '--to', 'jane@example.com', '--data', welcome],
      {
        env: envWith({ MAILROOM_TRANSPORT: 'memory' }),
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /^Captured "welcome" for jane@example.com, not delivered: kept in memory, gone when this command exits \(<.+>\)\n$/,
    );
  });

  it('sends to every --to when it is given twice', async () => {
    const { code, stdout } = run(
      'send',
      'welcome',
      '--to',
      'a@example.com',
      '--to',
      'b@example.com',
      '--data',
      welcome,
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Captured "welcome" for a@example.com, b@example.com, not delivered/);
    expect(await toHeader(stdout)).toBe('a@example.com, b@example.com');
  });

  it('sends to every address of a comma-separated --to, a comma in a quoted name included', async () => {
    const { code, stdout } = run(
      'send',
      'welcome',
      '--to',
      'a@example.com, "Doe, Jane" <jane@example.com>',
      '--to',
      'c@example.com',
      '--data',
      welcome,
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^Captured "welcome" for a@example.com, jane@example.com, c@example.com, not delivered/,
    );
    expect(await toHeader(stdout)).toBe('a@example.com, "Doe, Jane" <jane@example.com>, c@example.com');
  });

  it('delivers to those a server accepts, then fails naming each recipient it refused, with its reply', async () => {
    const peer = await startSmtpPeer();
    const ca = join(outbox, 'ca.pem');
    await writeFile(ca, peer.cert);
    try {
      peer.rejectRecipient('b@example.com', 550, Number.POSITIVE_INFINITY, 'No such user');
      const env = {
        MAILROOM_TRANSPORT: 'smtp',
        SMTP_HOST: peer.host,
        SMTP_PORT: String(peer.port),
        SMTP_FROM_EMAIL: 'no-reply@acme.example',
        NODE_EXTRA_CA_CERTS: ca,
      };
      const { code, stdout, stderr } = await runAsync(
        env,
        'send',
        'welcome',
        '--to',
        'a@example.com,b@example.com',
        '--data',
        welcome,
      );
      expect(code).toBe(1);
      expect(stdout).toMatch(/^Sent "welcome" to a@example.com via smtp \(<.+>\)\n$/);
      expect(stderr).toBe('mailroom: not sent to b@example.com (refused: 550 No such user)\n');
      expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([['a@example.com']]);
    } finally {
      await peer.close();
      await rm(ca);
    }
  });
});

describe('bad arguments', () => {
  it.each([
    [['frob'], 2, /unknown command "frob"\nRun 'mailroom --help' for usage\.\n$/],
    [[], 2, /no command given/],
    [['render'], 2, /needs a template name/],
    [['render', 'verification', '--data', '{nope'], 2, /--data is not valid JSON/],
    [['render', 'verification', '--data', '[1]'], 2, /--data must be a JSON object/],
    [['render', 'verification', '--format', 'pdf'], 2, /--format must be json, html or text/],
    [['render', 'verification', '--bogus'], 2, /Unknown option '--bogus'/],
    [
      ['render', 'verification', '--formt', 'text'],
      2,
      /^mailroom: Unknown option '--formt'; did you mean --format\?\nRun 'mailroom render --help' for usage\.\n$/,
    ],
    [['render', '../../etc/passwd'], 1, /not a valid template name/],
    [['render', 'nope'], 1, /no template of that name/],
    [['render', 'verification', '--data', '{"username":"J"}'], 1, /verificationUrl: is required/],
    [['send', 'verification', '--data', data], 2, /needs --to/],
    [
      ['send', 'verification', '--to', 'x@y', '--data', data],
      1,
      /^mailroom: --to "x@y": "y" is not a valid domain/,
    ],
    [
      ['send', 'verification', '--to', 'a@example.com', '--to', 'b@@example.com', '--data', data],
      1,
      /^mailroom: --to "b@@example.com": /,
    ],
    [['send', 'verification', '--to', 'a@example.com,x@y', '--data', data], 1, /^mailroom: --to "x@y": /],
    [
      ['send', 'verification', '--to', 'a@example.com,', '--data', data],
      2,
      /--to has an empty address in "a@example.com,"/,
    ],
    [
      ['send', 'verification', '--to', 'a@example.com,,b@example.com', '--data', data],
      2,
      /--to has an empty address/,
    ],
    [
      ['send', 'verification', '--to', '"Doe, Jane <jane@example.com>, b@example.com', '--data', data],
      2,
      /--to has a quote that is not closed in "\\"Doe, Jane <jane@example.com>, b@example.com"/,
    ],
    [
      [
        'send',
        'verification',
        '--to',
        'a@example.com',
        '--data',
        '{"username":"J","verificationUrl":"javascript:alert(1)"}',
      ],
      1,
      /must be an http\(s\) URL/,
    ],
  ])('%j: one line on stderr, exit %i, no stack trace', async (args, status, pattern) => {
    const before = await readdir(outbox);
    const { code, stderr, stdout } = run(...(args as string[]));
    expect(code).toBe(status);
    expect(stdout).toBe('');
    expect(stderr.split('\n')[0]).toMatch(/^mailroom: /);
    expect(stderr).toMatch(pattern);
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(await readdir(outbox)).toEqual(before);
  });

  it('prints its version and help', () => {
    expect(run('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(run('--help').stdout).toContain('mailroom render <template>');
  });

  it("lists in --help every flag each command's own help page names", () => {
    const overview = run('--help').stdout;
    for (const command of [
      'render',
      'send',
      'templates',
      'preview',
      'check',
      'release',
      'discard',
      'suppressions',
      'worker',
    ]) {
      const page = run(command, '--help').stdout;
      const flags = new Set(page.match(/^ {2,4}--[a-z-]+/gm)?.map((flag) => flag.trim()));
      expect(flags.size, command).toBeGreaterThan(0);
      for (const flag of flags) {
        if (flag === '--config' || flag === '--help') continue;
        expect(overview.includes(flag) || `${flag} (${command})`).toBe(true);
      }
    }
  });

  it("matches a misspelt flag against the command's own flags, which are its help page's", () => {
    for (const [command, flags] of Object.entries(COMMAND_FLAGS)) {
      const page = run(command, '--help').stdout;
      const listed = page.match(/^ {2,4}--[a-z-]+/gm)?.map((flag) => flag.trim().slice(2));
      expect(new Set(flags), command).toEqual(new Set(listed));
    }
    expect(Object.keys(COMMAND_FLAGS).sort()).toEqual(Object.keys(COMMAND_HELP).sort());
  });

  it('names a missing --templates folder once, with no empty part before it', () => {
    const { code, stderr } = run('templates', '--templates', './no-such-folder');
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/^mailroom: --templates: the templates folder .*no-such-folder does not exist\n$/);
  });
});
