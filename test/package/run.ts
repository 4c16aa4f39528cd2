/**
 * Helpers for the tests of the installed package: child processes in a clean environment, and tsc
 * as a user's project would run it.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('../..', import.meta.url));
export const bin = (name: string) => join(repo, 'node_modules', '.bin', name);

export interface Run {
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

export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number },
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: { ...env, ...options.env },
        maxBuffer: 64 * 1024 * 1024,
        timeout: options.timeout ?? 120_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}\n${error.message}` : stderr });
      },
    );
  });
}

export const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/**
 * `npm install` of `what` in `cwd`. --offline takes everything from the npm cache (warm after
 * `npm ci`); if the cache lacks something, it falls back to --prefer-offline.
 */
export async function npmInstall(what: string[], cwd: string, extra: string[] = []): Promise<Run> {
  const common = ['install', ...what, '--no-audit', '--no-fund', '--loglevel=error', ...extra];
  const offline = await run('npm', [...common, '--offline'], { cwd, timeout: 300_000 });
  if (offline.code === 0) return offline;
  return run('npm', [...common, '--prefer-offline'], { cwd, timeout: 300_000 });
}

/**
 * Type-checks files with the repo's tsc as a user on `module: node16` would (strict, every
 * declaration checked unless `skipLibCheck`), in `cwd`. Returns the run and the files tsc read
 * (`--listFiles`).
 */
export async function tsc(
  files: string[],
  cwd: string,
  { skipLibCheck = false } = {},
): Promise<Run & { listed: string[] }> {
  const result = await run(
    process.execPath,
    [
      join(repo, 'node_modules', 'typescript', 'bin', 'tsc'),
      ...['--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16'],
      ...['--target', 'es2022', '--lib', 'es2022', '--skipLibCheck', String(skipLibCheck), '--types', 'node'],
      // @types/node comes from the repo: the scratch project installs nothing but the package.
      ...['--typeRoots', join(repo, 'node_modules', '@types'), '--listFiles'],
      ...files,
    ],
    { cwd },
  );
  return { ...result, listed: result.stdout.split('\n').map((line) => line.trim()) };
}

/** A tsc run for an assertion message: its errors, without the list of files it read. */
export const showTsc = (r: Run) => show({ ...r, stdout: r.stdout.replace(/^\/(?!.*error TS).*\n?/gm, '') });
