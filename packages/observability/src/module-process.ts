/**
 * The process frame both modules share: unhandled rejections logged, the metrics endpoint
 * started without making a bind failure fatal, and a clean stop on SIGTERM (what IoT Edge
 * sends to stop a module) or SIGINT.
 */
import type { Logger } from './logger.js';
import { startMetricsServer, type MetricsServer, type MetricsServerOptions } from './metrics-server.js';

export function logUnhandledRejections(log: Logger): void {
  process.on('unhandledRejection', (err) => log.error({ err: (err as Error)?.message ?? String(err) }, 'unhandled rejection'));
}

/** The `/metrics` endpoint, or undefined (with a warning) when it cannot listen: metrics are not worth failing the module. */
export async function startMetricsEndpoint(log: Logger, opts: MetricsServerOptions): Promise<MetricsServer | undefined> {
  const server = await startMetricsServer(opts).catch((err: Error) => {
    log.warn({ err: err.message }, 'metrics endpoint not started');
    return undefined;
  });
  if (server) log.info({ url: server.url }, 'metrics endpoint listening');
  return server;
}

/** On the first SIGTERM or SIGINT: run `stop` (errors ignored), then exit 0. */
export function stopOnSignals(log: Logger, stop: () => Promise<void>): void {
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'stopping');
    await stop().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}
