/** Internal: the one definition of "this machine" for every check that trusts it. */
import { BlockList, isIP } from 'node:net';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/**
 * Whether a host name or address is this machine: `localhost`, 127.0.0.0/8 or `::1` (IPv6 bare or
 * in brackets, as URLs write it; an IPv4-mapped `::ffff:127.x` too).
 */
export function isLoopback(name: string): boolean {
  if (name === 'localhost') return true;
  const address = name.startsWith('[') ? name.slice(1, -1) : name;
  const family = isIP(address);
  return family !== 0 && loopback.check(address, family === 6 ? 'ipv6' : 'ipv4');
}
