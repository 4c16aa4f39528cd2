/** `mailroom preview` as built: starts on loopback, prints its URL, serves, and stops cleanly on SIGTERM. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_NAMES } from '../helpers/builtins.js';
import { getWithHost } from '../helpers/http.js';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
let dir: string;
beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  dir = await mkdtemp(join(tmpdir(), 'mailroom-preview-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function start(...args: string[]) {
  return startIn(dir, {}, ...args);
}

function startIn(cwd: string, env: Record<string, string>, ...args: string[]) {
  const child = spawn(process.execPath, [cli, 'preview', ...args], {
    cwd,
    env: { ...process.env, NODE_ENV: 'development', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const found = /http:\/\/\S+\//.exec(stdout);
      if (found) resolve(found[0]);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, url, exited, output: () => ({ stdout, stderr }) };
}

/** The answer for `url`'s path when the browser's address bar said `host` (a raw `Host` header). */
function getAs(url: string, host: string): Promise<{ status: number; body: string }> {
  const { port, pathname } = new URL(url);
  return getWithHost(Number(port), host, pathname);
}

const statusAs = async (url: string, host: string) => (await getAs(url, host)).status;

describe('mailroom preview', () => {
  it('its settings view names the config file, the variables, and shows a secret only as set', async () => {
    const project = join(dir, 'with-config');
    await mkdir(project, { recursive: true });
    await writeFile(
      join(project, 'mailroom.config.mjs'),
      "export default { appName: 'Acme', brand: { company: 'Config Co' } };\n",
    );
    const secret = 'kafka-Secret-in-env-77';
    const run = startIn(
      project,
      { MAILROOM_TRANSPORT: 'sandbox', KAFKA_SASL_PASSWORD: secret, MAILROOM_KAFKA_GROUP: 'acme-workers' },
      '--port',
      '0',
    );
    try {
      const url = await run.url;
      const text = await (await fetch(`${url}api/settings`)).text();
      expect(text).not.toContain(secret);
      const settings = (JSON.parse(text) as { groups: { settings: { name: string }[] }[] }).groups.flatMap(
        (g) => g.settings,
      );
      const find = (name: string) => settings.find((s) => s.name === name);
      expect(find('Company')).toMatchObject({
        value: 'Config Co',
        source: 'config file',
        from: 'mailroom.config.mjs',
      });
      expect(find('Sends through')).toMatchObject({ source: 'environment', from: 'MAILROOM_TRANSPORT' });
      expect(find('Consumer group')).toMatchObject({ value: 'acme-workers', source: 'environment' });
      expect(find('SASL password')).toMatchObject({ value: 'set', from: 'KAFKA_SASL_PASSWORD' });
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  it('serves the page on 127.0.0.1 and stops on SIGTERM', async () => {
    const run = start('--port', '0', '--outbox', join(dir, 'outbox'));
    const url = await run.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('mailroom preview');
    const list = (await (await fetch(`${url}api/templates`)).json()) as { templates: { name: string }[] };
    expect(list.templates.map((t) => t.name)).toEqual(BUILTIN_NAMES);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output().stderr).toBe('');
  });

  it('says so when the --templates folder does not exist (a mistyped path), and serves the built-ins', async () => {
    const missing = join(dir, 'emails-typo');
    const run = start('--port', '0', '--templates', missing, '--outbox', join(dir, 'outbox'));
    const url = await run.url;
    await expect
      .poll(() => run.output().stdout)
      .toContain(`the templates folder ${missing} does not exist yet: only the built-in templates are shown`);
    const list = (await (await fetch(`${url}api/templates`)).json()) as { templates: { name: string }[] };
    expect(list.templates.map((t) => t.name)).toEqual(BUILTIN_NAMES);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });

  it('says nothing of the kind when the folder is there', async () => {
    const here = join(dir, 'emails');
    await mkdir(here, { recursive: true });
    const run = start('--port', '0', '--templates', here, '--outbox', join(dir, 'outbox'));
    await run.url;
    run.child.kill('SIGTERM');
    expect(await run.exited, JSON.stringify(run.output())).toBe(0);
    expect(run.output().stdout).not.toContain('does not exist');
  });

  it('exits 0 on a SIGTERM sent the moment it prints its address (a script that stops it at once), every time', async () => {
    // It used to install its signal handlers after that line: about one run in three was killed.
    for (let i = 0; i < 10; i++) {
      const run = start('--port', '0', '--outbox', join(dir, 'outbox'));
      await run.url;
      run.child.kill('SIGTERM');
      expect(await run.exited, `run ${i + 1}: ${JSON.stringify(run.output())}`).toBe(0);
    }
  });

  it('answers loopback and --allowed-hosts names only: a DNS-rebinding Host gets a 403, event stream included', async () => {
    const run = start(
      ...['--port', '0', '--outbox', join(dir, 'outbox')],
      ...['--allowed-hosts', 'mail.test,.dev.test', '--allowed-hosts', 'box.lan'],
    );
    const url = await run.url;
    const { port } = new URL(url);
    try {
      for (const path of ['', 'api/outbox', 'api/templates', 'events']) {
        for (const host of ['evil.example', '127.0.0.1.nip.io', `evil.example:${port}`]) {
          expect(await statusAs(`${url}${path}`, host), `${host} /${path}`).toBe(403);
        }
        for (const host of [
          `localhost:${port}`,
          `127.0.0.1:${port}`,
          'mail.test',
          'a.dev.test:80',
          'box.lan',
        ]) {
          expect(await statusAs(`${url}${path}`, host), `${host} /${path}`).toBe(200);
        }
      }
      expect((await getAs(`${url}api/outbox`, 'evil.example')).body).toContain(
        '--allowed-hosts evil.example',
      );
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  it('refuses an --allowed-hosts that is not a host name, with one line naming the flag', async () => {
    const child = spawn(
      process.execPath,
      [cli, 'preview', '--port', '0', '--allowed-hosts', 'http://mail.test'],
      {
        cwd: dir,
        env: { ...process.env, NODE_ENV: 'development' },
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^mailroom: --allowed-hosts: "http:\/\/mail\.test" is not a host name/);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('refuses in production, with one line and exit 1', async () => {
    const child = spawn(process.execPath, [cli, 'preview', '--port', '0'], {
      cwd: dir,
      env: { ...process.env, NODE_ENV: 'production' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^mailroom: force: refusing to serve the preview with NODE_ENV=production/);
  });

  it('says what is wrong with a bad port', async () => {
    const child = spawn(process.execPath, [cli, 'preview', '--port', 'abc'], { cwd: dir });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
  });
});
