/**
 * The simulator against the unmodified azure-iot-device SDK in child processes: routes, property
 * bags, WHERE filters, upstream, direct methods (service API and module-to-module), twins,
 * store-and-forward, restart policy, and both environment styles (IOTEDGE_* / connection string).
 */
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { startTestSim, eventually, spawnProbe, type TestSim } from './helpers.js';
import type { UpstreamEvent } from '@enclave-edge/hub-client';
import { statSync } from 'node:fs';
import { join } from 'node:path';

let t: TestSim;

beforeAll(async () => {
  t = await startTestSim();
  await eventually(() => t.invoke('probeA', 'whoami'));
  await eventually(() => t.invoke('probeB', 'whoami'));
});

afterAll(async () => {
  await t?.close();
});

const sendFromA = (messages: unknown[]) => t.invoke('probeA', 'send', { messages });
const inputsOfB = async () => (await t.invoke('probeB', 'inputs')).payload as Array<Record<string, any>>;

describe('modules started from the manifest (ModuleClient.fromEnvironment with IOTEDGE_*)', () => {
  it('run with the manifest env and their own module identity', async () => {
    expect((await t.invoke('probeA', 'whoami')).payload).toEqual({ moduleId: 'probeA', env: 'a-1' });
    expect((await t.invoke('probeB', 'whoami')).payload).toEqual({ moduleId: 'probeB', env: 'b-1' });
  });

  it('get the IOTEDGE_* environment edgeAgent gives, a data folder, and nothing else of the parent', async () => {
    const env = (await t.invoke('probeA', 'env')).payload as Record<string, string>;
    expect(env).toMatchObject({
      IOTEDGE_DEVICEID: 'edge-sim-device',
      IOTEDGE_MODULEID: 'probeA',
      IOTEDGE_IOTHUBHOSTNAME: t.sim.hubHostName,
      IOTEDGE_GATEWAYHOSTNAME: `localhost:${t.sim.mqttPort}`,
      IOTEDGE_AUTHSCHEME: 'sasToken',
      IOTEDGE_WORKLOADURI: t.sim.workloadUri,
      EDGESIM_GATEWAY_HTTPS_PORT: String(t.sim.httpsPort),
      PROBE_TAG: 'a-1',
    });
    expect(env.IOTEDGE_MODULEGENERATIONID).toMatch(/.+/);
    expect(env.EDGESIM_MODULE_STATE_DIR).toBe(join(t.stateDir, 'modules', 'probeA'));
    expect(statSync(env.EDGESIM_MODULE_STATE_DIR!).isDirectory()).toBe(true);
    expect(env.VITEST).toBeUndefined();
  });

  it('skips an image it cannot run, with a warning naming it', () => {
    expect(t.logs.some((l) => l.includes('example.azurecr.io/not-local:1.0'))).toBe(true);
    expect(t.sim.supervisor.status().map((s) => s.name)).not.toContain('otherImage');
  });
});

