/**
 * A module's main: logger, unhandled rejections logged, socket tuning, the SDK client from the
 * IoT Edge environment, the /metrics endpoint, `start`, and a clean stop on SIGTERM/SIGINT.
 * Any failure to start is fatal (exit 1): IoT Edge restarts the module.
 */
import device from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import {
  createLogger, createMetrics, logUnhandledRejections, startMetricsEndpoint, stopOnSignals, type EdgeMetrics, type Logger,
} from '@enclave-edge/observability';
import { enableLowLatencySockets } from './low-latency.js';
import { unknownMethodTransport } from './unknown-methods.js';
import type { EdgeModuleClient } from './edge-module-client.js';

export interface RunContext {
  client: EdgeModuleClient;
  log: Logger;
  metrics: EdgeMetrics;
  /** The module's persistent storage (EDGE_MODULE_STATE_DIR; the simulator gives each module one), if any. */
  stateDir: string | undefined;
}

export function moduleStateDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.EDGE_MODULE_STATE_DIR || env.EDGESIM_MODULE_STATE_DIR || undefined;
}

export interface RunOptions {
  moduleId: string;
  metricsPort?: number;
  /** `ready`: what the image's HEALTHCHECK asks through `/health` (the module frame's own ready). */
  start(ctx: RunContext): Promise<{ stop(): Promise<void>; ready?(): boolean }>;
}

export async function runModule(opts: RunOptions): Promise<void> {
  const log = createLogger({ name: opts.moduleId });
  logUnhandledRejections(log);
  enableLowLatencySockets();
  try {
    const transport = unknownMethodTransport();
    const client = (await device.ModuleClient.fromEnvironment(transport.Transport)) as unknown as EdgeModuleClient;
    client.onUnknownMethod = transport.onUnknown;
    client.sendOutputOnce = transport.sendOutputOnce;
    const metrics = createMetrics({ module: opts.moduleId });
    let ready = (): boolean => false;
    const server = await startMetricsEndpoint(log, { registry: metrics.registry, health: () => ready(), ...(opts.metricsPort !== undefined ? { port: opts.metricsPort } : {}) });
    const mod = await opts.start({ client, log, metrics, stateDir: moduleStateDir() });
    ready = () => mod.ready?.() ?? true;
    stopOnSignals(log, async () => {
      await mod.stop().catch(() => undefined);
      await server?.close();
    });
  } catch (err) {
    log.fatal({ err: (err as Error).message }, `${opts.moduleId} could not start`);
    process.exit(1);
  }
}
