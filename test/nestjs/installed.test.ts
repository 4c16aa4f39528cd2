/**
 * The packed package installed beside Nest the way a user's project has it: `npm pack`, then
 * `npm install` of the tarball with Nest 11 and with Nest 12 (ESM-only, which the CommonJS build
 * loads through Node's `require()` of ES modules), each in a scratch project outside the repo, with
 * no `--legacy-peer-deps` (so the optional peer range accepts that Nest). The fixture apps run there
 * as ESM and CJS and deliver a sign-up to a real SMTP server. Needs a fresh `dist/`.
 */
import { copyFile, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';
import { npmInstall, repo, run, show } from '../package/run.js';
import { FIXTURES, smtpVars, startApp, stopApps } from './fixture-app.js';

const INSTALL = 300_000;
const NEST_MAJORS = ['11', '12'] as const;
const dirs: string[] = [];
let tarball = '';
let peer: SmtpPeer | undefined;

beforeAll(async () => {
  const packDir = await realpath(await mkdtemp(join(tmpdir(), 'mailroom-nest-pack-')));
  dirs.push(packDir);
  // --ignore-scripts: `prepare` would rebuild dist/ under the other tests' feet.
  const pack = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], {
    cwd: repo,
  });
  if (pack.code !== 0) throw new Error(`npm pack failed:\n${show(pack)}`);
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string }[];
  if (!info) throw new Error(`npm pack printed no package:\n${show(pack)}`);
  tarball = join(packDir, info.filename);
}, INSTALL);

afterEach(async () => {
  stopApps();
  await peer?.close();
  peer = undefined;
});

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe.each(NEST_MAJORS)('installed with Nest %s', (major) => {
  let project = '';

  beforeAll(async () => {
    project = await realpath(await mkdtemp(join(tmpdir(), `mailroom-nest${major}-`)));
    dirs.push(project);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: `nest${major}-app`, private: true }),
    );
    const nest = ['common', 'core', 'platform-express'].map((name) => `@nestjs/${name}@^${major}.0.0`);
    const install = await npmInstall([tarball, ...nest, 'reflect-metadata@^0.2.2', 'rxjs@^7.8.2'], project);
    if (install.code !== 0) throw new Error(`npm install failed:\n${show(install)}`);
    for (const file of Object.values(FIXTURES)) await copyFile(file, join(project, file.split('/').at(-1)!));
  }, INSTALL);

  it.each(['esm', 'cjs'] as const)(
    '%s: a POST /signup is delivered to the SMTP server',
    async (format) => {
      const core = JSON.parse(
        await readFile(join(project, 'node_modules/@nestjs/core/package.json'), 'utf8'),
      );
      expect(core.version).toMatch(new RegExp(`^${major}\\.`));
      peer = await startSmtpPeer({ starttls: false });
      const app = startApp(join(project, FIXTURES[format].split('/').at(-1)!), project, smtpVars(peer));
      const port = await app.port;
      const response = await request(`http://127.0.0.1:${port}`)
        .post('/signup')
        .send({ email: 'jane@example.com', name: 'Jane' })
        .expect(202);
      expect(response.body.build).toBe(format);
      expect(peer.messages).toHaveLength(1);
      const email = await fromMime(peer.messages[0]!.raw);
      expect(email.text).toContain('https://acme.example/verify?token=jane%40example.com');
      app.child.kill('SIGTERM');
      await app.exited;
      expect(app.output()).toContain('transport closed');
    },
    60_000,
  );
});
