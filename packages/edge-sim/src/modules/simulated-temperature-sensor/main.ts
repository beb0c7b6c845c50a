/**
 * Built-in equivalent of mcr.microsoft.com/azureiotedge-simulated-temperature-sensor, run as a
 * module process: connects with ModuleClient.fromEnvironment(Mqtt) exactly like any module,
 * sends `temperatureOutput` messages, honours MessageCount / MessageDelay, desired properties
 * SendInterval / SendData (reported back), the `reset` direct method and `control` input.
 */
import { randomUUID } from 'node:crypto';
import device from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import { applyDesired, isResetCommand, readSensorConfig } from './config.js';
import { TemperatureSimulation } from './simulation.js';

const { ModuleClient, Message } = device;
const OUTPUT = 'temperatureOutput';

/** IoT Edge log format: `<severity> timestamp [LVL] - message`. */
function log(sev: 6 | 4 | 3, text: string): void {
  const lvl = sev === 6 ? 'INF' : sev === 4 ? 'WRN' : 'ERR';
  (sev === 6 ? process.stdout : process.stderr).write(`<${sev}> ${new Date().toISOString()} [${lvl}] - ${text}\n`);
}

async function main(): Promise<void> {
  const cfg = readSensorConfig();
  const sim = new TemperatureSimulation(cfg.simulation);
  const batchId = randomUUID();
  log(6, 'SimulatedTemperatureSensor Main() started.');
  log(6, `Initializing simulated temperature sensor to send ${cfg.messageCount < 0 ? 'unlimited' : cfg.messageCount} messages, at an interval of ${cfg.messageDelayMs / 1000} seconds.`);

  const client = await ModuleClient.fromEnvironment(mqtt.Mqtt);
  client.on('error', (err: Error) => log(3, `module client error: ${err.message}`));
  await client.open();
  log(6, 'Successfully initialized module client of transport type [Mqtt].');

  client.onMethod('reset', (_req, res) => {
    log(6, 'Received direct method call to reset temperature sensor...');
    sim.reset();
    res?.send(200, undefined, (err) => err && log(3, `method response failed: ${err.message}`));
  });

  client.on('inputMessage', (inputName: string, msg: InstanceType<typeof Message>) => {
    if (inputName.toLowerCase() === 'control') {
      const text = msg.getBytes().toString('utf8');
      log(6, `Received message Body: [${text}]`);
      try {
        if (isResetCommand(JSON.parse(text))) {
          log(6, 'Resetting temperature sensor..');
          sim.reset();
        }
      } catch (err) {
        log(3, `Failed to deserialize control command: ${(err as Error).message}`);
      }
    }
    client.complete(msg, () => undefined);
  });

  const twin = await client.getTwin();
  twin.on('properties.desired', (desired: Record<string, unknown>) => {
    const changed = applyDesired(cfg, desired);
    if (changed.includes('SendData') && !cfg.sendData) log(6, 'Sending data disabled. Change twin configuration to start sending again.');
    if (changed.length > 0) {
      twin.properties.reported.update({ SendData: cfg.sendData, SendInterval: cfg.messageDelayMs / 1000 }, (err?: Error) => {
        if (err) log(3, `reported properties update failed: ${err.message}`);
      });
    }
  });

  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    if (timer) clearTimeout(timer);
    log(6, 'SimulatedTemperatureSensor Main() finished.');
    client.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  let count = 1;
  const tick = async () => {
    if (stopping) return;
    if (cfg.messageCount >= 0 && count > cfg.messageCount) {
      log(6, `Done sending ${cfg.messageCount} messages`);
      return; // like the original: stay connected (methods, twin) but send nothing more
    }
    const body = sim.next();
    if (cfg.sendData) {
      const text = JSON.stringify(body);
      const m = new Message(text);
      m.contentType = 'application/json';
      m.contentEncoding = 'utf-8';
      m.properties.add('sequenceNumber', String(count));
      m.properties.add('batchId', batchId);
      log(6, `Sending message: ${count}, Body: [${text}]`);
      try {
        await client.sendOutputEvent(OUTPUT, m);
        count++;
      } catch (err) {
        log(3, `sending message ${count} failed: ${(err as Error).message}`);
      }
    }
    if (!stopping) timer = setTimeout(() => void tick(), cfg.messageDelayMs);
  };
  void tick();
}

main().catch((err: unknown) => {
  log(3, `SimulatedTemperatureSensor failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
