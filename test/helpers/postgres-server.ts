/**
 * A real PostgreSQL for tests: Debian's server (`/usr/lib/postgresql/<version>/bin`: initdb, then
 * postgres) with a fresh cluster in a temp folder, listening on a free port on 127.0.0.1 only, trust
 * auth there (plus any `hba` lines given first), the Unix socket inside the private folder. PostgreSQL
 * refuses to run as root, so under root (CI) the cluster belongs to the `postgres` user and both
 * programs run as it through setpriv. `stop()` shuts it down and removes the folder; if the test
 * process dies first, the kernel sends postgres SIGQUIT (setpriv --pdeathsig) and the exit hook
 * removes the folder (or, after a SIGKILL, the next start does). A missing binary is a failure with the fix in the message, never a skip
 * (test/setup/system.sh installs the `postgresql` package).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

/** A running PostgreSQL cluster. */
export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The superuser, `postgres`, which needs no password from 127.0.0.1. */
  readonly user: 'postgres';
  /** `postgres://postgres@127.0.0.1:<port>/<database>` (default database `postgres`). */
  url(database?: string, user?: string, password?: string): string;
  /** Shuts it down (fast shutdown, then SIGKILL) and removes its folder. */
  stop(): Promise<void>;
}

export interface PostgresServerOptions {
  /** pg_hba.conf lines placed before the `host all all 127.0.0.1/32 trust` line. */
  hba?: readonly string[];
}

const FIX =
  'The PostgreSQL tests need Debian\'s PostgreSQL server: "apt-get install postgresql" (test/setup/system.sh does).';

const running = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [child, dir] of running) {
    child.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The folder holding initdb and postgres: `POSTGRES_BIN`, else the newest Debian install. */
function binDir(): string {
  const given = process.env.POSTGRES_BIN;
  if (given) return given;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error(`${FIX} (no ${root}/*/bin/postgres)`);
  return join(root, versions[0]!, 'bin');
}

/** Under root: run as `postgres`, and die with the parent. Otherwise as ourselves. */
function asOwner(): { prefix: string[]; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { prefix: [] };
  let ids: string;
  try {
    ids = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${FIX} (there is no postgres user to run it as: postgres refuses to run as root)`);
  }
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return {
    prefix: [
      'setpriv',
      '--reuid=postgres',
      '--regid=postgres',
      '--init-groups',
      '--pdeathsig',
      'SIGQUIT',
      '--',
    ],
    uid: Number(ids),
    gid,
  };
}

/**
 * The folders of clusters whose test process was SIGKILLed (postgres went with it, the folder
 * stayed): the process named in their `owner.pid` is gone.
 */
function removeLeftovers(): void {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith('mailroom-postgres-'))) {
    const dir = join(tmpdir(), name);
    try {
      const owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
      try {
        process.kill(owner, 0);
        continue; // its test process still runs
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') continue;
      }
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Being created (no owner.pid yet), removed by another process first, or not ours to read.
    }
  }
}

export async function startPostgresServer(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const bin = binDir();
  removeLeftovers();
  const owner = asOwner();
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-postgres-'));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const data = join(dir, 'data');
  if (owner.uid !== undefined) chownSync(dir, owner.uid, owner.gid!);
  const run = (program: string, args: string[]) => {
    const [command, ...rest] = [...owner.prefix, join(bin, program), ...args];
    return { command: command!, args: rest };
  };

  try {
    const init = run('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ]);
    execFileSync(init.command, init.args, { stdio: 'pipe', cwd: dir });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error(FIX);
    throw new Error(`initdb failed: ${e.stderr?.toString().trim() ?? e.message}`);
  }
  // Only 127.0.0.1 (and the socket in this private folder) may connect.
  const hba = ['local all all trust', ...(options.hba ?? []), 'host all all 127.0.0.1/32 trust'];
  writeFileSync(join(data, 'pg_hba.conf'), `${hba.join('\n')}\n`);
  if (owner.uid !== undefined) chownSync(join(data, 'pg_hba.conf'), owner.uid, owner.gid!);

  const port = await freePort();
  const { command, args } = run('postgres', [
    '-D',
    data,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dir}`,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=50',
  ]);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  running.set(child, dir);
  child.once('exit', () => running.delete(child));
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const collect = (chunk: Buffer) => {
      output += chunk;
      if (output.includes('database system is ready to accept connections')) resolve();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error(`${FIX} (${command} not found)`) : error),
    );
    child.once('exit', (code, signal) =>
      reject(new Error(`postgres exited (${code ?? signal}): ${output.trim().slice(-2000)}`)),
    );
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    await ready;
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  } finally {
    clearTimeout(timer);
  }

  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    url(database = 'postgres', user = 'postgres', password?: string) {
      const auth = password === undefined ? user : `${user}:${encodeURIComponent(password)}`;
      return `postgres://${auth}@127.0.0.1:${port}/${database}`;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGINT'); // fast shutdown: disconnects clients, no checkpoint wait for them
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(kill);
      }
      running.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A table's columns as information_schema gives them, in their order: what a store's DDL made. */
export async function tableColumns(
  pool: { query(text: string, values: unknown[]): Promise<{ rows: unknown[] }> },
  table: string,
): Promise<unknown[]> {
  const { rows } = await pool.query(
    `SELECT column_name, data_type, is_nullable FROM information_schema.columns
     WHERE table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return rows;
}
