/**
 * The simulator's edgeHub and service API against a hostile module or an unauthenticated
 * caller: SAS checks (signature, expiry, resource, policy name), the per-module MQTT ACL
 * (wildcards, other modules' topics, `$iothub/#`), and auth on every service route.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import https from 'node:https';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { ConnectionOptions } from 'node:tls';
import { StateDir, EdgeHub, startServiceApi, createSas, verifySas, type ServiceBackend, type UpstreamMessage } from '@enclave-edge/edge-sim';
import { compileRoutes } from '@enclave-edge/edge-sim/routes';
import { tempDir } from './helpers.js';
import { retryUntil } from '../support/eventually.js';

const HUB = 'sec-hub.azure-devices.net';
const DEVICE = 'sec-device';
let t: ReturnType<typeof tempDir>;
let state: StateDir;
let hub: EdgeHub;
const upstream: UpstreamMessage[] = [];
const clients: MqttClient[] = [];

const resource = (m: string) => `${HUB}/devices/${DEVICE}/modules/${m}`;
const keyOf = (m: string) => state.moduleIdentity(m)!.keyBase64;

function connect(clientModule: string, password: string, user = `${HUB}/${DEVICE}/${clientModule}/?api-version=2020-09-30`): Promise<{ client: MqttClient; ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    // mqtt.js hands the TLS options (servername included) to tls.connect; its typings omit servername.
    const opts: IClientOptions & Pick<ConnectionOptions, 'servername'> = {
      clientId: `${DEVICE}/${clientModule}`, username: user, password, ca: state.caCertPem, servername: 'localhost', protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000,
    };
    const client = mqtt.connect(`mqtts://127.0.0.1:${hub.port}`, opts);
    clients.push(client);
    client.once('connect', () => resolve({ client, ok: true }));
    client.once('error', (err) => resolve({ client, ok: false, error: err.message }));
    client.once('close', () => resolve({ client, ok: false, error: 'closed' }));
  });
}

const token = (m: string, key = keyOf(m), ttlSecs = 600) => createSas(resource(m), key, { ttlSecs });

beforeAll(async () => {
  t = tempDir();
  state = await StateDir.open(join(t.dir, 'state'));
  for (const m of ['alpha', 'beta']) state.moduleIdentity(m);
  hub = new EdgeHub({
    hubHostName: HUB, deviceId: DEVICE, port: 0, tls: { key: state.serverKeyPem, cert: state.serverCertPem },
    moduleKey: (m) => state.moduleIdentity(m, false)?.keyBase64,
    routes: compileRoutes({ all: 'FROM /messages/* INTO $upstream' }),
  });
  await hub.start();
  hub.on('upstream', (m: UpstreamMessage) => upstream.push(m));
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await hub.stop();
  t.cleanup();
});

describe('simulator state on disk', () => {
  it('keys and CA/server private keys are 0600 in a 0700 folder', () => {
    expect(statSync(state.dir).mode & 0o777).toBe(0o700);
    for (const f of ['keys.json', 'ca-key.pem', 'server-key.pem']) expect(statSync(join(state.dir, f)).mode & 0o777).toBe(0o600);
  });
});

describe('SAS tokens', () => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const res = (r: string) => r === 'h/devices/d/modules/m';
  it('accepts a good token and refuses a tampered, expired, re-targeted or wrong-key token', () => {
    const good = createSas('h/devices/d/modules/m', key, { ttlSecs: 60 });
    expect(verifySas(good, key, res).ok).toBe(true);
    const sig = /sig=([^&]+)/.exec(good)![1]!;
    const flipped = good.replace(sig, encodeURIComponent(Buffer.from(Buffer.from(decodeURIComponent(sig), 'base64').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64')));
    expect(verifySas(flipped, key, res)).toMatchObject({ ok: false, reason: 'signature does not match' });
    expect(verifySas(createSas('h/devices/d/modules/m', key, { expiry: Math.floor(Date.now() / 1000) - 1 }), key, res)).toMatchObject({ ok: false, reason: 'token expired' });
    // extending se without re-signing breaks the signature
    const extended = good.replace(/se=(\d+)/, (_m, se) => `se=${Number(se) + 3600}`);
    expect(verifySas(extended, key, res).ok).toBe(false);
    expect(verifySas(createSas('h/devices/d/modules/other', key), key, res).ok).toBe(false);
    expect(verifySas(good, Buffer.alloc(32, 8).toString('base64'), res).ok).toBe(false);
    expect(verifySas(good.replace(/sig=[^&]+/, 'sig='), key, res).ok).toBe(false);
    expect(verifySas(undefined, key, res).ok).toBe(false);
  });
});

describe('edgeHub authentication', () => {
  it('a module connects with its own token only', async () => {
    expect((await connect('alpha', token('alpha'))).ok).toBe(true);
    expect((await connect('alpha', token('alpha', keyOf('beta')))).ok).toBe(false); // beta's key, alpha's identity
    expect((await connect('alpha', token('beta'))).ok).toBe(false); // beta's token presented as alpha
    expect((await connect('alpha', createSas(resource('alpha'), keyOf('alpha'), { expiry: Math.floor(Date.now() / 1000) - 5 }))).ok).toBe(false);
    expect((await connect('ghost', token('alpha'))).ok).toBe(false); // unknown identity
    expect((await connect('alpha', token('alpha'), `${HUB}/${DEVICE}/beta/`)).ok).toBe(false); // user name of another module
  });
});

describe('edgeHub ACL', () => {
  it('refuses wildcard and foreign subscriptions; only the module\'s own inputs, methods and twin topics', async () => {
    const { client, ok } = await connect('alpha', token('alpha'));
    expect(ok).toBe(true);
    const sub = (topic: string) => new Promise<number>((resolve) => client.subscribe(topic, { qos: 1 }, (_e, granted) => resolve(granted?.[0]?.qos ?? -1)));
    for (const topic of ['#', '+/#', '$iothub/#', '$iothub/+/#', `devices/${DEVICE}/modules/beta/inputs/#`, `devices/${DEVICE}/modules/+/inputs/#`, `devices/${DEVICE}/modules/beta/#`, '$iothub/methods/#']) {
      expect({ topic, qos: await sub(topic) }).toEqual({ topic, qos: 128 });
    }
    expect(await sub(`devices/${DEVICE}/modules/alpha/inputs/#`)).not.toBe(128);
    expect(await sub('$iothub/methods/POST/#')).not.toBe(128);
  });

  it('a module cannot publish events as another module, and cannot spoof its connection identity', async () => {
    const { client: a } = await connect('alpha', token('alpha'));
    const before = upstream.length;
    await new Promise<void>((resolve) => a.publish(`devices/${DEVICE}/modules/alpha/messages/events/%24.cdid=evil&%24.cmid=beta&k=v`, 'mine', { qos: 1 }, () => resolve()));
    // A marker from the same connection comes after what must already be there (one ordered stream).
    const marker = async (c: MqttClient, body: string) => {
      c.publish(`devices/${DEVICE}/modules/alpha/messages/events/`, body, { qos: 1 });
      await retryUntil(() => expect(upstream.some((m) => m.body.toString() === body)).toBe(true), 20_000, 20);
    };
    await marker(a, 'marker-1');
    expect(upstream.slice(before).filter((m) => m.body.toString() === 'mine').map((m) => [m.moduleId, m.systemProperties['$.cmid'], m.systemProperties['$.cdid']])).toEqual([['alpha', 'alpha', DEVICE]]);
    const { client: a2 } = await connect('alpha', token('alpha'));
    const closed = new Promise<void>((resolve) => a2.once('close', () => resolve()));
    a2.publish(`devices/${DEVICE}/modules/beta/messages/events/`, 'forged', { qos: 1 });
    await closed; // refused publishes end the connection (MQTT 3.1.1 has no PUBACK error)
    // The refusal happened while a2's publish was handled; a marker sent after it has come through.
    const { client: a3 } = await connect('alpha', token('alpha'));
    await marker(a3, 'marker-2');
    a3.end(true);
    expect(upstream.some((m) => m.body.toString() === 'forged')).toBe(false);
  });
});

describe('service API: every route needs the iothubowner SAS', () => {
  let api: { port: number; close(): Promise<void> };
  const backend: ServiceBackend = {
    hubHostName: HUB, deviceId: DEVICE, hubKey: Buffer.alloc(32, 3).toString('base64'),
    moduleKey: (m) => (m === 'alpha' ? Buffer.alloc(32, 4).toString('base64') : undefined),
    knownModule: (m) => m === 'alpha',
    invokeMethod: async () => ({ status: 200, payload: { ran: true } }),
    getTwin: () => ({ properties: {} }),
    patchTwin: () => ({ properties: {} }),
    applyConfiguration: async () => undefined,
    onUpstream: () => () => undefined,
    status: () => ({ ok: true }),
  };
  const routes: Array<[string, string, unknown?]> = [
    ['POST', `/twins/${DEVICE}/modules/alpha/methods`, { methodName: 'x', payload: {} }],
    ['GET', `/twins/${DEVICE}/modules/alpha`],
    ['PATCH', `/twins/${DEVICE}/modules/alpha`, { properties: { desired: { a: 1 } } }],
    ['POST', `/devices/${DEVICE}/applyConfigurationContent`, { modulesContent: {} }],
    ['PUT', '/configurations/c1', { content: { modulesContent: {} } }],
    ['GET', '/edge-sim/upstream'],
    ['GET', '/edge-sim/status'],
    ['GET', '/no/such/route'],
  ];
  const call = (method: string, path: string, auth?: string, body?: unknown, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request({ host: '127.0.0.1', port: api.port, method, path, ca: state.caCertPem, servername: 'localhost', headers: { ...(auth ? { authorization: auth } : {}), ...(data ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        res.destroy();
      });
      req.on('error', reject);
      req.end(data);
    });
  const hubSas = (skn = 'iothubowner', key = backend.hubKey, expiry?: number) => createSas(HUB, key, { keyName: skn, ...(expiry ? { expiry } : {}) });

  beforeAll(async () => {
    api = await startServiceApi(backend, { tls: { key: state.serverKeyPem, cert: state.serverCertPem }, port: 0 });
  });
  afterAll(() => api.close());

  it('no token, a wrong key, another policy name or an expired token: 401 on every route', async () => {
    for (const [m, p, b] of routes) {
      expect({ m, p, s: await call(m, p, undefined, b) }).toEqual({ m, p, s: 401 });
      expect({ m, p, s: await call(m, p, hubSas('iothubowner', Buffer.alloc(32, 9).toString('base64')), b) }).toEqual({ m, p, s: 401 });
      expect({ m, p, s: await call(m, p, hubSas('service'), b) }).toEqual({ m, p, s: 401 });
      expect({ m, p, s: await call(m, p, hubSas('iothubowner', backend.hubKey, Math.floor(Date.now() / 1000) - 1), b) }).toEqual({ m, p, s: 401 });
    }
    expect(await call('GET', '/edge-sim/status', hubSas())).toBe(200);
  });

  it('module credentials may invoke methods but reach no twin, deployment, stream or status route', async () => {
    const modSas = createSas(`${HUB}/devices/${DEVICE}/modules/alpha`, backend.moduleKey('alpha')!);
    const h = { 'x-ms-edge-moduleId': `${DEVICE}/alpha` };
    expect(await call('POST', `/twins/${DEVICE}/modules/alpha/methods`, modSas, { methodName: 'x', payload: {} }, h)).toBe(200);
    for (const [m, p, b] of routes.slice(1, -1)) expect({ p, s: await call(m, p, modSas, b, h) }).toEqual({ p, s: 401 });
    // a module token presented without the module header is not a hub token
    expect(await call('GET', '/edge-sim/status', modSas)).toBe(401);
    // a module header naming another module with this token
    expect(await call('POST', `/twins/${DEVICE}/modules/alpha/methods`, modSas, { methodName: 'x' }, { 'x-ms-edge-moduleId': `${DEVICE}/beta` })).toBe(401);
  });
});
