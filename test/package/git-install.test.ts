/**
 * Installing from a git URL, as the README documents until the package is published
 * (`npm install git+https://…/mailroom.git`, `github:owner/repo`): npm clones the repository,
 * installs its devDependencies, runs `prepare` (the build) and installs what `files` selects.
 *
 * The repository installed here is a throwaway one made from the working tree as it is (tracked
 * files and new ones git does not ignore, with their current contents), so uncommitted work is
 * what gets tested. Everything comes from the npm cache: no network.
 */
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { npmInstall, repo, run, show } from './run.js';

let root = '';
let project = '';
let repoPackage: { name: string; version: string } = { name: '', version: '' };
const VERIFY_URL = 'https://acme.example/verify?token=git-install-7Qx';

/** A git repository in `dir` holding the working tree's files as they are now, in one commit. */
async function snapshot(dir: string): Promise<void> {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repo,
    encoding: 'utf8',
  });
  for (const path of listed.split('\0').filter(Boolean)) {
    // node_modules is a symlink in a worktree, which `node_modules/` in .gitignore does not match.
    if (path === 'node_modules' || path.startsWith('node_modules/')) continue;
    const from = join(repo, path);
    const stat = await lstat(from).catch(() => undefined);
    if (!stat?.isFile()) continue; // deleted in the working tree, or not a plain file
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await copyFile(from, join(dir, path));
    await chmod(join(dir, path), stat.mode);
  }
  const git = (...args: string[]) =>
    execFileSync(
      'git',
      ['-c', 'user.name=mailroom test', '-c', 'user.email=test@mailroom.invalid', ...args],
      {
        cwd: dir,
        stdio: 'ignore',
      },
    );
  git('init', '-q');
  git('add', '-A');
  git('commit', '-q', '--no-verify', '--no-gpg-sign', '-m', 'working tree');
}

beforeAll(async () => {
  repoPackage = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8'));
  root = await realpath(await mkdtemp(join(tmpdir(), 'mailroom-git-install-')));
  const source = join(root, 'mailroom.git');
  project = join(root, 'app');
  await mkdir(source);
  await mkdir(project);
  await snapshot(source);
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'mailroom-git-install-check', version: '0.0.0', private: true }),
  );
  const install = await npmInstall([`git+${pathToFileURL(source).href}`], project);
  if (install.code !== 0) throw new Error(`npm install from git failed:\n${show(install)}`);
}, 600_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('installed from a git URL', () => {
  it('is installed under its name, built by prepare, with only its own dependencies', async () => {
    const installed = join(project, 'node_modules', repoPackage.name);
    expect(repoPackage.name).toBe('mailroom-js');
    const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'));
    expect(pkg.version).toBe(repoPackage.version);
    const app = JSON.parse(await readFile(join(project, 'package.json'), 'utf8'));
    expect(app.dependencies[repoPackage.name]).toMatch(/^git\+file:/);
    // prepare built what package.json points at; the repository's sources stayed behind.
    for (const file of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/cli/index.js']) {
      expect((await lstat(join(installed, file))).isFile(), file).toBe(true);
    }
    await expect(lstat(join(installed, 'src'))).rejects.toThrow();
    // The devDependencies the build needed are not the app's.
    await expect(lstat(join(project, 'node_modules', 'tsup'))).rejects.toThrow();
  });

  it('imports mailroom-js and mailroom-js/testing, and sends a verification email', async () => {
    await writeFile(
      join(project, 'check.mjs'),
      `import { EmailService, memoryTransport } from 'mailroom-js';
import { createTestMailer, extractLink } from 'mailroom-js/testing';
const mailer = createTestMailer();
await mailer.service.sendVerificationEmail({ to: 'jane@example.com', username: 'Jane', verificationUrl: ${JSON.stringify(VERIFY_URL)} });
const email = mailer.outbox.expectSent({ to: 'jane@example.com', template: 'verification' });
console.log(JSON.stringify({
  link: extractLink(email),
  same: mailer.service instanceof EmailService && typeof memoryTransport === 'function',
  resolved: import.meta.resolve('mailroom-js'),
}));
`,
    );
    const checked = await run(process.execPath, ['check.mjs'], { cwd: project });
    expect(checked.code, show(checked)).toBe(0);
    expect(JSON.parse(checked.stdout)).toEqual({
      link: VERIFY_URL,
      same: true,
      resolved: pathToFileURL(join(project, 'node_modules', 'mailroom-js', 'dist', 'index.js')).href,
    });
  });

  it('has a mailroom bin that prints its version and renders', async () => {
    const mailroom = join(project, 'node_modules', '.bin', 'mailroom');
    const version = await run(mailroom, ['--version'], { cwd: project });
    expect(version.stdout.trim(), show(version)).toBe(repoPackage.version);
    const data = JSON.stringify({ username: 'Jane', verificationUrl: VERIFY_URL });
    const render = await run(mailroom, ['render', 'verification', '--data', data, '--format', 'text'], {
      cwd: project,
      env: { APP_NAME: 'Git Install' },
    });
    expect(render.code, show(render)).toBe(0);
    expect(render.stdout).toContain('Hi Jane');
    expect(render.stdout).toContain(VERIFY_URL);
  });
});