describe('routes', () => {
  it('delivers output → route → input with the property bag intact', async () => {
    await sendFromA([
      {
        output: 'toB',
        body: { n: 1 },
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        messageId: 'mid-1',
        correlationId: 'cid-1',
        properties: { plain: 'v', tricky: 'a b&c=d/é?%' },
      },
    ]);
    const got = await eventually(async () => {
      const ins = (await inputsOfB()).filter((m) => m.input === 'in1');
      expect(ins.length).toBe(1);
      return ins[0]!;
    });
    expect(JSON.parse(got.body)).toEqual({ n: 1 });
    expect(got.messageId).toBe('mid-1');
    expect(got.correlationId).toBe('cid-1');
    expect(got.contentType).toBe('application/json');
    expect(got.contentEncoding).toBe('utf-8');
    expect(got.properties.plain).toBe('v');
    expect(got.properties.tricky).toBe('a b&c=d/é?%');
    // edgeHub stamps the connection's device and module on routed messages.
    expect(got.properties['$.cdid']).toBe('edge-sim-device');
    expect(got.properties['$.cmid']).toBe('probeA');
  });

  it('applies WHERE conditions on application and system properties', async () => {
    await sendFromA([
      { output: 'levels', body: { i: 'low' }, contentType: 'application/json', properties: { level: 'low' } },
      { output: 'levels', body: { i: 'high-text' }, contentType: 'text/plain', properties: { level: 'high' } },
      { output: 'levels', body: { i: 'high' }, contentType: 'application/json', properties: { level: 'high' } },
      { output: 'levels', body: { i: 'none' }, contentType: 'application/json' },
    ]);
    await eventually(async () => {
      const high = (await inputsOfB()).filter((m) => m.input === 'high');
      expect(high.map((m) => JSON.parse(m.body).i)).toEqual(['high']);
    });
    // Give stragglers a chance to show up wrongly.
    await sendFromA([{ output: 'toB', body: 'marker' }]);
    await eventually(async () => expect((await inputsOfB()).some((m) => m.body === 'marker')).toBe(true));
    expect((await inputsOfB()).filter((m) => m.input === 'high')).toHaveLength(1);
  });

  it('streams $upstream messages with module, output, properties and body', async () => {
    const ac = new AbortController();
    const seen: UpstreamEvent[] = [];
    const reader = (async () => {
      for await (const e of t.hub.streamUpstream({ signal: ac.signal })) {
        seen.push(e);
        if (e.properties.seq === '2') break;
      }
    })();
    // The stream is open once a marker sent through it arrives (resent until it does).
    await eventually(async () => {
      await sendFromA([{ output: 'telemetry', body: 'open?', properties: { seq: 'open' } }]);
      await vi.waitUntil(() => seen.some((e) => e.properties.seq === 'open'), { timeout: 500, interval: 10 });
    });
    await sendFromA([
      { output: 'telemetry', body: { temp: 21.5 }, contentType: 'application/json', properties: { seq: '1' } },
      { output: 'toB', body: 'not upstream' },
      { output: 'telemetry', body: 'plain text', properties: { seq: '2' } },
    ]);
    await reader;
    ac.abort();
    const after = seen.filter((e) => e.properties.seq !== 'open');
    expect(after.map((e) => e.properties.seq)).toEqual(['1', '2']);
    expect(after[0]).toMatchObject({ deviceId: 'edge-sim-device', moduleId: 'probeA', output: 'telemetry', body: { temp: 21.5 } });
    expect(after[0]!.systemProperties['$.ct']).toBe('application/json');
    expect(after[1]!.body).toBe('plain text');
  });
});

