/** Entry point: `node modules/host-module/dist/main.js` with the IoT Edge environment. */
import { runModule } from '@enclave-edge/module-frame';
import { startHostModule } from './host-module.js';

const moduleId = process.env.IOTEDGE_MODULEID ?? 'host-module';
await runModule({ moduleId, start: ({ client, log, metrics, stateDir }) => startHostModule({ client, log, metrics, moduleId, stateDir }) });
