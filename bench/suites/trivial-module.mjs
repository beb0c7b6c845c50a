// A trivial IoT Edge module in its own process, for the modules bench baselines, with the same
// SDK and socket settings as the real modules: it answers the direct method `ping`, and sends
// every message of input `in` on, unchanged, as output `out` — one module hop with nothing done
// in it, the floor under any pipeline that runs in a module.
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { enableLowLatencySockets } from '@enclave-edge/module-frame';

enableLowLatencySockets();
const client = device.ModuleClient.fromConnectionString(process.env.TRIVIAL_CONNECTION_STRING, deviceMqtt.Mqtt);
client.setOptions({ ca: process.env.TRIVIAL_CA });
await client.open();
// Subscribing is what starts input delivery, so the handler is in place before any message.
client.on('inputMessage', (input, msg) => {
  if (input !== 'in') return;
  const out = new device.Message(msg.data);
  out.contentType = msg.contentType;
  out.contentEncoding = msg.contentEncoding;
  // Completed only once edgeHub has the output, as a pipeline does.
  client.sendOutputEvent('out', out).then(
    () => client.complete(msg, () => undefined),
    () => client.abandon(msg, () => undefined),
  );
});
client.onMethod('ping', (_req, res) => void res.send(200, { result: 'pong' }));
process.send?.('ready');
process.on('disconnect', () => void client.close().finally(() => process.exit(0)));
