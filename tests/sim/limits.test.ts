/**
 * The simulator's memory stays bounded and says so (threat model O7, O11): store-and-forward is
 * capped per destination (oldest dropped, warned, counted in status), twin patches follow IoT
 * Hub's limits (400 to the SDK, twin unchanged), and a slow `/edge-sim/upstream` reader loses
 * messages instead of growing the simulator's buffers, and is told how many.
 * Raw MQTT clients and the real SDK in this process; no module processes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import mqtt from 'mqtt';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { createSas } from '@enclave-edge/edge-sim';
import { StoreAndForward } from '@enclave-edge/edge-sim/hub';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestSim, eventually, cliBin, type TestSim } from './helpers.js';

const run = promisify(execFile);

let t: TestSim;
const DEVICE = 'edge-sim-device';
const UPSTREAM_BOUND = 64 * 1024;

beforeAll(async () => {
  t = await startTestSim({ runModules: false, limits: { storeMaxMessages: 5, upstreamBufferBytes: UPSTREAM_BOUND } });
});

afterAll(async () => {
  await t?.close();
});

function keyOf(moduleId: string): string {
  return /SharedAccessKey=([^;]+)/.exec(t.sim.moduleConnectionString(moduleId))![1]!;
}

async function connect(moduleId: string): Promise<mqtt.MqttClient> {
  const client = mqtt.connect(`mqtts://localhost:${t.sim.mqttPort}`, {
    clientId: `${DEVICE}/${moduleId}`,
    username: `${t.sim.hubHostName}/${DEVICE}/${moduleId}/?api-version=2021-04-12`,
    password: createSas(`${t.sim.hubHostName}/devices/${DEVICE}/modules/${moduleId}`, keyOf(moduleId)),
    ca: t.ca,
    protocolVersion: 4,
    reconnectPeriod: 0,
    clean: true,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

const publish = (c: mqtt.MqttClient, topic: string, payload: string, qos: 0 | 1 = 1) =>
  new Promise<void>((resolve, reject) => c.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve())));
const subscribe = (c: mqtt.MqttClient, filter: string) =>
  new Promise<void>((resolve, reject) => c.subscribe(filter, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
const end = (c: mqtt.MqttClient) => new Promise<void>((resolve) => c.end(true, {}, () => resolve()));

const outputTopic = (moduleId: string, output: string) => `devices/${DEVICE}/modules/${moduleId}/messages/events/%24.on=${output}`;
const status = async () => (await t.hub.simulatorStatus()) as any;

describe('store-and-forward is bounded per destination', () => {
  it('keeps the newest messages for a module not connected, warns naming it, counts the drops, delivers the rest in order', async () => {
    const sender = await connect('probeA');
    try {
      for (let i = 1; i <= 8; i++) await publish(sender, outputTopic('probeA', 'toLate'), `m${i}`, 1);
      const s = await eventually(async () => {
        const v = await status();
        expect(v.storeAndForward.dropped).toBe(3);
        return v;
      });
      expect(s.storeAndForward.destinations).toContainEqual(expect.objectContaining({ module: 'probeLate', input: 'queued', messages: 5, dropped: 3 }));
      expect(s.storedForForwarding).toBe(5);
      const warning = t.logs.find((l) => l.includes('store-and-forward') && l.includes('full'));
      expect(warning).toMatch(/warning: .*module probeLate input queued/);
      expect(warning).toMatch(/dropped 1 oldest/);
      const human = await run(process.execPath, [cliBin, 'sim', 'status', '--state-dir', t.stateDir]);
      expect(human.stdout).toContain('store-and-forward full for probeLate input queued: 3 oldest message(s) dropped, 5 held');

      const late = await connect('probeLate');
      try {
        const got: string[] = [];
        late.on('message', (topic, payload) => {
          if (topic.includes('/inputs/queued/')) got.push(payload.toString());
        });
        await subscribe(late, `devices/${DEVICE}/modules/probeLate/inputs/#`);
        await eventually(() => expect(got).toEqual(['m4', 'm5', 'm6', 'm7', 'm8']));
        expect((await status()).storedForForwarding).toBe(0);
      } finally {
        await end(late);
      }
    } finally {
      await end(sender);
    }
  });

  it('also bounds bytes: the oldest go until the rest fit; one message over the bound is kept alone', () => {
    const q = new StoreAndForward<string>({ maxMessages: 100, maxBytes: 1000 });
    expect(q.push('m\u0000in', 'a', 400, 60)).toBe(0);
    expect(q.push('m\u0000in', 'b', 400, 60)).toBe(0);
    expect(q.push('m\u0000in', 'c', 400, 60)).toBe(1);
    expect(q.bytes('m\u0000in')).toBe(800);
    expect(q.push('m\u0000in', 'huge', 5000, 60)).toBe(2);
    expect(q.takeAll('m\u0000').map((e) => e.item)).toEqual(['huge']);
    expect(q.droppedCounts().get('m\u0000in')).toBe(3);
    expect(() => new StoreAndForward({ maxMessages: 0 })).toThrow(/maxMessages must be a positive integer/);
  });
});

describe('twin patches follow IoT Hub limits', () => {
  it('the SDK gets an error for a reported patch over 32 KiB, and the twin is unchanged', async () => {
    const client = device.ModuleClient.fromConnectionString(t.sim.moduleConnectionString('probeB'), deviceMqtt.Mqtt);
    await client.setOptions({ ca: t.ca });
    await client.open();
    try {
      const twin = await client.getTwin();
      const report = (patch: unknown) => new Promise<void>((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())));
      await report({ fits: 'x'.repeat(30_000) });
      const before = (await t.hub.getModuleTwin(DEVICE, 'probeB')) as any;
      expect(before.properties.reported.fits.length).toBe(30_000);

      await expect(report({ big: 'y'.repeat(33 * 1024) })).rejects.toThrow(/reported properties patch of probeB is \d+ bytes; the limit is 32768/);
      // Small patch, but the section would pass 32 KiB: refused as IoT Hub does.
      await expect(report({ more: 'z'.repeat(4000) })).rejects.toThrow(/reported properties of probeB would be \d+ bytes .*limit is 32768/);
      let deep: Record<string, unknown> = { leaf: 1 };
      for (let i = 0; i < 11; i++) deep = { d: deep };
      await expect(report(deep)).rejects.toThrow(/nests 11 levels; the limit is 10/);

      const after = (await t.hub.getModuleTwin(DEVICE, 'probeB')) as any;
      expect(after.properties.reported.$version).toBe(before.properties.reported.$version);
      expect(Object.keys(after.properties.reported).sort()).toEqual(['$version', 'fits']);
      // Still usable after a refusal.
      await report({ fits: null, ok: true });
      expect(((await t.hub.getModuleTwin(DEVICE, 'probeB')) as any).properties.reported).toMatchObject({ ok: true });
    } finally {
      await client.close();
    }
  });

  it('answers status 400 on the twin response topic (raw MQTT)', async () => {
    const c = await connect('probeB');
    try {
      const res = new Promise<{ topic: string; body: any }>((resolve) => c.on('message', (topic, p) => resolve({ topic, body: JSON.parse(p.toString()) })));
      await subscribe(c, '$iothub/twin/res/#');
      await publish(c, '$iothub/twin/PATCH/properties/reported/?$rid=42', JSON.stringify({ big: 'q'.repeat(40_000) }), 0);
      const r = await res;
      expect(r.topic).toBe('$iothub/twin/res/400/?$rid=42');
      expect(r.body).toMatchObject({ errorCode: 400004 });
      expect(r.body.message).toMatch(/32768/);
    } finally {
      await end(c);
    }
  });

  it('the service API refuses desired or tags patches past the limit with 400 and applies neither part', async () => {
    const before = (await t.hub.getModuleTwin(DEVICE, 'probeA')) as any;
    await expect(t.hub.updateModuleTwin(DEVICE, 'probeA', { properties: { desired: { a: 'b'.repeat(33 * 1024) } } })).rejects.toMatchObject({
      message: expect.stringMatching(/desired properties patch of probeA is \d+ bytes/),
    });
    await expect(t.hub.updateModuleTwin(DEVICE, 'probeA', { properties: { desired: { small: 1 } }, tags: { t: 'x'.repeat(9000) } })).rejects.toThrow(/tags properties of probeA would be \d+ bytes .*limit is 8192/);
    const after = (await t.hub.getModuleTwin(DEVICE, 'probeA')) as any;
    expect(after.properties.desired).toEqual(before.properties.desired);
    expect(after.tags).toEqual(before.tags);
  });
});

describe('a slow upstream reader does not grow the simulator', () => {
  function openStream(): Promise<IncomingMessage> {
    const token = createSas(`localhost:${t.sim.httpsPort}`, /SharedAccessKey=([^;]+)/.exec(t.sim.serviceConnectionString)![1]!, { keyName: 'iothubowner' });
    return new Promise((resolve, reject) => {
      https
        .get({ host: 'localhost', port: t.sim.httpsPort, path: '/edge-sim/upstream', ca: t.ca, headers: { authorization: token }, agent: false }, resolve)
        .on('error', reject);
    });
  }

  it('drops messages for the reader that stopped reading, tells it {"dropped":N} when it resumes, and keeps a fast reader whole', async () => {
    const slow = await openStream();
    slow.pause(); // stops reading: kernel buffers fill, then the simulator's
    const fast = await openStream();
    const fastLines: string[] = [];
    let fastBuf = '';
    fast.on('data', (d: Buffer) => {
      fastBuf += d.toString();
      const parts = fastBuf.split('\n');
      fastBuf = parts.pop()!;
      fastLines.push(...parts);
    });
    expect(slow.statusCode).toBe(200);
    await eventually(async () => expect((await status()).upstream.readers).toBe(2));

    const sender = await connect('probeA');
    const body = 'u'.repeat(100 * 1024);
    let sent = 0;
    try {
      // Send until the simulator reports drops (kernel socket buffers absorb the first few MB).
      while (sent < 600) {
        for (let i = 0; i < 20; i++, sent++) await publish(sender, outputTopic('probeA', 'telemetry'), `${sent}:${body}`, 1);
        if ((await status()).upstream.dropped > 0) break;
      }
      const s = await status();
      expect(s.upstream.dropped).toBeGreaterThan(0);
      expect(s.upstream.bufferBytes).toBe(UPSTREAM_BOUND);
      expect(t.logs.some((l) => /warning: an upstream reader is not keeping up/.test(l))).toBe(true);

      // The slow reader catches up: every message is either delivered or counted in a dropped line.
      let slowBuf = '';
      const slowLines: string[] = [];
      slow.on('data', (d: Buffer) => {
        slowBuf += d.toString();
        const parts = slowBuf.split('\n');
        slowBuf = parts.pop()!;
        slowLines.push(...parts);
      });
      slow.resume();
      // Once it has caught up, the first thing it reads is how many it missed.
      await eventually(() => expect(slowLines.some((l) => l.startsWith('{"dropped":'))).toBe(true));
      await publish(sender, outputTopic('probeA', 'telemetry'), `${sent++}:last`, 1);
      const parsed = await eventually(() => {
        const p = slowLines.map((l) => JSON.parse(l));
        expect(p.at(-1)?.body).toBe(`${sent - 1}:last`);
        return p;
      });
      const notices = parsed.filter((p) => 'dropped' in p && !('moduleId' in p));
      expect(notices.length).toBeGreaterThanOrEqual(1);
      const droppedForSlow = notices.reduce((n, p) => n + p.dropped, 0);
      const delivered = parsed.length - notices.length;
      expect(delivered + droppedForSlow).toBe(sent);
      expect(droppedForSlow).toBe((await status()).upstream.dropped);
      // Delivered messages keep their order.
      const seq = parsed.filter((p) => 'moduleId' in p).map((p) => Number(String(p.body).split(':')[0]));
      expect(seq).toEqual([...seq].sort((a, b) => a - b));

      // The reader that kept up got everything, with no notice.
      await eventually(() => expect(fastLines.length).toBe(sent));
      expect(fastLines.some((l) => l.startsWith('{"dropped"'))).toBe(false);
    } finally {
      await end(sender);
      slow.destroy();
      fast.destroy();
    }
  });
});
