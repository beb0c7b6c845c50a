/**
 * Authentication and isolation: SAS tokens on CONNECT (good / wrong key / expired), the per-module
 * ACL (no subscribing to another module's inputs, `$iothub/*` delivered only to its module),
 * and the service API's 401 / 400 answers.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import type mqtt from 'mqtt';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { createSas } from '@enclave-edge/edge-sim';
import { HubClient } from '@enclave-edge/hub-client';
import { startTestSim, eventually, rawMqttConnect, rawServiceRequest, hubKeyOf, moduleKeyOf, type TestSim } from './helpers.js';

let t: TestSim;
const DEVICE = 'edge-sim-device';

beforeAll(async () => {
  t = await startTestSim({ extraModules: ['rogue'] });
  await eventually(() => t.invoke('probeB', 'whoami'));
  await eventually(() => t.invoke('probeA', 'whoami')); // one test sends from probeA
});

afterAll(async () => {
  await t?.close();
});

const keyOf = (moduleId: string) => moduleKeyOf(t, moduleId);
const rawConnect = (moduleId: string, password: string) => rawMqttConnect(t, `${DEVICE}/${moduleId}`, `${t.sim.hubHostName}/${DEVICE}/${moduleId}/?api-version=2021-04-12`, password);

const resource = (m: string) => `${t.sim.hubHostName}/devices/${DEVICE}/modules/${m}`;

describe('SAS authentication on CONNECT', () => {
  it('accepts a valid token', async () => {
    const { client, error } = await rawConnect('rogue', createSas(resource('rogue'), keyOf('rogue')));
    expect(error).toBeUndefined();
    expect(client.connected).toBe(true);
    client.end(true);
  });

  it('refuses a token signed with the wrong key: CONNACK 5 (not authorized)', async () => {
    const { client, error } = await rawConnect('rogue', createSas(resource('rogue'), randomBytes(32).toString('base64')));
    expect(error?.code).toBe(5);
    client.end(true);
  });

  it('refuses an expired token: CONNACK 5', async () => {
    const { client, error } = await rawConnect('rogue', createSas(resource('rogue'), keyOf('rogue'), { expiry: Math.floor(Date.now() / 1000) - 10 }));
    expect(error?.code).toBe(5);
    client.end(true);
  });

  it("refuses another module's token for this client id", async () => {
    const { client, error } = await rawConnect('rogue', createSas(resource('probeB'), keyOf('probeB')));
    expect(error?.code).toBe(5);
    client.end(true);
  });

  it('makes the unmodified SDK fail to open with a wrong key', async () => {
    const cs = t.sim.moduleConnectionString('rogue').replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${randomBytes(32).toString('base64')}`);
    const client = device.ModuleClient.fromConnectionString(cs, deviceMqtt.Mqtt);
    client.setOptions({ ca: t.ca });
    await expect(client.open()).rejects.toThrow(/authoriz/i);
    await client.close().catch(() => {});
  });
});

describe('ACL: a module only reaches its own topics', () => {
  it("cannot subscribe to another module's inputs (SUBACK 128) nor receive them", async () => {
    const { client } = await rawConnect('rogue', createSas(resource('rogue'), keyOf('rogue')));
    const granted = await new Promise<mqtt.ISubscriptionGrant[]>((resolve, reject) =>
      client.subscribe(`devices/${DEVICE}/modules/probeB/inputs/#`, { qos: 1 }, (err, g) => (err ? reject(err) : resolve(g))),
    );
    expect(granted[0]!.qos).toBe(128);
    const own = await new Promise<mqtt.ISubscriptionGrant[]>((resolve, reject) =>
      client.subscribe(`devices/${DEVICE}/modules/rogue/inputs/#`, { qos: 1 }, (err, g) => (err ? reject(err) : resolve(g))),
    );
    expect(own[0]!.qos).toBe(1);
    const received: string[] = [];
    client.on('message', (topic) => received.push(topic));
    await t.invoke('probeA', 'send', { messages: [{ output: 'toB', body: 'for B only' }] });
    await eventually(async () => expect(((await t.invoke('probeB', 'inputs')).payload as any[]).some((m) => m.body === 'for B only')).toBe(true));
    expect(received).toEqual([]);
    client.end(true);
  });

  it("does not receive another module's method calls even when subscribed to $iothub/methods", async () => {
    const { client } = await rawConnect('rogue', createSas(resource('rogue'), keyOf('rogue')));
    const received: string[] = [];
    client.on('message', (topic) => {
      received.push(topic);
      const rid = /\$rid=(.+)$/.exec(topic)?.[1];
      if (topic.startsWith('$iothub/methods/POST/marker/') && rid) client.publish(`$iothub/methods/res/200/?$rid=${rid}`, '"marker"');
    });
    await new Promise<void>((resolve, reject) => client.subscribe('$iothub/methods/POST/#', { qos: 0 }, (err) => (err ? reject(err) : resolve())));
    const r = await t.invoke('probeB', 'echo', { to: 'B' });
    expect(r).toEqual({ status: 200, payload: { to: 'B' } });
    // A call to rogue itself, made after probeB's, reaches it after anything of probeB's would have.
    expect(await t.invoke('rogue', 'marker')).toEqual({ status: 200, payload: 'marker' });
    expect(received.map((topic) => topic.split('/?')[0])).toEqual(['$iothub/methods/POST/marker']);
    // And it cannot answer for probeB: a forged response for a guessed request id is ignored.
    client.publish('$iothub/methods/res/200/?$rid=1', '{"forged":true}');
    expect(await t.invoke('probeB', 'echo', 'real')).toEqual({ status: 200, payload: 'real' });
    client.end(true);
  });

  it("is disconnected when it publishes on another module's topics", async () => {
    const { client } = await rawConnect('rogue', createSas(resource('rogue'), keyOf('rogue')));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(`devices/${DEVICE}/modules/probeB/messages/events/`, 'spoofed', { qos: 1 });
    await closed;
    expect(client.connected).toBe(false);
    client.end(true);
  });
});

describe('message size', () => {
  it('refuses a message over 256 KiB (IoT Hub limit) by closing the connection', async () => {
    const { client } = await rawConnect('rogue', createSas(resource('rogue'), keyOf('rogue')));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(`devices/${DEVICE}/modules/rogue/messages/events/`, Buffer.alloc(256 * 1024 + 1), { qos: 1 });
    await closed;
    expect(t.logs.some((l) => /message from rogue refused: 262145 bytes/.test(l))).toBe(true);
    client.end(true);
  });
});

describe('service API authorization and validation', () => {
  it('answers 401 to a wrong key and to a missing Authorization header', async () => {
    const bad = HubClient.fromConnectionString(t.sim.serviceConnectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${randomBytes(32).toString('base64')}`), { ca: t.ca });
    await expect(bad.getModuleTwin(DEVICE, 'probeA')).rejects.toMatchObject({ code: 'ACCESS_DENIED', detail: { httpStatus: 401 } });
    bad.close();
    const r = await rawRequest('GET', `/twins/${DEVICE}/modules/probeA`, undefined, {});
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/missing Authorization/);
  });

  it('answers 400 with a message to a malformed body', async () => {
    const auth = { authorization: createSas(`localhost:${t.sim.httpsPort}`, keyOfHub(), { keyName: 'iothubowner' }) };
    const notJson = await rawRequest('POST', `/twins/${DEVICE}/modules/probeA/methods`, '{nope', auth);
    expect(notJson.status).toBe(400);
    expect(notJson.body.message).toMatch(/not JSON/);
    const noName = await rawRequest('POST', `/twins/${DEVICE}/modules/probeA/methods`, JSON.stringify({ payload: 1 }), auth);
    expect(noName.status).toBe(400);
    expect(noName.body.message).toMatch(/methodName/);
    const badPatch = await rawRequest('PATCH', `/twins/${DEVICE}/modules/probeA`, JSON.stringify({ properties: { desired: 5 } }), auth);
    expect(badPatch.status).toBe(400);
    expect(badPatch.body.message).toMatch(/properties\.desired/);
  });

  it('refuses module credentials for anything but methods', async () => {
    const auth = { authorization: createSas(resource('rogue'), keyOf('rogue')), 'x-ms-edge-moduleid': `${DEVICE}/rogue` };
    const r = await rawRequest('GET', `/twins/${DEVICE}/modules/probeA`, undefined, auth);
    expect(r.status).toBe(401);
  });
});

const keyOfHub = () => hubKeyOf(t);
const rawRequest = (method: string, path: string, body: string | undefined, headers: Record<string, string>) => rawServiceRequest(t, method, path, body, headers);
