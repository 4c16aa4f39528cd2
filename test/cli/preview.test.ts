/** `mailroom preview` as built: starts on loopback, prints its URL, serves, and stops cleanly on SIGTERM. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
let dir: string;
beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  dir = await mkdtemp(join(tmpdir(), 'mailroom-preview-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function start(...args: string[]) {
  const child = spawn(process.execPath, [cli, 'preview', ...args], {
    cwd: dir,
    env: { ...process.env, NODE_ENV: 'development' },
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

describe('mailroom preview', () => {
  it('serves the page on 127.0.0.1 and stops on SIGTERM', async () => {
    const run = start('--port', '0', '--outbox', join(dir, 'outbox'));
    const url = await run.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('mailroom preview');
    const list = (await (await fetch(`${url}api/templates`)).json()) as { templates: { name: string }[] };
    expect(list.templates.map((t) => t.name)).toEqual(['password-reset', 'verification', 'welcome']);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output().stderr).toBe('');
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
