/**
 * HubClient against a real HTTPS server (the simulator's service API started alone with a
 * stub backend) — the same requests a real IoT Hub receives — plus connection strings, SAS and
 * error mapping.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { HubClient, parseServiceConnectionString, hubErrorFromResponse, serviceSas, type UpstreamEvent } from '@enclave-edge/hub-client';
import { startServiceApi, generatePkiForTests, HubError, type RegistryApi } from './support.js';

const hubKey = randomBytes(32).toString('base64');
let api: { port: number; close(): Promise<void> };
let ca: string;
const calls: Array<{ op: string; args: unknown[] }> = [];
const upstreamListeners = new Set<(m: any) => void>();

beforeAll(async () => {
  const pki = await generatePkiForTests();
  ca = pki.caCertPem;
  api = await startServiceApi(
    {
      hubHostName: 'hub.test',
      deviceId: 'dev1',
      hubKey,
      moduleKey: () => undefined,
      knownModule: (m) => m !== 'ghost',
      invokeMethod: async (m, name, payload, timeout) => {
        calls.push({ op: 'invoke', args: [m, name, payload, timeout] });
        if (name === 'slow') throw new HubError(504, 504101, 'Timed out waiting for the response from device.', 'TIMEOUT');
        if (m === 'offline') throw new HubError(404, 404103, 'Timed out waiting for device to connect.', 'ITEM_NOT_FOUND');
        return { status: 201, payload: { echoed: payload } };
      },
      getTwin: (m) => ({ moduleId: m, properties: { desired: { $version: 1 }, reported: { $version: 1 } } }),
      patchTwin: (m, patch) => {
        calls.push({ op: 'patch', args: [m, patch] });
        return { moduleId: m, properties: { desired: { ...patch.desired, $version: 2 } } };
      },
      applyConfiguration: async (content) => {
        calls.push({ op: 'apply', args: [content] });
      },
      onUpstream: (l) => {
        upstreamListeners.add(l);
        return () => upstreamListeners.delete(l);
      },
      status: () => ({ ok: true }),
      // Only what these tests call; the simulator's real registry is tested in tests/sim/registry.test.ts.
      registry: {
        putConfiguration: async (id: string, body: Record<string, unknown>) => ({ ...body, id, etag: 'e1' }),
        checkModuleEtag: () => {},
      } as unknown as RegistryApi,
    },
    { tls: { key: pki.serverKeyPem, cert: pki.serverCertPem }, port: 0 },
  );
});

afterAll(async () => {
  await api?.close();
});

const client = () => HubClient.fromConnectionString(`HostName=localhost:${api.port};SharedAccessKeyName=iothubowner;SharedAccessKey=${hubKey}`, { ca });

describe('HubClient over HTTPS with SAS from a connection string', () => {
  it('invokes a module method and returns status and payload', async () => {
    const c = client();
    expect(await c.invokeModuleMethod('dev1', 'modA', { methodName: 'go', payload: { a: 1 }, responseTimeoutInSeconds: 7 })).toEqual({ status: 201, payload: { echoed: { a: 1 } } });
    expect(calls.at(-1)).toEqual({ op: 'invoke', args: ['modA', 'go', { a: 1 }, 7] });
    c.close();
  });

  it('maps IoT Hub errors: 404103 → ITEM_NOT_FOUND, 504101 → TIMEOUT, unknown module → ITEM_NOT_FOUND', async () => {
    const c = client();
    await expect(c.invokeModuleMethod('dev1', 'offline', { methodName: 'go' })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', detail: { errorCode: 404103 } });
    await expect(c.invokeModuleMethod('dev1', 'modA', { methodName: 'slow' })).rejects.toMatchObject({ code: 'TIMEOUT', detail: { httpStatus: 504, errorCode: 504101 } });
    await expect(c.getModuleTwin('dev1', 'ghost')).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
    await expect(c.getModuleTwin('other-device', 'modA')).rejects.toThrow(/Device other-device not found/);
    c.close();
  });

  it('gets and patches module twins, applies configurations', async () => {
    const c = client();
    expect(await c.getModuleTwin('dev1', 'modA')).toMatchObject({ moduleId: 'modA' });
    expect(await c.updateModuleTwin('dev1', 'modA', { properties: { desired: { k: 'v' } } })).toMatchObject({ properties: { desired: { k: 'v', $version: 2 } } });
    const content = { modulesContent: { $edgeAgent: {}, $edgeHub: {} } };
    await c.applyConfigurationContent('dev1', content);
    expect(calls.at(-1)).toEqual({ op: 'apply', args: [content] });
    const conf = await c.createOrUpdateConfiguration('cfg', { targetCondition: "tags.env='x'", priority: 5, content });
    expect(conf).toMatchObject({ id: 'cfg', priority: 5, targetCondition: "tags.env='x'" });
    c.close();
  });

  it('streams upstream events as they come', async () => {
    const c = client();
    const ac = new AbortController();
    const got: UpstreamEvent[] = [];
    const reading = (async () => {
      for await (const e of c.streamUpstream({ signal: ac.signal })) {
        got.push(e);
        if (got.length === 2) break;
      }
    })();
    while (upstreamListeners.size === 0) await new Promise((r) => setTimeout(r, 10));
    for (const i of [1, 2]) {
      for (const l of upstreamListeners) l({ deviceId: 'dev1', moduleId: 'm', output: 'o', systemProperties: { '$.ct': 'application/json' }, properties: { i: String(i) }, body: Buffer.from(JSON.stringify({ i })), enqueuedTimeUtc: 'now' });
    }
    await reading;
    expect(got.map((e) => e.body)).toEqual([{ i: 1 }, { i: 2 }]);
    c.close();
  });

  it('passes a {"dropped":N} line of the stream to onDropped, never yields it', async () => {
    const pki = await generatePkiForTests();
    // What the simulator sends a reader that fell behind, once it catches up.
    const lines = [
      { deviceId: 'dev1', moduleId: 'm', enqueuedTimeUtc: 'now', systemProperties: {}, properties: {}, body: 'a' },
      { dropped: 3 },
      { deviceId: 'dev1', moduleId: 'm', enqueuedTimeUtc: 'now', systemProperties: {}, properties: {}, body: 'b' },
    ];
    const server = https.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(lines.map((l) => JSON.stringify(l) + '\n').join(''));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const c = HubClient.fromConnectionString(`HostName=localhost:${port};SharedAccessKeyName=iothubowner;SharedAccessKey=${hubKey}`, { ca: pki.caCertPem });
    const dropped: number[] = [];
    const got: unknown[] = [];
    try {
      for await (const e of c.streamUpstream({ onDropped: (n) => dropped.push(n) })) got.push(e.body);
    } finally {
      c.close();
      server.close();
    }
    expect(got).toEqual(['a', 'b']);
    expect(dropped).toEqual([3]);
  });

  it('is refused with ACCESS_DENIED for a wrong key', async () => {
    const c = HubClient.fromConnectionString(`HostName=localhost:${api.port};SharedAccessKeyName=iothubowner;SharedAccessKey=${randomBytes(32).toString('base64')}`, { ca });
    await expect(c.getModuleTwin('dev1', 'modA')).rejects.toMatchObject({ code: 'ACCESS_DENIED', detail: { httpStatus: 401 } });
    c.close();
  });

  it('says when nothing listens', async () => {
    const c = HubClient.fromConnectionString(`HostName=localhost:1;SharedAccessKeyName=iothubowner;SharedAccessKey=${hubKey}`, { ca });
    await expect(c.getModuleTwin('dev1', 'modA')).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('nothing listens') });
    c.close();
  });
});

describe('Azure credential path', () => {
  it('sends a bearer token for the IoT Hub scope and maps a credential failure to ACCESS_DENIED', async () => {
    const scopes: string[] = [];
    const failing = { getToken: async (s: string | string[]) => (scopes.push(String(s)), Promise.reject(new Error('az login first'))) };
    const c = await HubClient.fromAzureCredential('myhub', failing as never);
    expect(c.hostName).toBe('myhub.azure-devices.net');
    await expect(c.getModuleTwin('d', 'm')).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringContaining('az login first') });
    expect(scopes).toEqual(['https://iothubs.azure.net/.default']);
    await expect(c.streamUpstream().next()).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
    c.close();
  });
});

describe('connection strings, SAS and error bodies', () => {
  it('parses a policy connection string and names what is missing', () => {
    expect(parseServiceConnectionString('HostName=h.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=abc=')).toEqual({
      hostName: 'h.azure-devices.net',
      sharedAccessKeyName: 'iothubowner',
      sharedAccessKey: 'abc=',
    });
    expect(() => parseServiceConnectionString('HostName=h;DeviceId=d;SharedAccessKey=x')).toThrow(/SharedAccessKeyName/);
  });

  it('makes service SAS tokens with skn', () => {
    expect(serviceSas('h.azure-devices.net', 'iothubowner', hubKey)).toMatch(/^SharedAccessSignature sr=h\.azure-devices\.net&sig=[^&]+&se=\d+&skn=iothubowner$/);
  });

  it('reads flat and wrapped IoT Hub error bodies', () => {
    expect(hubErrorFromResponse(404, '{"errorCode":404103,"message":"offline"}', 'x')).toMatchObject({ code: 'ITEM_NOT_FOUND', message: 'x: HTTP 404 (404103): offline' });
    const wrapped = JSON.stringify({ Message: JSON.stringify({ errorCode: 504101, message: 'late' }), ExceptionMessage: '' });
    expect(hubErrorFromResponse(504, wrapped, 'y')).toMatchObject({ code: 'TIMEOUT', detail: { errorCode: 504101 } });
    expect(hubErrorFromResponse(429, 'busy', 'z').code).toBe('BUSY');
  });
});
