/**
 * Modules over AMQP: the unmodified azure-iot-device ModuleClient with azure-iot-device-amqp's
 * `Amqp` (AMQPS on 5671, the port the Event Hub-compatible endpoint shares) and `AmqpWs`
 * (wss://…:443/$iothub/websocket, subprotocol AMQPWSB10), against the same edgeHub routes,
 * store-and-forward, direct methods (azure-iothub Client.invokeDeviceMethod) and twins as MQTT.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import rhea, { type Connection, type EventContext, type Receiver, type Sender } from 'rhea';
import { createSas } from '@enclave-edge/edge-sim';
import { MAX_UNSETTLED_INPUTS } from '@enclave-edge/edge-sim/hub';
import device from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import deviceMqtt from 'azure-iot-device-mqtt';
import mqtt from 'mqtt';
import type { UpstreamMessage } from '@enclave-edge/edge-sim';
import { startTestSim, moduleKeyOf, eventually, spawnProbe, type TestSim } from './helpers.js';
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
  await client.setOptions({ ca: t.ca });
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

    it('reads its twin, writes reported properties, and gets desired-property updates', async () => {
      const a = await connect('probeA', transport);
      const twin = await a.getTwin();
      expect(twin.properties.desired).toMatchObject({ greeting: 'hello', nested: { x: 1 } });
      const tag = randomBytes(6).toString('hex');
      await new Promise<void>((resolve, reject) => twin.properties.reported.update({ over: name, tag }, (err?: Error) => (err ? reject(err) : resolve())));
      expect((await sdk.registry('getModuleTwin', t.sim.deviceId, 'probeA')).body.properties.reported).toMatchObject({ over: name, tag });
      // The SDK emits the whole desired document once after getTwin; the patch is the one naming the tag.
      const update = new Promise<any>((resolve) => twin.on('properties.desired', (d: any) => d.color === tag && resolve(d)));
      // The listener turns updates on in the background; this waits for edgeHub's answer to that request.
      await new Promise<void>((resolve, reject) => twin.enableTwinDesiredPropertiesUpdates((err?: Error) => (err ? reject(err) : resolve())));
      await sdk.registry('updateModuleTwin', t.sim.deviceId, 'probeA', { properties: { desired: { color: tag } } }, '*');
      expect(await update).toMatchObject({ color: tag, $version: expect.any(Number) });
      await close(a);
    });

    it('gets routed input messages: the one stored while it was away first, then a live one', async () => {
      const a = await connect('probeA', transport);
      const tag = randomBytes(6).toString('hex');
      const out = (n: number): device.Message => {
        const m = new device.Message(JSON.stringify({ n, tag }));
        m.properties.add('n', String(n));
        return m;
      };
      await a.sendOutputEvent('toB', out(1)); // probeB is not connected: store-and-forward keeps it
      const b = await connect('probeB', transport);
      const got: Array<{ input: string; body: any; n: string | undefined; from: unknown }> = [];
      const two = new Promise<void>((resolve) =>
        b.on('inputMessage', (input: string, msg: device.Message) => {
          const body = JSON.parse(msg.getBytes().toString());
          if (body.tag !== tag) return;
          got.push({ input, body, n: msg.properties.getValue('n'), from: (msg as any).connectionModuleId });
          b.complete(msg, () => {});
          if (got.length === 2) resolve();
          else void a.sendOutputEvent('toB', out(2));
        }),
      );
      await two;
      expect(got.map((g) => [g.input, g.body.n, g.n])).toEqual([
        ['in1', 1, '1'],
        ['in1', 2, '2'],
      ]);
      await close(b);
      await close(a);
    });
  });
}

describe('ModuleClient.fromEnvironment(Amqp) with IOTEDGE_* (SAS signed by the workload API)', () => {
  it('connects, answers methods and sends through the routes', async () => {
    const probe = spawnProbe({ ...t.sim.moduleEnv('probeA'), PROBE_TRANSPORT: 'Amqp' });
    try {
      expect(await eventually(() => t.invoke('probeA', 'whoami'))).toMatchObject({ status: 200, payload: { moduleId: 'probeA' } });
      const tag = randomBytes(6).toString('hex');
      const up = nextUpstream((m) => m.properties.tag === tag);
      await t.invoke('probeA', 'send', { messages: [{ output: 'telemetry', body: { tag }, properties: { tag } }] });
      expect(JSON.parse((await up).body.toString())).toEqual({ tag });
    } finally {
      await probe.stop();
    }
  });
});

describe('a module over Amqp that does not settle its input messages', () => {
  it(`holds at most ${MAX_UNSETTLED_INPUTS} unsettled; the rest wait in store-and-forward and follow, in order, as it completes`, async () => {
    const a = await connect('probeA', deviceAmqp.Amqp);
    const b = await connect('probeB', deviceAmqp.Amqp);
    const tag = randomBytes(6).toString('hex');
    // What the SDK hands its transport, per message id: more than once only when it retries a send
    // that failed (IoT Hub is at least once); the simulator must route each arrival exactly once.
    const transport = (a as unknown as { _transport: { sendOutputEvent: (o: string, m: device.Message, cb: unknown) => void } })._transport;
    const sendOnWire = transport.sendOutputEvent.bind(transport);
    const attempts = new Map<string, number>();
    transport.sendOutputEvent = (o, m, cb) => {
      attempts.set(String(m.messageId), (attempts.get(String(m.messageId)) ?? 0) + 1);
      sendOnWire(o, m, cb);
    };
    const got: Array<{ n: number; msg: device.Message }> = [];
    const copies: Array<{ n: number; messageId: string }> = [];
    const held: device.Message[] = []; // copies, unsettled until the count below is taken
    let settleCopies = false;
    const waiters: Array<{ done: () => boolean; resolve: () => void }> = [];
    const until = (done: () => boolean) => new Promise<void>((resolve) => (done() ? resolve() : waiters.push({ done, resolve })));
    const received = (count: number) => until(() => got.length >= count);
    b.on('inputMessage', (_input: string, msg: device.Message) => {
      const body = JSON.parse(msg.getBytes().toString());
      if (body.tag !== tag) return;
      if (got.some((g) => g.n === body.n)) {
        copies.push({ n: body.n, messageId: String(msg.messageId) });
        if (settleCopies) void complete(msg);
        else held.push(msg);
      } else got.push({ n: body.n, msg });
      for (const w of waiters.splice(0)) (w.done() ? w.resolve() : waiters.push(w));
    });
    const complete = (m: device.Message) => new Promise<void>((resolve, reject) => b.complete(m, (err?: Error) => (err ? reject(err) : resolve())));
    const message = (n: number): device.Message => {
      const m = new device.Message(JSON.stringify({ n, tag }));
      m.messageId = `${tag}-${n}`;
      return m;
    };
    // The input link is open once the inputs are enabled: a first message proves it.
    const extra = 5;
    const total = MAX_UNSETTLED_INPUTS + extra;
    await a.sendOutputEvent('toB', message(0));
    await received(1);
    await Promise.all(Array.from({ length: total - 1 }, (_, i) => a.sendOutputEvent('toB', message(i + 1))));
    // Every send is acknowledged, so routed, and nothing is settled yet: MAX_UNSETTLED_INPUTS went
    // out and the rest are stored, exactly, unless the SDK sent some again (then at most one more each).
    const resent = [...attempts.values()].reduce((n, k) => n + k - 1, 0);
    expect(attempts.size).toBe(total);
    const stored = t.sim.hub.forwardingStats().destinations.find((d) => d.module === 'probeB')?.messages ?? 0;
    expect(stored - extra, 'stored beyond those that found no room').toBeGreaterThanOrEqual(0);
    expect(stored - extra, 'stored beyond those that found no room (only copies the SDK sent again may be)').toBeLessThanOrEqual(resent);
    settleCopies = true;
    for (const m of held.splice(0)) await complete(m);
    await received(MAX_UNSETTLED_INPUTS);
    await complete(got[0]!.msg);
    await received(MAX_UNSETTLED_INPUTS + 1);
    for (const g of got.slice(1)) await complete(g.msg);
    // Everything stored arrives: each original once, in order, none lost; each stored copy is a
    // second copy, under its own id, of a message the SDK did send again.
    await until(() => got.length === total && copies.length === stored - extra);
    expect(got.map((g) => g.n)).toEqual(Array.from({ length: total }, (_, i) => i));
    for (const c of copies) expect([c.messageId, attempts.get(c.messageId)! > 1]).toEqual([`${tag}-${c.n}`, true]);
    await close(b);
    await close(a);
  }, 120_000);
});

describe('when MQTT is not on 8883 (GatewayHostName=host:PORT)', () => {
  it('Amqp dials that port and edgeHub serves it AMQP there; MQTT on it keeps working', async () => {
    const other = await startTestSim({ runModules: false, extraModules: ['amqpOnly'] });
    try {
      const cs = other.sim.moduleConnectionString('amqpOnly');
      expect(cs).toContain(`GatewayHostName=localhost:${other.sim.mqttPort}`);
      const client = device.ModuleClient.fromConnectionString(cs, deviceAmqp.Amqp);
      await client.setOptions({ ca: other.ca });
      await client.open();
      const twin = await client.getTwin();
      await new Promise<void>((resolve, reject) => twin.properties.reported.update({ via: 'amqp-on-mqtt-port' }, (err?: Error) => (err ? reject(err) : resolve())));
      expect(other.sim.hub.twins.get('amqpOnly').reported).toMatchObject({ via: 'amqp-on-mqtt-port' });
      await client.close();
      const mqttClient = device.ModuleClient.fromConnectionString(cs, deviceMqtt.Mqtt);
      await mqttClient.setOptions({ ca: other.ca });
      // aedes marks the client connected just after its CONNACK leaves: wait for edgeHub's event.
      const connected = once(other.sim.hub, 'connected');
      await mqttClient.open();
      expect(await connected).toEqual(['amqpOnly']);
      expect(other.sim.hub.isConnected('amqpOnly')).toBe(true);
      await mqttClient.close();
    } finally {
      await other.close();
    }
  });
});

describe('AMQP authentication', () => {
  it('refuses a connection string with a wrong key (put-token 401) and keeps serving the right one', async () => {
    const cs = t.sim.moduleConnectionString('probeA').replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${randomBytes(32).toString('base64')}`);
    const bad = device.ModuleClient.fromConnectionString(cs, deviceAmqp.Amqp);
    await bad.setOptions({ ca: t.ca });
    const err = await bad.open().then(() => undefined, (e: Error) => e);
    expect(err?.name).toBe('UnauthorizedError');
    expect(err?.message).toMatch(/signature does not match/);
    await bad.close().catch(() => {});
    expect(t.logs.some((l) => l.includes('AMQP connection refused: probeA: signature does not match'))).toBe(true);
    const good = await connect('probeA', deviceAmqp.Amqp);
    expect(t.sim.hub.isConnected('probeA')).toBe(true);
    await close(good);
  });
});

/** A raw AMQP connection (rhea) to the simulator's AMQPS port, for what the SDK never does. */
async function rawAmqp(): Promise<Connection> {
  const conn = rhea.create_container().connect({ transport: 'tls', host: t.sim.host, servername: 'localhost', port: t.sim.amqpPort!, ca: t.ca, reconnect: false });
  await once(conn, 'connection_open');
  return conn;
}

