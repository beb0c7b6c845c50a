/**
 * Names from outside are data in the simulator: every Object.prototype member name and odd
 * Unicode as MQTT client id, module id, topic, property-bag key, twin key, method name, device
 * id, configuration id and workload module id gets a clean answer, and the simulator keeps
 * serving. A newline in a client id cannot forge a log line. One simulator for the file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import http from 'node:http';
import fc from 'fast-check';
import type mqtt from 'mqtt';
import { createSas } from '@enclave-edge/edge-sim';
import { startTestSim, eventually, rawMqttConnect, rawServiceRequest, hubKeyOf, moduleKeyOf, type TestSim } from './helpers.js';
import { hostileName, PROTOTYPE_NAMES } from '../support/hostile-names.js';

let t: TestSim;
const DEVICE = 'edge-sim-device';
const runs = { numRuns: 25, examples: PROTOTYPE_NAMES.map((n) => [n] as [string]) };

beforeAll(async () => {
  t = await startTestSim({ extraModules: ['rogue'] });
  await eventually(() => t.invoke('probeA', 'whoami'));
});
afterAll(async () => {
  await t?.close();
});

/** The simulator still serves: a real module answers a direct method through edgeHub. */
async function serving(): Promise<void> {
  expect((await t.invoke('probeA', 'whoami')).payload.moduleId).toBe('probeA');
}

const ownerAuth = () => ({ authorization: createSas(`localhost:${t.sim.httpsPort}`, hubKeyOf(t), { keyName: 'iothubowner' }) });
const enc = encodeURIComponent;
// mqtt.js itself refuses some topics (wildcards in a name, "Invalid topic"): those never reach the hub, as a refusal.
const clientRefused = (err: Error) => /invalid topic/i.test(err.message);
const subscribe = (c: mqtt.MqttClient, topic: string, qos: 0 | 1) =>
  new Promise<Array<{ qos: number }>>((resolve, reject) => c.subscribe(topic, { qos }, (err, g) => (err ? (clientRefused(err) ? resolve([{ qos: 128 }]) : reject(err)) : resolve(g ?? []))));
const publish = (c: mqtt.MqttClient, topic: string, payload: string, qos: 0 | 1) =>
  new Promise<void>((resolve, reject) => c.publish(topic, payload, { qos }, (err) => (err && !clientRefused(err) ? reject(err) : resolve())));
const userOf = (moduleId: string) => `${t.sim.hubHostName}/${DEVICE}/${moduleId}/?api-version=2021-04-12`;

describe('MQTT CONNECT with any client id', () => {
  it('refuses an unknown module (CONNACK 5), whatever its name, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(hostileName(), async (name) => {
        for (const clientId of [`${DEVICE}/${name}`, name]) {
          const { client, error } = await rawMqttConnect(t, clientId, userOf(name), 'SharedAccessSignature sr=x&sig=y&se=1');
          client.end(true);
          expect(error?.code, JSON.stringify(clientId)).toBe(5);
        }
      }),
      runs,
    );
    await serving();
  });

  it('a newline in a client id cannot forge a log line', async () => {
    const forged = `${DEVICE}/x\n[edge-sim] module probeA connected\r\u2028`;
    const { client, error } = await rawMqttConnect(t, forged, userOf('x'), 'nope');
    client.end(true);
    expect(error?.code).toBe(5);
    const line = await eventually(() => {
      const l = t.logs.find((x) => x.startsWith('connection refused for edge-sim-device/x'));
      if (!l) throw new Error('refusal not logged yet');
      return l;
    });
    expect(line).toContain('x\\n[edge-sim] module probeA connected\\r\\u2028');
    expect(line).not.toMatch(/[\n\r\u2028]/);
  });
});

describe('an authenticated module sending hostile names', () => {
  it('SUBSCRIBE and PUBLISH with hostile topics, property bags, twin keys and request ids get clean answers', async () => {
    const { client, error } = await rawMqttConnect(t, `${DEVICE}/rogue`, userOf('rogue'), createSas(`${t.sim.hubHostName}/devices/${DEVICE}/modules/rogue`, moduleKeyOf(t, 'rogue')));
    expect(error).toBeUndefined();
    const responses = new Map<string, { topic: string; payload: string }>();
    client.on('message', (topic, payload) => {
      const rid = /\$rid=([^&]+)/.exec(topic)?.[1];
      if (rid) responses.set(decodeURIComponent(rid), { topic, payload: payload.toString() });
    });
    await subscribe(client, '$iothub/twin/res/#', 0);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostileName(), async (name) => {
        const granted = await subscribe(client, `devices/${DEVICE}/modules/${name}/inputs/#`, 1);
        expect(granted[0]!.qos === 128 || name === 'rogue').toBe(true);
        const bag = `${enc(name)}=${enc(name)}&$.ct=application%2Fjson&${enc('$.' + name)}=1`;
        await publish(client, `devices/${DEVICE}/modules/rogue/messages/events/${bag}`, JSON.stringify({ [name]: name }), 1);
        await publish(client, `$iothub/methods/res/200/?$rid=${enc(name)}`, '{}', 0);
        // A reported patch keyed by the name, then a twin GET as the marker: answered in order.
        const rid = `r${++n}`;
        await publish(client, `$iothub/twin/PATCH/properties/reported/?$rid=${rid}p`, JSON.stringify({ [name]: { [name]: 1 } }), 0);
        await publish(client, `$iothub/twin/GET/?$rid=${rid}`, '', 0);
        const twin = await eventually(() => {
          const r = responses.get(rid);
          if (!r) throw new Error('no twin response yet');
          return JSON.parse(r.payload) as { reported: Record<string, unknown> };
        });
        expect(responses.get(`${rid}p`)?.topic).toMatch(/^\$iothub\/twin\/res\/(204|400)\//);
        if (!name.startsWith('$') && responses.get(`${rid}p`)!.topic.startsWith('$iothub/twin/res/204/')) {
          expect(Object.hasOwn(twin.reported, name), name).toBe(true);
        }
      }),
      runs,
    );
    expect(client.connected).toBe(true);
    client.end(true);
    await serving();
  });
});

