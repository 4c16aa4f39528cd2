/**
 * Internal: one HTTP POST for the HTTP API transports, over node:http(s) with keep-alive agents.
 * On Node 20 this costs a fraction of the CPU that `fetch` spends per request, and it can tell
 * whether the request body had been sent when a request fails: the line between a transient and an
 * ambiguous failure. An injected `fetch` is wrapped to the same shape.
 */
import http from 'node:http';
import https from 'node:https';

/** An HTTP answer, whatever its status. */
export interface PostResponse {
  status: number;
  statusText: string;
  header(name: string): string | undefined;
  text: string;
}

/** A request that got no answer. */
export class PostError extends Error {
  constructor(
    message: string,
    /** `timeout`, `aborted` (the caller's signal), or the network error's code (`ECONNREFUSED` …). */
    readonly reason: string,
    /** The whole request body had been handed to the network, so the server may have acted on it. */
    readonly sent: boolean,
    options: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface PostOptions {
  headers: Record<string, string>;
  body: string | Buffer;
  /** `GET` for a check without a body (`body` is then ignored). Default `POST`. */
  method?: 'GET' | 'POST';
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** Sends POST requests; `close()` releases idle connections. */
export interface Poster {
  post(url: URL, options: PostOptions): Promise<PostResponse>;
  close(): void;
}

/** A poster over node:http(s), one keep-alive agent per protocol. */
export function nodePoster(): Poster {
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  return {
    post(url, { headers, body, timeoutMs, signal, method = 'POST' }) {
      const payload = method === 'GET' ? '' : body;
      return new Promise((resolve, reject) => {
        let sent = false;
        let reason: string | undefined;
        let done = false;
        const finish = (outcome: () => void) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          outcome();
        };
        const secure = url.protocol === 'https:';
        const request = (secure ? https : http).request(
          url,
          {
            method,
            agent: secure ? agents.https : agents.http,
            headers:
              method === 'GET'
                ? headers
                : { ...headers, 'content-length': String(Buffer.byteLength(payload)) },
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () =>
              finish(() =>
                resolve({
                  status: response.statusCode ?? 0,
                  statusText: response.statusMessage ?? '',
                  header: (name) => [response.headers[name] ?? []].flat()[0],
                  text: Buffer.concat(chunks).toString('utf8'),
                }),
              ),
            );
            response.on('error', (error) => fail(error));
          },
        );
        const fail = (error: unknown) =>
          finish(() => {
            const code = reason ?? (error as { code?: string })?.code ?? 'network';
            reject(new PostError(`request failed: ${code}`, code, sent, { cause: error }));
          });
        const timer = setTimeout(() => {
          reason = 'timeout';
          request.destroy(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        const onAbort = () => {
          reason = 'aborted';
          request.destroy(new Error('aborted'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        // 'finish': every byte of the request is with the operating system, on its way.
        request.on('finish', () => {
          sent = true;
        });
        request.on('error', fail);
        request.end(payload);
      });
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/**
 * The error codes that mean the request never reached the server, so a retry cannot deliver twice:
 * the host's name did not resolve (`ENOTFOUND`, `EAI_AGAIN`), no route led to it (`EHOSTUNREACH`,
 * `ENETUNREACH`), it refused the connection (`ECONNREFUSED`), or the connection was never set up in
 * time (`UND_ERR_CONNECT_TIMEOUT`, fetch's). Any other failure may come after the body left: the
 * clients over which we cannot watch the body go out (fetch, the AWS SDK) count it as sent.
 */
const NEVER_CONNECTED: ReadonlySet<string> = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** True when an error with this code means nothing was sent ({@link NEVER_CONNECTED}). */
export function neverConnected(code: string | undefined): boolean {
  return code !== undefined && NEVER_CONNECTED.has(code);
}

/** A poster over an injected `fetch`. fetch cannot say how far a request got, so any failure after connecting counts as sent. */
export function fetchPoster(fetch: typeof globalThis.fetch): Poster {
  return {
    async post(url, { headers, body, timeoutMs, signal, method = 'POST' }) {
      const controller = new AbortController();
      let reason: string | undefined;
      const timer = setTimeout(() => {
        reason = 'timeout';
        controller.abort();
      }, timeoutMs);
      const onAbort = () => {
        reason = 'aborted';
        controller.abort();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const response = await fetch(url, {
          method,
          headers,
          ...(method === 'GET' ? {} : { body }),
          signal: controller.signal,
        });
        const text = await response.text();
        return {
          status: response.status,
          statusText: response.statusText,
          header: (name) => response.headers.get(name) ?? undefined,
          text,
        };
      } catch (error) {
        const code =
          reason ??
          (error as { cause?: { code?: string } })?.cause?.code ??
          (error as { code?: string })?.code ??
          'network';
        throw new PostError(`request failed: ${code}`, code, !neverConnected(code), { cause: error });
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }
    },
    close() {},
  };
}
