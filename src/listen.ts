/** Internal: binding a node:http server, with a bind failure said in words its callers can show. */
import type { Server } from 'node:net';

/** The bind failures a person can fix by choosing another port or host, and what each means. */
const BIND_FAILURES: Readonly<Record<string, string>> = {
  EADDRINUSE: 'is already in use',
  EACCES: 'is not allowed (a port below 1024 needs privileges)',
  EADDRNOTAVAIL: 'is not an address of this machine',
  ENOTFOUND: 'names no host this machine can find',
  EAI_AGAIN: 'names no host this machine can find now (the name lookup failed)',
};
/** The failures the host is at fault for, not the port. */
const HOST_FAILURES: readonly string[] = ['EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'];

/** Internal: `server` could not bind `host:port`; `why` says so in words, `code` is the system's. */
export class BindError extends Error {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly code: string,
    readonly why: string,
  ) {
    super(`${host}:${port} ${why} (${code})`);
    this.name = 'BindError';
  }

  /** The host is at fault (not this machine's address, or no such name), not the port. */
  get hostAtFault(): boolean {
    return HOST_FAILURES.includes(this.code);
  }
}

/**
 * Internal: listens on `host:port` (0: any free port) and resolves once bound. A failure a person
 * can fix (in use, not allowed, not this machine's address) rejects with a `BindError`; anything
 * else rejects as it came.
 */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      const why = error.code === undefined ? undefined : BIND_FAILURES[error.code];
      reject(why === undefined ? error : new BindError(host, port, error.code as string, why));
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}
