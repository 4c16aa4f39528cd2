/** Internal test helper: node:http servers on loopback, closed after each test of the file. */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

/**
 * Call at a test file's (or describe block's) top level: registers the `afterEach` that closes
 * every server it opened, and returns `serve(handler, path)`, which listens on 127.0.0.1 at a free
 * port and answers with the URL of `path` there.
 */
export function loopbackServers(): (handler: RequestListener, path?: string) => Promise<string> {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (closers.length) await closers.pop()!();
  });
  return async (handler, path = '/') => {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  };
}
