/** Entry point: `node modules/host-module/dist/main.js` with the IoT Edge environment. */
import device from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import { enableLowLatencySockets } from '@enclave-edge/ta-client';
import { createLogger, startMetricsServer, createMetrics } from '@enclave-edge/observability';
import { startHostModule } from './host-module.js';
import type { EdgeModuleClient } from '@enclave-edge/ta-client/module-client-like';

const log = createLogger({ name: process.env.IOTEDGE_MODULEID ?? 'host-module' });
process.on('unhandledRejection', (err) => log.error({ err: (err as Error)?.message ?? String(err) }, 'unhandled rejection'));

enableLowLatencySockets();

try {
  const client = (await device.ModuleClient.fromEnvironment(mqtt.Mqtt)) as unknown as EdgeModuleClient;
  const metrics = createMetrics({ module: process.env.IOTEDGE_MODULEID ?? 'host-module' });
  const server = await startMetricsServer({ registry: metrics.registry }).catch((err: Error) => {
    log.warn({ err: err.message }, 'metrics endpoint not started');
    return undefined;
  });
  if (server) log.info({ url: server.url }, 'metrics endpoint listening');
  const host = await startHostModule({ client, log, metrics, moduleId: process.env.IOTEDGE_MODULEID ?? 'host-module' });
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'stopping');
    await host.stop().catch(() => undefined);
    await server?.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'host-module could not start');
  process.exit(1);
}
