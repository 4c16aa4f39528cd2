/**
 * A real Redis for tests: Debian's `redis-server` on a free loopback port, no persistence, in a temp
 * folder, stopped (SIGKILL if it lingers) by `stop()` and when the test process exits. A missing
 * binary is a failure with the fix in the message, never a skip (test/setup/system.sh installs it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

/** A running redis-server. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Stops it for good (the port is freed). */
  stop(): Promise<void>;
  /** SIGKILLs it, as a crash would; `start()` again brings it back on the same port, empty. */
  kill(): Promise<void>;
  /** Starts it again after `kill()` (nothing when it is up). */
  start(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-redis-'));
  let child: ChildProcess | undefined;

  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null) return; // already up
    const proc = spawn(
      process.env.REDIS_SERVER ?? 'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--protected-mode',
        'yes',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk;
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    await new Promise<void>((resolve, reject) => {
      proc.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'ENOENT'
            ? new Error(
                'The Redis tests need redis-server: "apt-get install redis-server" (test/setup/system.sh does).',
              )
            : error,
        ),
      );
      proc.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output.trim()}`)));
      void waitForPort(port, 10_000).then(resolve, reject);
    });
  };

  const kill = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await gone;
  };

  await start();
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    kill,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once something answers on the port (redis-server listens once it is ready). */
async function waitForPort(port: number, withinMs: number): Promise<void> {
  const until = Date.now() + withinMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until)
      throw new Error(`redis-server did not listen on port ${port} within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
