/**
 * Internal test helper: the built CLI (`dist/cli/index.js`, so `npm run build` first) run as a child
 * process, as a user runs it: what it has printed so far, and its exit code once it exits. The
 * caller kills it in a `finally` (`child.kill('SIGKILL')`), so none outlives its test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

export interface CliChild {
  readonly child: ChildProcess;
  /** Its exit code; null when a signal ended it. */
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** Both, in the order they came. */
  output(): string;
}

/** Starts `mailroom <args>` with exactly `env` as its environment. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv): CliChild {
  const child = spawn(process.execPath, [CLI, ...args], { env });
  const printed = { stdout: '', stderr: '', output: '' };
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream]?.on('data', (chunk: Buffer) => {
      printed[stream] += chunk;
      printed.output += chunk;
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    stdout: () => printed.stdout,
    stderr: () => printed.stderr,
    output: () => printed.output,
  };
}
