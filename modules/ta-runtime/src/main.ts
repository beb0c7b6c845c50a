/** Entry point: `node modules/ta-runtime/dist/main.js` with the IoT Edge environment. */
import device from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import { enableLowLatencySockets } from '@enclave-edge/ta-client';
import { createLogger, createMetrics, logUnhandledRejections, startMetricsEndpoint, stopOnSignals } from '@enclave-edge/observability';
import { readConfig } from './config.js';
import { setupTrust } from './trust-setup.js';
import { startTARuntimeModule } from './ta-runtime-module.js';
import type { EdgeModuleClient } from '@enclave-edge/ta-client/module-client-like';

const config = readConfig();
const log = createLogger({ name: config.moduleId });
logUnhandledRejections(log);
enableLowLatencySockets();

try {
  const trust = await setupTrust(config, log);
  const client = (await device.ModuleClient.fromEnvironment(mqtt.Mqtt)) as unknown as EdgeModuleClient;
  const metrics = createMetrics({ module: config.moduleId });
  const server = await startMetricsEndpoint(log, { registry: metrics.registry, port: config.metricsPort });
  const mod = await startTARuntimeModule({ client, log, config, trust, metrics });
  stopOnSignals(log, async () => {
    await mod.stop().catch(() => undefined);
    await server?.close();
  });
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'ta-runtime could not start');
  process.exit(1);
}
