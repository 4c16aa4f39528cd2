/**
 * Which `Host` the preview answers. A page on a DNS-rebinding name (evil.example, or
 * 127.0.0.1.nip.io) that starts resolving to 127.0.0.1 reaches the preview as its own origin: the
 * browser lets it read every response. The `Host` header it sends is the one thing that tells it
 * apart, so the preview answers loopback names and the names the user allowed, and nothing else.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { isLoopback } from '../loopback.js';

/** A `Host` header: a name, an IPv4 address or a bracketed IPv6 address, and an optional port. */
const HOST_HEADER = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?)(?::\d{1,5})?$/i;
/** An `allowedHosts` entry: a name (a leading dot takes its subdomains too) or an address, no port. */
const ALLOWED_ENTRY = /^\.?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$|^\[[0-9a-f:.]+\]$/i;

/** Decides whether a request's `Host` header names the preview. */
export type HostCheck = (host: string | undefined) => boolean;

/**
 * The check for loopback plus `allowed` (the `allowedHosts` option, validated here: a mistake
 * throws a ConfigError naming `option`).
 */
export function hostCheck(allowed: unknown, option = 'allowedHosts'): HostCheck {
  if (allowed !== undefined && !Array.isArray(allowed))
    throw new ConfigError(option, 'must be an array of host names, e.g. ["myapp.test"]');
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const entry of (allowed ?? []) as unknown[]) {
    const name = allowedName(entry);
    if (name === undefined) {
      throw new ConfigError(
        option,
        `${JSON.stringify(entry)} is not a host name: give names such as "myapp.test", or ".myapp.test" ` +
          'for it and its subdomains (no scheme, no port)',
      );
    }
    if (name.startsWith('.')) {
      exact.add(name.slice(1));
      suffixes.push(name);
    } else exact.add(name);
  }
  return (host) => {
    const name = hostName(host);
    if (name === undefined) return false;
    if (isLoopback(name) || exact.has(name)) return true;
    return suffixes.some((suffix) => name.endsWith(suffix));
  };
}

/** The host name in a `Host` header, as a browser writes it (lower case, addresses normalised). */
export function hostName(header: string | undefined): string | undefined {
  if (header === undefined || !HOST_HEADER.test(header)) return undefined;
  try {
    return new URL(`http://${header}`).hostname.replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

/** Headers a reverse proxy adds: a request carrying one came from wherever the proxy was reached. */
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip'] as const;

/**
 * True when the request came from this machine: its `Host` names loopback, it arrived on a
 * loopback address of this machine (the `Host` header alone is the client's to write: a neighbour
 * reaching a server that listens on 0.0.0.0 can send `Host: localhost`), and no proxy forwarded
 * it (a proxy on this machine connects over loopback for anyone who reaches it).
 */
export function fromThisMachine(req: IncomingMessage, host: string | undefined): boolean {
  const name = hostName(host);
  const local = req.socket.localAddress?.replace(/^::ffff:/, '');
  return (
    name !== undefined &&
    isLoopback(name) &&
    local !== undefined &&
    isLoopback(local) &&
    PROXY_HEADERS.every((header) => req.headers[header] === undefined)
  );
}

function allowedName(entry: unknown): string | undefined {
  if (typeof entry !== 'string') return undefined;
  // A bare IPv6 address is written without brackets in most configs.
  const value = isIP(entry) === 6 ? `[${entry}]` : entry;
  if (!ALLOWED_ENTRY.test(value)) return undefined;
  const dot = value.startsWith('.') ? '.' : '';
  const name = hostName(value.slice(dot.length));
  return name === undefined ? undefined : dot + name;
}
