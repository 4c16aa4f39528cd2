/**
 * `mailroom check`, the built CLI, as CI would run it in an app folder: every template with each of
 * its data sets, one named template, `--data`, `--production` with `--staging-hosts`, the brand's
 * contrast, and the exit code (1 on any error or a template that does not render).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
let app: string;

async function template(name: string, html: string, data: Record<string, unknown> = { name: 'Jane' }) {
  const dir = join(app, 'emails', name);
  await mkdir(join(dir, 'preview'), { recursive: true });
  await writeFile(join(dir, 'html.eta'), html);
  await writeFile(join(dir, 'subject.eta'), `About your ${name}`);
  await writeFile(join(dir, 'preheader.eta'), 'A short note about your account');
  await writeFile(join(dir, 'preview', 'default.json'), JSON.stringify(data));
}

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  app = await mkdtemp(join(tmpdir(), 'mailroom-check-'));
  await template('receipt', '<p>Thanks, <%= it.name %>.</p>');
  await template('staging-link', '<p>Hi <%= it.name %>, <a href="<%= it.url %>">sign in</a>.</p>', {
    name: 'Jane',
    url: 'https://app.staging.acme.example/login',
  });
  await template('flex', '<div style="display:flex; gap:8px"><p>Hi <%= it.name %></p><p>there</p></div>');
  await template('broken', '<p>Hi <%= it.name %></p><% if (it.name { %>x<% } %>');
});
afterAll(() => rm(app, { recursive: true, force: true }));

function run(...args: string[]) {
  return runIn(app, ...args);
}

function runIn(cwd: string, ...args: string[]) {
  return runWith(cwd, {}, ...args);
}

function runWith(cwd: string, extra: Record<string, string>, ...args: string[]) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|KAFKA_|NODE_ENV)/.test(k),
    ),
  );
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd,
    env: { ...env, APP_NAME: 'Acme', ...extra },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('mailroom check', () => {
  it('passes a clean template, SpamAssassin included', () => {
    const { code, stdout, stderr } = run('check', 'receipt', '--templates', './emails');
    expect(stderr).toBe('');
    expect(stdout).toBe('receipt (default): 0 errors, 0 warnings\n1 email checked: 0 errors, 0 warnings\n');
    expect(code).toBe(0);
  });

  it('checks every template and data set, and exits 1 for the one that does not render', () => {
    const { code, stdout } = run('check', '--templates', './emails', '--no-spam');
    const lines = stdout.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^broken \(default\): does not render: .*html\.eta, line 1: bad template syntax/,
        ),
        'verification (default): 0 errors, 0 warnings',
        'welcome (no-action): 0 errors, 0 warnings',
        'receipt (default): 0 errors, 0 warnings',
      ]),
    );
    // Client support from the table built into dist: what two client families lack is a warning.
    expect(lines).toContain('flex (default): 0 errors, 1 warning');
    expect(stdout).toContain(
      '  warning client-support: gap, column-gap, row-gap is not supported by Outlook (Windows)',
    );
    expect(code).toBe(1);
  });

  it('a staging link is an error with --production and --staging-hosts, not without', () => {
    const dev = run('check', 'staging-link', '--templates', './emails', '--no-spam');
    expect(dev.stdout).toContain('staging-link (default): 0 errors, 0 warnings');
    expect(dev.code).toBe(0);
    const prod = run(
      'check',
      'staging-link',
      '--templates',
      './emails',
      '--no-spam',
      '--production',
      '--staging-hosts',
      '.staging.acme.example',
    );
    expect(prod.stdout).toContain(
      '  error links: app.staging.acme.example is a staging host: no recipient can reach it (<a href="https://app.staging.acme.example/login">)',
    );
    expect(prod.code).toBe(1);
  });

  it('checks --data instead of the data sets', () => {
    const { code, stdout } = run(
      'check',
      'staging-link',
      '--templates',
      './emails',
      '--no-spam',
      '--data',
      '{"name":"Jane","url":"http://localhost:3000/login"}',
      '--production',
    );
    expect(stdout).toContain('staging-link (--data): 1 error, 1 warning');
    expect(code).toBe(1);
  });

  it('refuses a staging host that is not a name, and an unknown template', () => {
    const bad = run('check', '--staging-hosts', 'https://x.example', '--no-spam');
    expect(bad.stderr).toMatch(/^mailroom: .*--staging-hosts/);
    expect(bad.code).toBe(1);
    const unknown = run('check', 'nope', '--no-spam');
    expect(unknown.stderr).toMatch(/^mailroom: template "nope": no template of that name/);
    expect(unknown.code).toBe(1);
  });

  it("is quiet on the examples' own template (examples/app-config, its config file and data sets)", () => {
    const example = fileURLToPath(new URL('../../examples/app-config/', import.meta.url));
    const { code, stdout, stderr } = runIn(example, 'check', 'order-confirmation', '--no-spam');
    expect(stderr).toBe('');
    expect(stdout).toBe(
      'order-confirmation (default): 0 errors, 0 warnings\norder-confirmation (gift): 0 errors, 0 warnings\n' +
        '2 emails checked: 0 errors, 0 warnings\n',
    );
    expect(code).toBe(0);
  });

  it('warns once, first, about a brand colour below 4.5:1, and still exits 0', () => {
    const { code, stdout, stderr } = runWith(
      app,
      { MAILROOM_PRIMARY_COLOR: '#FFC107' },
      'check',
      'receipt',
      '--templates',
      './emails',
      '--no-spam',
    );
    expect(stderr).toBe('');
    // Yellow buttons get a dark label, so only the links fail; in dark mode yellow reads well.
    expect(stdout).toBe(
      'brand: 1 warning\n' +
        '  warning contrast: brand.colors.primary #FFC107 on brand.colors.surface #FFFFFF: 1.63:1, below the 4.5:1 WCAG AA asks of text (links)\n' +
        'receipt (default): 0 errors, 0 warnings\n' +
        '1 email checked: 0 errors, 1 warning\n',
    );
    expect(code).toBe(0);
  });

  it('has its own --help', () => {
    const { code, stdout } = run('check', '--help');
    expect(stdout).toMatch(/^mailroom check \[<template>\]/);
    expect(code).toBe(0);
  });
});
