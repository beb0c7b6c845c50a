/**
 * Modules over AMQP: the unmodified azure-iot-device ModuleClient with azure-iot-device-amqp's
 * `Amqp` (AMQPS on 5671, the port the Event Hub-compatible endpoint shares) and `AmqpWs`
 * (wss://…:443/$iothub/websocket, subprotocol AMQPWSB10), against the same edgeHub routes,
 * store-and-forward, direct methods (azure-iothub Client.invokeDeviceMethod) and twins as MQTT.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import device from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import type { UpstreamMessage } from '@enclave-edge/edge-sim';
import type { TestSim } from './helpers.js';
import { startSimOnStandardPorts, startOfficialClients, type OfficialClients } from './official-clients.js';

let t: TestSim;
let sdk: OfficialClients;
const open: device.ModuleClient[] = [];

beforeAll(async () => {
  // No module processes: the tests connect as probeA / probeB themselves.
  t = await startSimOnStandardPorts({ amqpPort: 5671, runModules: false });
  sdk = await startOfficialClients(t);
}, 60_000);

afterAll(async () => {
  for (const c of open) await c.close().catch(() => {});
  await sdk?.close();
  await t?.close();
});

type Transport = typeof deviceAmqp.Amqp | typeof deviceAmqp.AmqpWs;

async function connect(moduleId: string, transport: Transport, cs = t.sim.moduleConnectionString(moduleId)): Promise<device.ModuleClient> {
  const client = device.ModuleClient.fromConnectionString(cs, transport);
  client.setOptions({ ca: t.ca });
  await client.open();
  open.push(client);
  return client;
}

async function close(client: device.ModuleClient): Promise<void> {
  await client.close();
  open.splice(open.indexOf(client), 1);
}

/** The next upstream message `pick` accepts. */
function nextUpstream(pick: (m: UpstreamMessage) => boolean): Promise<UpstreamMessage> {
  return new Promise((resolve) => {
    const off = t.sim.onUpstream((m) => {
      if (!pick(m)) return;
      off();
      resolve(m);
    });
  });
}

const invoke = async (moduleId: string, methodName: string, payload: unknown) =>
  (await sdk.client('invokeDeviceMethod', t.sim.deviceId, moduleId, { methodName, payload, responseTimeoutInSeconds: 10, connectTimeoutInSeconds: 10 })).body as { status: number; payload: any };

for (const [name, transport] of [
  ['Amqp', deviceAmqp.Amqp],
  ['AmqpWs', deviceAmqp.AmqpWs],
] as const) {
  describe(`ModuleClient over ${name}`, () => {
    it('connects, and edgeHub lists the module as connected until it closes', async () => {
      const a = await connect('probeA', transport);
      expect(t.sim.hub.isConnected('probeA')).toBe(true);
      await close(a);
      expect(t.sim.hub.isConnected('probeA')).toBe(false);
    });

    it('sendOutputEvent goes through the routes to $upstream with its properties', async () => {
      const a = await connect('probeA', transport);
      const tag = randomBytes(6).toString('hex');
      const got = nextUpstream((m) => m.properties.tag === tag);
      const msg = new device.Message(JSON.stringify({ t: 21.5, over: name }));
      msg.messageId = `mid-${tag}`;
      msg.contentType = 'application/json';
      msg.contentEncoding = 'utf-8';
      msg.properties.add('tag', tag);
      await a.sendOutputEvent('telemetry', msg);
      const up = await got;
      expect(up).toMatchObject({ deviceId: t.sim.deviceId, moduleId: 'probeA', output: 'telemetry', properties: { tag } });
      expect(up.systemProperties).toMatchObject({ '$.mid': `mid-${tag}`, '$.ct': 'application/json', '$.ce': 'utf-8', '$.cmid': 'probeA' });
      expect(JSON.parse(up.body.toString())).toEqual({ t: 21.5, over: name });
      await close(a);
    });

    it('answers a direct method from azure-iothub Client.invokeDeviceMethod', async () => {
      const a = await connect('probeA', transport);
      a.onMethod('echo', (req, res) => {
        res!.send(200, { over: name, got: req!.payload }, () => {});
      });
      expect(await invoke('probeA', 'echo', { n: 7 })).toEqual({ status: 200, payload: { over: name, got: { n: 7 } } });
      await close(a);
    });
  });
}

describe('AMQP authentication', () => {
  it('refuses a connection string with a wrong key (put-token 401) and keeps serving the right one', async () => {
    const cs = t.sim.moduleConnectionString('probeA').replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${randomBytes(32).toString('base64')}`);
    const bad = device.ModuleClient.fromConnectionString(cs, deviceAmqp.Amqp);
    bad.setOptions({ ca: t.ca });
    await expect(bad.open()).rejects.toThrow(/signature does not match/);
    await bad.close().catch(() => {});
    expect(t.logs.some((l) => l.includes('AMQP connection refused: probeA: signature does not match'))).toBe(true);
    const good = await connect('probeA', deviceAmqp.Amqp);
    expect(t.sim.hub.isConnected('probeA')).toBe(true);
    await close(good);
  });
});
