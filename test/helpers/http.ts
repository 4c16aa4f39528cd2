/** Internal test helper: HTTP requests with a Host header of our choosing, as a rebinding page sends. */
import { request } from 'node:http';

/**
 * GETs `path` from 127.0.0.1:`port` with `Host: host`. An event stream never ends, so for one the
 * status alone is the answer (and the body is empty).
 */
export function getWithHost(
  port: number,
  host: string,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      const status = res.statusCode ?? 0;
      if (res.headers['content-type'] === 'text/event-stream') {
        res.destroy();
        return resolve({ status, body: '' });
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status, body }));
    })
      .on('error', reject)
      .end();
  });
}
