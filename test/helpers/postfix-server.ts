/**
 * A real Postfix for tests: Debian's `postfix` as a private instance (its own config, queue and log
 * in a temp folder) listening on a free port on 127.0.0.1 and relaying everything to a sink on
 * 127.0.0.1 (an smtp-server in the test process). Postfix's master runs as root and drops to the
 * `postfix` user, so the suite runs as root or through `sudo -n`; otherwise it fails saying so.
 * `stop()` stops the instance, kills whatever of it is left and removes the folder; the exit hook
 * does the same if the test process ends first, and the next start cleans up after a SIGKILLed
 * one. A missing binary is a failure with the fix in the message, never a skip (test/setup/system.sh
 * installs the `postfix` package).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

/** A running Postfix instance. */
export interface PostfixServer {
  readonly host: '127.0.0.1';
  /** Its smtpd's port. */
  readonly port: number;
  /** Its config folder (`postfix -c`). */
  readonly config: string;
  /** Its log so far (maillog_file). */
  log(): string;
  /** Stops it, kills what is left of it and removes its folder. */
  stop(): Promise<void>;
}

export interface PostfixServerOptions {
  /** The port of the SMTP server on 127.0.0.1 it relays every message to (relayhost). */
  relayPort: number;
  /** main.cf settings added to (or replacing) the defaults, e.g. `{ message_size_limit: '200000' }`. */
  main?: Record<string, string>;
  /**
   * Replies by recipient, `{ 'dave@example.org': '550 5.1.1 No such user' }`: a texthash access
   * table checked at RCPT TO (check_recipient_access) before anyone else is let through.
   */
  recipientAccess?: Record<string, string>;
}

const POSTFIX = '/usr/sbin/postfix';
const FIX =
  'The Postfix tests need Debian\'s Postfix: "echo postfix postfix/main_mailer_type select No configuration | debconf-set-selections && apt-get install postfix" (test/setup/system.sh does).';
const PREFIX = 'mailroom-postfix-';

/** Instances this process started, by folder. */
const running = new Set<string>();
process.once('exit', () => {
  for (const dir of running) halt(dir);
});

/** `sudo -n` when not root (the master must start as root), or a failure saying the suite needs root. */
let elevate: string[] | undefined;
function asRoot(): string[] {
  elevate ??= rootPrefix();
  return elevate;
}

function rootPrefix(): string[] {
  if (process.getuid?.() === 0) return [];
  try {
    execFileSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      'The Postfix tests need root to run Postfix (its master starts as root, then runs as the postfix user): run the suite as root, or where "sudo -n" needs no password.',
    );
  }
  return ['sudo', '-n'];
}

