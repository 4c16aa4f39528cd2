/**
 * Liveness, readiness and Prometheus metrics of a worker over HTTP (node:http, no framework), on
 * a port of its own, loopback unless told otherwise. Separate from `createEmailWorker` so the
 * port is open before `start()` (probes see 503 while the worker joins its group), a busy port is
 * an error before the worker touches Kafka, and a caller with its own HTTP server can use
 * {@link workerHealth} and `workerMetrics()` instead.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { BindError, listen } from '../listen.js';
import { type WorkerMetrics, type WorkerMetricsOptions, workerMetrics } from './metrics.js';
import { runtimeOf, type WorkerRuntime } from './runtime.js';
import { healthOf, type WorkerHealth } from './standing.js';
import type { EmailWorker } from './worker.js';

export type { WorkerHealth } from './standing.js';

/**
 * Where a worker stands, for a health endpoint of your own.
 *
 * @example
 * ```ts
 * app.get('/readyz', (_req, res) => {
 *   const health = workerHealth(worker);
 *   res.status(health.ready ? 200 : 503).json(health);
 * });
 * ```
 */
export function workerHealth(worker: EmailWorker): WorkerHealth {
  return healthOf(runtimeFor(worker, 'workerHealth'));
}

/** Options of {@link serveWorkerHealth}. */
export interface WorkerHealthOptions {
  /** TCP port, 0–65535; 0 takes a free one (read it from `url`). Required. */
  port: number;
  /**
   * Address to listen on. Default `127.0.0.1`: only this machine. In a container, probes and
   * Prometheus come from outside it: pass `0.0.0.0` (or the pod's address).
   */
  host?: string;
  /**
   * Serve Prometheus metrics at `/metrics` (loads prom-client, an optional peer): `true`, or
   * `workerMetrics()` options such as your own registry. Default false: `/metrics` answers 404.
   */
  metrics?: boolean | WorkerMetricsOptions;
}

/** A listening health server. */
export interface WorkerHealthServer {
  /** `http://127.0.0.1:9464` — the address and the port actually bound. */
  readonly url: string;
  readonly port: number;
  /** Present when `metrics` was asked for. */
  readonly metrics: WorkerMetrics | undefined;
  /** Stops listening (and the metrics' admin client). */
  close(): Promise<void>;
}

/**
 * Serves `GET /livez` (200 while the worker runs, 503 once it closed), `GET /readyz` (200 once it
 * joined its group and holds partitions; 503 before that, while it rebalances, and while a systemic
 * failure pauses it), each with a {@link WorkerHealth} JSON body, and with `metrics`, `GET /metrics`
 * in Prometheus's text format. Call it before `worker.start()`. Rejects with a `ConfigError`
 * naming `port` when the port is taken, or `host` when it is not an address of this machine.
 *
 * @example
 * ```ts
 * const worker = createEmailWorker({ kafka, brokers, service, handleSignals: true });
 * const health = await serveWorkerHealth(worker, { port: 9464, host: '0.0.0.0', metrics: true });
 * await worker.start();
 * await worker.untilClosed().finally(() => health.close());
 * ```
 */
export async function serveWorkerHealth(
  worker: EmailWorker,
  options: WorkerHealthOptions,
): Promise<WorkerHealthServer> {
  const runtime = runtimeFor(worker, 'serveWorkerHealth');
  const { port } = options ?? {};
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new TypeError('serveWorkerHealth: port must be a whole number from 0 to 65535');
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || (isIP(host) === 0 && !/^[A-Za-z0-9.-]{1,253}$/.test(host)))
    throw new TypeError('serveWorkerHealth: host must be an IP address or a host name');
  const metrics = options.metrics
    ? await workerMetrics(worker, options.metrics === true ? {} : options.metrics)
    : undefined;

  const server = createServer((request, response) => {
    // Read by probes and scrapers, never meant to be rendered or framed by a browser.
    response.setHeader('x-content-type-options', 'nosniff');
    response.setHeader('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    answer(request, response, runtime, metrics).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  try {
    await listen(server, port, host);
  } catch (error) {
    await metrics?.close();
    if (error instanceof BindError)
      throw error.hostAtFault
        ? new ConfigError(
            'host',
            `${error.message}: the worker's health endpoints need an address of this machine (127.0.0.1 is one)`,
          )
        : new ConfigError(
            'port',
            `${error.message}: the worker's health endpoints need a free port (0 takes any)`,
          );
    throw error;
  }
  const bound = (server.address() as { port: number }).port;
  const url = `http://${isIP(host) === 6 ? `[${host}]` : host}:${bound}`;
  return {
    url,
    port: bound,
    metrics,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await metrics?.close();
    },
  };
}

async function answer(
  request: IncomingMessage,
  response: ServerResponse,
  runtime: WorkerRuntime,
  metrics: WorkerMetrics | undefined,
): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
    response.end('method not allowed\n');
    return;
  }
  if (path === '/livez' || path === '/readyz') {
    const health = healthOf(runtime);
    const ok = path === '/livez' ? health.live : health.ready;
    response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    response.end(`${JSON.stringify(health)}\n`);
    return;
  }
  if (path === '/metrics' && metrics) {
    const body = await metrics.registry.metrics();
    response.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
    response.end(body);
    return;
  }
  response.writeHead(404, { 'content-type': 'text/plain' });
  response.end(
    path === '/metrics'
      ? 'metrics are off: serveWorkerHealth(worker, { port, metrics: true })\n'
      : 'not found: /livez, /readyz, /metrics\n',
  );
}

function runtimeFor(worker: EmailWorker, caller: string): WorkerRuntime {
  const runtime = runtimeOf(worker);
  if (!runtime) throw new TypeError(`${caller}: worker must be made by createEmailWorker`);
  return runtime;
}
