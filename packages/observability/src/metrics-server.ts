/** HTTP `/metrics` for Prometheus (IoT Edge convention: port 9600), and `/health` for the image's HEALTHCHECK. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  registry: Registry;
  /** Default: METRICS_PORT from the environment, else 9600. Tests pass 0. */
  port?: number;
  /** Default: METRICS_HOST, else 127.0.0.1 (the Docker images set 0.0.0.0 so Prometheus can scrape). */
  host?: string;
  env?: NodeJS.ProcessEnv;
  /** `/health` answers 200 while this says the module is ready, 503 before (default: always ready). */
  health?: () => boolean;
}

/**
 * METRICS_PORT if set; otherwise 9600 as IoT Edge expects, except under the local simulator
 * (EDGESIM_GATEWAY_HTTPS_PORT set), where several modules share one host and take free ports.
 */
export function defaultMetricsPort(env: NodeJS.ProcessEnv = process.env): number {
  if (env.METRICS_PORT !== undefined) return Number(env.METRICS_PORT);
  return env.EDGESIM_GATEWAY_HTTPS_PORT !== undefined ? 0 : 9600;
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const env = opts.env ?? process.env;
  const port = opts.port ?? defaultMetricsPort(env);
  const host = opts.host ?? env.METRICS_HOST ?? '127.0.0.1';
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`metrics port ${String(port)} is not a valid port`);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/health') {
      const ready = opts.health?.() ?? true;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'starting\n');
      return;
    }
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    opts.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
