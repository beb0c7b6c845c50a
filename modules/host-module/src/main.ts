/** Entry point: `node modules/host-module/dist/main.js` with the IoT Edge environment. */
import device from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import { enableLowLatencySockets } from '@enclave-edge/ta-client';
import { createLogger, createMetrics, logUnhandledRejections, startMetricsEndpoint, stopOnSignals } from '@enclave-edge/observability';
import { startHostModule } from './host-module.js';
import type { EdgeModuleClient } from '@enclave-edge/ta-client/module-client-like';

const moduleId = process.env.IOTEDGE_MODULEID ?? 'host-module';
const log = createLogger({ name: moduleId });
logUnhandledRejections(log);
enableLowLatencySockets();

try {
  const client = (await device.ModuleClient.fromEnvironment(mqtt.Mqtt)) as unknown as EdgeModuleClient;
  const metrics = createMetrics({ module: moduleId });
  const server = await startMetricsEndpoint(log, { registry: metrics.registry });
  const host = await startHostModule({ client, log, metrics, moduleId });
  stopOnSignals(log, async () => {
    await host.stop().catch(() => undefined);
    await server?.close();
  });
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'host-module could not start');
  process.exit(1);
}