describe('direct methods', () => {
  it('round-trips payload and status through the service API', async () => {
    expect(await t.invoke('probeA', 'echo', { deep: [1, { x: 'y' }] })).toEqual({ status: 200, payload: { deep: [1, { x: 'y' }] } });
    expect(await t.invoke('probeA', 'fail')).toEqual({ status: 500, payload: { error: 'asked to fail' } });
  });

  it('answers 404103 for a module that is not connected, 404 for an unknown module', async () => {
    await expect(t.invoke('probeLate', 'echo')).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', detail: { httpStatus: 404, errorCode: 404103 } });
    const t0 = Date.now();
    await expect(t.hub.invokeModuleMethod('edge-sim-device', 'probeLate', { methodName: 'echo', connectTimeoutInSeconds: 0.5 })).rejects.toMatchObject({
      detail: { errorCode: 404103 },
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    await expect(t.invoke('nobody', 'echo')).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', detail: { httpStatus: 404 } });
  });

  it('answers 504101 when the module has no handler and never answers', async () => {
    await expect(t.invoke('probeA', 'noSuchHandler', null, 1)).rejects.toMatchObject({ code: 'TIMEOUT', detail: { httpStatus: 504, errorCode: 504101 } });
  });

  it('serves module-to-module invokeMethod over HTTPS with the module SAS', async () => {
    const r = await t.invoke('probeA', 'invokeOther', { deviceId: 'edge-sim-device', moduleId: 'probeB', methodName: 'echo', payload: { via: 'A' } });
    expect(r.payload).toEqual({ ok: true, result: { status: 200, payload: { via: 'A' } } });
    const missing = await t.invoke('probeA', 'invokeOther', { deviceId: 'edge-sim-device', moduleId: 'probeLate', methodName: 'echo', payload: null });
    expect(missing.payload).toMatchObject({ ok: false, statusCode: 404 });
  });
});

describe('module twins', () => {
  it('seeds desired properties from the manifest and never answers a GET with an empty body', async () => {
    const r = await t.invoke('probeA', 'freshTwin');
    expect(r.payload.desired).toMatchObject({ greeting: 'hello', nested: { x: 1 } });
    expect(typeof r.payload.desired.$version).toBe('number');
    // probeB has no desired properties in the manifest: still a full document.
    const b = await t.invoke('probeB', 'freshTwin');
    expect(b.payload.desired.$version).toBeGreaterThanOrEqual(1);
    expect(b.payload.reported.$version).toBeGreaterThanOrEqual(1);
  });

  it('stores reported properties with a new version', async () => {
    const before = (await t.hub.getModuleTwin('edge-sim-device', 'probeA')) as any;
    await t.invoke('probeA', 'report', { firmware: '1.2.3', nested: { ok: true } });
    const after = (await t.hub.getModuleTwin('edge-sim-device', 'probeA')) as any;
    expect(after.properties.reported).toMatchObject({ firmware: '1.2.3', nested: { ok: true } });
    expect(after.properties.reported.$version).toBe(before.properties.reported.$version + 1);
    expect(after.connectionState).toBe('Connected');
  });

  it('pushes a desired patch from the service API to the running module', async () => {
    const tw = (await t.hub.updateModuleTwin('edge-sim-device', 'probeA', { properties: { desired: { greeting: 'patched', nested: null } } })) as any;
    expect(tw.properties.desired.greeting).toBe('patched');
    expect(tw.properties.desired.nested).toBeUndefined();
    await eventually(async () => {
      const r = await t.invoke('probeA', 'twin');
      expect(r.payload.patches.some((p: any) => p.greeting === 'patched' && p.nested === null)).toBe(true);
    });
  });
});

describe('store and forward, connection-string modules', () => {
  it('keeps messages for a module that is not connected and delivers them in order when it connects', async () => {
    await sendFromA([1, 2, 3, 4, 5].map((i) => ({ output: 'toLate', body: `m${i}` })));
    await eventually(() => expect(t.sim.hub.pendingForwarding()).toBeGreaterThanOrEqual(5));
    // probeLate runs outside the simulator with a connection string + CA file, as iotedgehubdev's
    // single-module mode does (and as `enclave-edge sim module-credentials` prints).
    const late = spawnProbe({
      EdgeHubConnectionString: t.sim.moduleConnectionString('probeLate'),
      EdgeModuleCACertificateFile: t.sim.caCertPath,
      EDGESIM_GATEWAY_HTTPS_PORT: String(t.sim.httpsPort),
      PROBE_NAME: 'probeLate',
    });
    try {
      // connectTimeoutInSeconds: the call waits for the module to connect, as IoT Hub does.
      const who = await t.hub.invokeModuleMethod('edge-sim-device', 'probeLate', { methodName: 'whoami', connectTimeoutInSeconds: 30, responseTimeoutInSeconds: 10 });
      expect(who.payload).toMatchObject({ moduleId: 'probeLate' });
      const got = await eventually(async () => {
        const ins = (await t.invoke('probeLate', 'inputs')).payload as Array<{ input: string; body: string }>;
        expect(ins.length).toBe(5);
        return ins;
      });
      expect(got.map((m) => m.body)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
      expect(new Set(got.map((m) => m.input))).toEqual(new Set(['queued']));
      expect(t.sim.hub.pendingForwarding()).toBe(0);
      // Connected now: new messages go straight through.
      await sendFromA([{ output: 'toLate', body: 'm6' }]);
      await eventually(async () => expect(((await t.invoke('probeLate', 'inputs')).payload as unknown[]).length).toBe(6));
    } finally {
      await late.stop();
    }
  });

  it('drops stored messages whose time to live has run out', async () => {
    const { StoreAndForward } = await import('@enclave-edge/edge-sim/hub');
    const q = new StoreAndForward<string>();
    q.push('m\u0000in', 'old', 3, 1, 1_000);
    q.push('m\u0000in', 'new', 3, 60, 1_500);
    expect(q.takeAll('m\u0000', 2_100).map((e) => e.item)).toEqual(['new']);
  });
});

describe('restart policy', () => {
  it('restarts an on-failure module after it crashes with a non-zero exit', async () => {
    const pid = t.sim.supervisor.status().find((s) => s.name === 'probeB')!.pid;
    await t.invoke('probeB', 'crash');
    await eventually(() => {
      const s = t.sim.supervisor.status().find((x) => x.name === 'probeB')!;
      expect(s.restarts).toBeGreaterThanOrEqual(1);
      expect(s.pid).not.toBe(pid);
    });
    expect((await eventually(() => t.invoke('probeB', 'whoami'))).payload.moduleId).toBe('probeB');
  });
});