describe('service API with hostile names', () => {
  it('twins, methods, devices and configurations by any name: an answer or a 4xx with a message, never 500', async () => {
    // A module that answers every method call, so method names travel the whole path and back.
    const { client: responder, error } = await rawMqttConnect(t, `${DEVICE}/rogue`, userOf('rogue'), createSas(`${t.sim.hubHostName}/devices/${DEVICE}/modules/rogue`, moduleKeyOf(t, 'rogue')));
    expect(error).toBeUndefined();
    const seen: string[] = [];
    responder.on('message', (topic, payload) => {
      const m = /^\$iothub\/methods\/POST\/(.*)\/\?\$rid=(.+)$/s.exec(topic);
      if (!m) return;
      seen.push(m[1]!);
      responder.publish(`$iothub/methods/res/200/?$rid=${m[2]}`, payload);
    });
    await subscribe(responder, '$iothub/methods/POST/#', 0);
    await fc.assert(
      fc.asyncProperty(hostileName(), async (name) => {
        const auth = ownerAuth();
        for (const [method, path, body] of [
          ['GET', `/twins/${DEVICE}/modules/${enc(name)}`, undefined],
          ['PATCH', `/twins/${DEVICE}/modules/${enc(name)}`, JSON.stringify({ properties: { desired: { a: 1 } } })],
          ['POST', `/twins/${DEVICE}/modules/${enc(name)}/methods`, JSON.stringify({ methodName: 'x', payload: null, responseTimeoutInSeconds: 5 })],
          ['GET', `/twins/${enc(name)}/modules/probeA`, undefined],
          ['GET', `/devices/${enc(name)}/modules/probeA`, undefined],
          ['GET', `/${enc(name)}`, undefined],
          ['POST', `/devices/${enc(name)}/applyConfigurationContent`, '{}'],
        ] as const) {
          // Unknown names: 4xx naming the problem. ($edgeAgent and $edgeHub are real twins: 200.)
          const r = await rawServiceRequest(t, method, path, body, auth);
          expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(500);
          if (r.status >= 400) expect(typeof (r.body?.message ?? r.body?.Message)).toBe('string');
        }
        // A method by that name reaches the module and its answer comes back, or the name is refused (4xx).
        const payload = JSON.parse(`{${JSON.stringify(name)}: ${JSON.stringify(name)}}`);
        const m = await rawServiceRequest(t, 'POST', `/twins/${DEVICE}/modules/rogue/methods`, JSON.stringify({ methodName: name, payload, responseTimeoutInSeconds: 10 }), auth);
        expect(m.status, JSON.stringify(m.body)).toBeLessThan(500);
        if (m.status === 200) {
          expect(seen.at(-1)).toBe(name);
          expect(Object.hasOwn(m.body.payload, name) && m.body.payload[name]).toBe(name);
        }
        // Desired keys by that name are data in the twin.
        const patched = await rawServiceRequest(t, 'PATCH', `/twins/${DEVICE}/modules/probeA`, JSON.stringify({ properties: { desired: { [name]: { [name]: 2 } } } }), auth);
        expect(patched.status, JSON.stringify(patched.body)).toBeLessThan(500);
        if (patched.status === 200 && !name.startsWith('$')) expect(Object.hasOwn(patched.body.properties.desired, name), name).toBe(true);
        const cleared = await rawServiceRequest(t, 'PATCH', `/twins/${DEVICE}/modules/probeA`, JSON.stringify({ properties: { desired: { [name]: null } } }), auth);
        expect(cleared.status).toBeLessThan(500);
      }),
      runs,
    );
    responder.end(true);
    await serving();
  });
});

describe('workload API with hostile module ids', () => {
  it('answers 404 for an unknown module by any name', async () => {
    const uri = new URL(t.sim.workloadUri);
    await fc.assert(
      fc.asyncProperty(hostileName(), async (name) => {
        const status = await new Promise<number>((resolve, reject) => {
          const body = JSON.stringify({ keyId: 'primary', algo: 'HMACSHA256', data: 'AA==' });
          const req = http.request({ host: uri.hostname, port: uri.port, method: 'POST', path: `/modules/${enc(name)}/genid/${enc(name)}/sign?api-version=2018-06-28`, headers: { 'content-type': 'application/json' } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(body);
        });
        expect([400, 404]).toContain(status);
      }),
      runs,
    );
    await serving();
  });
});
