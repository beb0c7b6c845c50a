// A trivial IoT Edge module in its own process, for the modules bench baseline: it answers the
// direct method `ping` and nothing else. Same SDK and socket settings as the real modules.
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { enableLowLatencySockets } from '@enclave-edge/module-frame';

enableLowLatencySockets();
const client = device.ModuleClient.fromConnectionString(process.env.TRIVIAL_CONNECTION_STRING, deviceMqtt.Mqtt);
client.setOptions({ ca: process.env.TRIVIAL_CA });
await client.open();
client.onMethod('ping', (_req, res) => void res.send(200, { result: 'pong' }));
process.send?.('ready');
process.on('disconnect', () => void client.close().finally(() => process.exit(0)));
