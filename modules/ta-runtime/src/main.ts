/** Entry point: `node modules/ta-runtime/dist/main.js` with the IoT Edge environment. */
import device from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import { enableLowLatencySockets } from '@enclave-edge/ta-client';
import { createLogger, createMetrics, startMetricsServer } from '@enclave-edge/observability';
import { readConfig } from './config.js';
import { setupTrust } from './trust-setup.js';
import { startTARuntimeModule } from './ta-runtime-module.js';
import type { EdgeModuleClient } from '@enclave-edge/ta-client/module-client-like';

const config = readConfig();
const log = createLogger({ name: config.moduleId });
process.on('unhandledRejection', (err) => log.error({ err: (err as Error)?.message ?? String(err) }, 'unhandled rejection'));

enableLowLatencySockets();

try {
  const trust = await setupTrust(config, log);
  const client = (await device.ModuleClient.fromEnvironment(mqtt.Mqtt)) as unknown as EdgeModuleClient;
  const metrics = createMetrics({ module: config.moduleId });
  const server = await startMetricsServer({ registry: metrics.registry, port: config.metricsPort }).catch((err: Error) => {
    log.warn({ err: err.message }, 'metrics endpoint not started');
    return undefined;
  });
  if (server) log.info({ url: server.url }, 'metrics endpoint listening');
  const mod = await startTARuntimeModule({ client, log, config, trust, metrics });
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'stopping');
    await mod.stop().catch(() => undefined);
    await server?.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'ta-runtime could not start');
  process.exit(1);
}
