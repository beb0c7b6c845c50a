/** Entry point: `node modules/ta-runtime/dist/main.js` with the IoT Edge environment. */
import { runModule } from '@enclave-edge/module-frame';
import { readConfig } from './config.js';
import { setupTrust } from './trust-setup.js';
import { startTARuntimeModule } from './ta-runtime-module.js';

const config = readConfig();
await runModule({
  moduleId: config.moduleId,
  metricsPort: config.metricsPort,
  async start({ client, log, metrics }) {
    const trust = await setupTrust(config, log);
    return startTARuntimeModule({ client, log, config, trust, metrics });
  },
});