const cbsLinks = new WeakMap<Connection, { reply: Receiver; cbs: Sender }>();

/** put-token on $cbs (one pair of links per connection, as the SDKs keep); resolves with the answer's status code. */
async function putToken(conn: Connection, token: string): Promise<number> {
  let links = cbsLinks.get(conn);
  if (!links) {
    links = { reply: conn.open_receiver({ source: { address: '$cbs' } }), cbs: conn.open_sender({ target: { address: '$cbs' } }) };
    cbsLinks.set(conn, links);
    await once(links.cbs, 'sendable');
  }
  const { reply, cbs } = links;
  const answered = once(reply, 'message') as Promise<[EventContext]>;
  cbs.send({ message_id: randomBytes(8).toString('hex'), reply_to: 'cbs', application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: 'x' }, body: token });
  const [ctx] = await answered;
  return (ctx.message!.application_properties as Record<string, number>)['status-code']!;
}

/** Attach a sender to `address`; resolves with the error condition it is closed with, or 'open'. */
async function attach(conn: Connection, address: string): Promise<string> {
  const link = conn.open_sender({ target: { address } });
  // A refused link is attached and detached at once; an accepted one is given credit.
  const [ev, ctx] = await Promise.race([once(link, 'sendable').then(() => ['open'] as const), once(link, 'sender_error').then(([c]) => ['error', c as EventContext] as const)]);
  return ev === 'open' ? 'open' : String((ctx.sender!.error as { condition?: string } | undefined)?.condition);
}