/** Runs a command as root; its stdout, or an error carrying its stderr. */
function root(command: string, args: string[]): string {
  const [program, ...rest] = [...asRoot(), command, ...args];
  return execFileSync(program!, rest, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function startPostfixServer(options: PostfixServerOptions): Promise<PostfixServer> {
  if (!existsSync(POSTFIX)) throw new Error(`${FIX} (no ${POSTFIX})`);
  asRoot();
  try {
    execFileSync('id', ['-u', 'postfix'], { stdio: 'ignore' });
  } catch {
    throw new Error(`${FIX} (there is no postfix user: the package creates it)`);
  }
  removeLeftovers();

  const dir = mkdtempSync(join(tmpdir(), PREFIX));
  // The postfix user reaches its data folder through this one (mkdtemp makes it 0700).
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const config = join(dir, 'conf');
  for (const sub of ['conf', 'queue', 'data']) mkdirSync(join(dir, sub));
  const port = await freePort();
  const maillog = join(dir, 'maillog');

  const main: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: join(dir, 'queue'),
    data_directory: join(dir, 'data'),
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    myhostname: 'mta.mailroom.test',
    mydestination: '',
    mynetworks: '127.0.0.0/8',
    relayhost: `[127.0.0.1]:${options.relayPort}`,
    smtp_tls_security_level: 'none',
    smtputf8_enable: 'yes',
    alias_maps: '',
    alias_database: '',
    maillog_file: maillog,
    // Postfix writes its log only under a listed prefix; without one, `postfix start` fails.
    maillog_file_prefixes: dir,
  };
  if (options.recipientAccess) {
    const table = join(config, 'recipient_access');
    writeFileSync(
      table,
      Object.entries(options.recipientAccess)
        .map(([address, action]) => `${address} ${action}\n`)
        .join(''),
    );
    // texthash is read as it is: no postmap step.
    main.smtpd_recipient_restrictions = `check_recipient_access texthash:${table}, permit_mynetworks, reject_unauth_destination`;
  }
  Object.assign(main, options.main);
  writeFileSync(
    join(config, 'main.cf'),
    Object.entries(main)
      .map(([key, value]) => `${key} = ${value}\n`)
      .join(''),
  );
  writeFileSync(join(config, 'master.cf'), masterCf(port));

  running.add(dir);
  try {
    root('chown', ['postfix', join(dir, 'data')]);
    // `postfix start` waits for the master to be up (master -w): its smtpd is listening when it returns.
    root(POSTFIX, ['-c', config, 'start']);
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    const why = [diagnose(config), lastLines(readLog(maillog), 10)].filter(Boolean).join('\n');
    halt(dir);
    throw new Error(
      `postfix -c ${config} start failed: ${e.stderr?.trim() || e.message}${why ? `\n${why}` : ''}`,
    );
  }

  return {
    host: '127.0.0.1',
    port,
    config,
    log: () => readLog(maillog),
    async stop() {
      halt(dir);
    },
  };
}

/** master.cf: smtpd on the port, then the services a relaying Postfix needs. */
function masterCf(port: number): string {
  return `127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;
}

const lastLines = (text: string, count: number) => text.trim().split('\n').slice(-count).join('\n');

/**
 * Why Postfix will not start, in its own words: `postfix check` writes its fatal errors to stderr
 * only when that is a terminal (a broken maillog setting leaves nothing anywhere else), so it runs
 * under script(1) for one.
 */
function diagnose(config: string): string {
  const command = [...asRoot(), POSTFIX, '-c', config, 'check'].map((arg) => `'${arg}'`).join(' ');
  try {
    execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (error) {
    const output = String((error as { stdout?: unknown }).stdout ?? '').replace(/\r/g, '');
    return lastLines(
      output
        .split('\n')
        .filter((line) => !line.includes('warning:'))
        .join('\n'),
      5,
    );
  }
}

function readLog(maillog: string): string {
  try {
    return readFileSync(maillog, 'utf8');
  } catch {
    try {
      return root('cat', [maillog]);
    } catch {
      return '';
    }
  }
}

/**
 * Stops the instance in `dir` (`postfix stop` waits up to 5 s for the master to leave), SIGKILLs
 * its master and the master's children if any remain, and removes the folder. Synchronous: the
 * exit hook runs it too.
 */
function halt(dir: string): void {
  running.delete(dir);
  const master = masterPid(dir);
  const children = master === undefined ? [] : childrenOf(master);
  try {
    root(POSTFIX, ['-c', join(dir, 'conf'), 'stop']);
  } catch {
    // Not running (a failed start), or already stopped.
  }
  const left = [master, ...children].filter((pid): pid is number => pid !== undefined && alive(pid));
  if (left.length > 0) {
    try {
      root('kill', ['-KILL', ...left.map(String)]);
    } catch {
      // Gone in between.
    }
  }
  try {
    root('rm', ['-rf', dir]);
  } catch {
    // Removed by someone else first.
  }
}

function masterPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Processes whose parent is `pid` (smtpd, qmgr, pickup … of a master), from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    const stat = procStat(Number(entry));
    if (stat?.ppid === pid) children.push(Number(entry));
  }
  return children;
}

/** A process that exists and is not a zombie (a zombie is gone, waiting for its parent to reap it). */
function alive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so read from the last ')'.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: state ?? '', ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Instances whose test process died without stopping them (its `owner.pid` is gone): stopped and removed. */
function removeLeftovers(): void {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(PREFIX))) {
    const dir = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      continue; // being created
    }
    if (owner === process.pid || alive(owner)) continue;
    halt(dir);
  }
}