describe('AMQP links fail closed', () => {
  const resource = (m: string) => `${t.sim.hubHostName}/devices/${t.sim.deviceId}/modules/${m}`;
  const events = (m: string) => `/devices/${t.sim.deviceId}/modules/${m}/messages/events`;

  it('a module link before any put-token is refused (unauthorized-access), and so is another module\'s link after one', async () => {
    const conn = await rawAmqp();
    try {
      expect(await attach(conn, events('probeA'))).toBe('amqp:unauthorized-access');
      expect(await putToken(conn, createSas(resource('probeA'), moduleKeyOf(t, 'probeA')))).toBe(200);
      expect(await attach(conn, events('probeB'))).toBe('amqp:unauthorized-access');
      expect(await attach(conn, events('probeA'))).toBe('open');
      expect(await putToken(conn, createSas(resource('probeB'), moduleKeyOf(t, 'probeB')))).toBe(401);
    } finally {
      conn.close();
    }
  });

  it('closes the connection when its token expires without a new one', async () => {
    const conn = await rawAmqp();
    const closed = once(conn, 'connection_close') as Promise<[EventContext]>;
    expect(await putToken(conn, createSas(resource('probeA'), moduleKeyOf(t, 'probeA'), { expiry: Math.floor(Date.now() / 1000) + 2 }))).toBe(200);
    const [ctx] = await closed;
    expect((ctx.connection.error as { condition?: string } | undefined)?.condition).toBe('amqp:unauthorized-access');
    expect(t.sim.hub.isConnected('probeA')).toBe(false);
  });

  it('one connection per module: connecting over Amqp ends its MQTT connection, and methods go to the new one', async () => {
    // A raw MQTT client that does not reconnect (the SDK would, and take the identity back).
    const mqttUp = once(t.sim.hub, 'connected');
    const old = mqtt.connect(`mqtts://${t.sim.host}:${t.sim.mqttPort}`, {
      clientId: `${t.sim.deviceId}/probeA`,
      username: `${t.sim.hubHostName}/${t.sim.deviceId}/probeA/?api-version=2021-04-12`,
      password: createSas(resource('probeA'), moduleKeyOf(t, 'probeA')),
      ca: t.ca,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    await mqttUp;
    const dropped = once(old, 'close');
    const a = await connect('probeA', deviceAmqp.Amqp);
    await dropped;
    a.onMethod('which', (_req, res) => res!.send(200, 'amqp', () => {}));
    expect(await invoke('probeA', 'which', null)).toEqual({ status: 200, payload: 'amqp' });
    expect(t.sim.hub.isConnected('probeA')).toBe(true);
    await close(a);
    old.end(true);
  });
});
