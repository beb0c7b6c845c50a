import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import device from 'azure-iot-device';
import { isEnclaveEdgeError } from '@enclave-edge/errors';
import { startWorkloadApi, WorkloadClient, type WorkloadApi } from '@enclave-edge/edge-sim/workload';

const { IotEdgeAuthenticationProvider } = device;

const TRUST = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
const keys: Record<string, { generationId: string; key: Buffer }> = {
  alpha: { generationId: 'gen-a-1', key: randomBytes(32) },
  beta: { generationId: 'gen-b-1', key: randomBytes(32) },
};
const masterSecret = randomBytes(32);

let dir: string;
let tcp: WorkloadApi;
let unix: WorkloadApi;
const socketPath = () => join(dir, 'workload.sock');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'workload-'));
  const opts = { trustBundlePem: TRUST, modules: (id: string) => keys[id], masterSecret };
  tcp = await startWorkloadApi({ ...opts, listen: { host: '127.0.0.1', port: 0 } });
  unix = await startWorkloadApi({ ...opts, listen: { socketPath: socketPath() } });
});

afterAll(async () => {
  await tcp?.close();
  await unix?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  contentType: string | undefined;
  body: any;
}

function call(api: WorkloadApi, method: string, path: string, body?: unknown, raw?: string): Promise<Reply> {
  const u = new URL(api.uri);
  const target = u.protocol === 'unix:' ? { socketPath: u.pathname } : { host: u.hostname, port: Number(u.port) };
  const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request({ ...target, method, path, headers: payload ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'], body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const V = '?api-version=2019-01-30';
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

describe('workload API over HTTP', () => {
  it('listens on loopback and serves the trust bundle as JSON', async () => {
    expect(tcp.uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await call(tcp, 'GET', `/trust-bundle${V}`);
    expect(r).toEqual({ status: 200, contentType: 'application/json', body: { certificate: TRUST } });
  });

  it('signs with HMAC-SHA256 over the module key', async () => {
    const data = Buffer.from('hub.example/devices/d/modules/alpha\n1700000000');
    const r = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/sign${V}`, { keyId: 'primary', algo: 'HMACSHA256', data: b64(data) });
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('application/json');
    expect(r.body).toEqual({ digest: createHmac('sha256', keys.alpha!.key).update(data).digest('base64') });
  });

  it('encrypts and decrypts, bound to module, generation and IV', async () => {
    const iv = b64('iv-1');
    const enc = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/encrypt${V}`, { plaintext: b64('root secret'), initializationVector: iv });
    expect(enc.status).toBe(200);
    const ct = enc.body.ciphertext as string;
    expect(Buffer.from(ct, 'base64').includes(Buffer.from('root secret'))).toBe(false);
    const again = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/encrypt${V}`, { plaintext: b64('root secret'), initializationVector: iv });
    expect(again.body.ciphertext).not.toBe(ct); // fresh nonce every time

    const dec = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/decrypt${V}`, { ciphertext: ct, initializationVector: iv });
    expect(dec).toMatchObject({ status: 200, contentType: 'application/json', body: { plaintext: b64('root secret') } });

    const otherModule = await call(tcp, 'POST', `/modules/beta/genid/gen-b-1/decrypt${V}`, { ciphertext: ct, initializationVector: iv });
    expect(otherModule.status).toBe(400);
    expect(otherModule.body.message).toMatch(/does not decrypt for this module, generation and initialization vector/);

    const otherIv = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/decrypt${V}`, { ciphertext: ct, initializationVector: b64('iv-2') });
    expect(otherIv.status).toBe(400);

    const raw = Buffer.from(ct, 'base64');
    raw[raw.length - 1]! ^= 1;
    const tampered = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/decrypt${V}`, { ciphertext: raw.toString('base64'), initializationVector: iv });
    expect(tampered.status).toBe(400);

    const garbage = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/decrypt${V}`, { ciphertext: b64('x'), initializationVector: iv });
    expect(garbage.body.message).toMatch(/not in the expected format/);
  });

  it('a new generation of the same module cannot read the old generation’s ciphertext', async () => {
    const iv = b64('iv');
    const ct = (await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/encrypt${V}`, { plaintext: b64('s'), initializationVector: iv })).body.ciphertext;
    keys.alpha!.generationId = 'gen-a-2';
    try {
      const r = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-2/decrypt${V}`, { ciphertext: ct, initializationVector: iv });
      expect(r.status).toBe(400);
      const old = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/decrypt${V}`, { ciphertext: ct, initializationVector: iv });
      expect(old.status).toBe(400);
      expect(old.body.message).toMatch(/generation id gen-a-1 does not match module alpha/);
    } finally {
      keys.alpha!.generationId = 'gen-a-1';
    }
  });

  it.each([
    ['unknown module', 'POST', `/modules/ghost/genid/g/sign${V}`, { keyId: 'primary', algo: 'HMACSHA256', data: '' }, 404, /module ghost not found/],
    ['wrong generation', 'POST', `/modules/alpha/genid/nope/sign${V}`, { keyId: 'primary', algo: 'HMACSHA256', data: '' }, 400, /generation id nope does not match module alpha/],
    ['missing api-version', 'GET', '/trust-bundle', undefined, 400, /api-version query parameter is required/],
    ['unknown api-version', 'GET', '/trust-bundle?api-version=1999-01-01', undefined, 400, /unsupported api-version 1999-01-01/],
    ['unknown path', 'GET', `/modules${V}`, undefined, 404, /no such workload API path \/modules/],
    ['wrong method', 'GET', `/modules/alpha/genid/gen-a-1/sign${V}`, undefined, 405, /GET is not allowed/],
    ['bad keyId', 'POST', `/modules/alpha/genid/gen-a-1/sign${V}`, { keyId: 'secondary', algo: 'HMACSHA256', data: '' }, 400, /invalid sign request: keyId: keyId must be "primary"/],
    ['bad algo', 'POST', `/modules/alpha/genid/gen-a-1/sign${V}`, { keyId: 'primary', algo: 'SHA1', data: '' }, 400, /algo must be "HMACSHA256"/],
    ['non-base64 data', 'POST', `/modules/alpha/genid/gen-a-1/encrypt${V}`, { plaintext: '***', initializationVector: '' }, 400, /plaintext: expected base64/],
    ['missing field', 'POST', `/modules/alpha/genid/gen-a-1/decrypt${V}`, { ciphertext: '' }, 400, /initializationVector: /],
  ])('%s → %i', async (_what, method, path, body, status, message) => {
    const r = await call(tcp, method, path, body);
    expect(r.status).toBe(status);
    expect(r.contentType).toBe('application/json');
    expect(r.body.message).toMatch(message);
    expect(typeof r.body.code).toBe('string');
  });

  it('rejects a body that is not JSON', async () => {
    const r = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/sign${V}`, undefined, '{nope');
    expect(r).toMatchObject({ status: 400, contentType: 'application/json', body: { message: 'request body is not valid JSON', code: 'BAD_FORMAT' } });
  });

  it('answers 413 to a body over 1 MiB', async () => {
    const r = await call(tcp, 'POST', `/modules/alpha/genid/gen-a-1/sign${V}`, undefined, JSON.stringify({ keyId: 'primary', algo: 'HMACSHA256', data: 'A'.repeat(1024 * 1024 + 4) }));
    expect(r).toMatchObject({ status: 413, contentType: 'application/json', body: { code: 'PAYLOAD_TOO_LARGE' } });
  });

  it('refuses to listen on a non-loopback address and short master secrets', async () => {
    await expect(startWorkloadApi({ listen: { host: '0.0.0.0', port: 0 }, trustBundlePem: TRUST, modules: () => undefined, masterSecret })).rejects.toThrow(/loopback only, not 0\.0\.0\.0/);
    await expect(startWorkloadApi({ listen: { port: 0 }, trustBundlePem: TRUST, modules: () => undefined, masterSecret: Buffer.alloc(8) })).rejects.toThrow(/at least 32 bytes/);
  });
});

describe('workload API over a unix socket', () => {
  it('creates the socket 0600 and serves the same API', async () => {
    expect(unix.uri).toBe(`unix://${socketPath()}`);
    expect(statSync(socketPath()).mode & 0o777).toBe(0o600);
    const r = await call(unix, 'GET', `/trust-bundle${V}`);
    expect(r.body.certificate).toBe(TRUST);
  });

  it('removes the socket on close, and never replaces a file that is not a socket', async () => {
    const path = join(dir, 'second.sock');
    const a = await startWorkloadApi({ listen: { socketPath: path }, trustBundlePem: TRUST, modules: () => undefined, masterSecret });
    await a.close();
    expect(existsSync(path)).toBe(false);
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'precious');
    await expect(startWorkloadApi({ listen: { socketPath: file }, trustBundlePem: TRUST, modules: () => undefined, masterSecret })).rejects.toThrow(/exists and is not a socket; refusing to replace it/);
    expect(readFileSync(file, 'utf8')).toBe('precious');
  });
});

describe('the Azure IoT SDK’s own workload client (IotEdgeAuthenticationProvider)', () => {
  function verifySasToken(token: string, key: Buffer, resource: string): void {
    const m = /^SharedAccessSignature (.*)$/.exec(token);
    expect(m).not.toBeNull();
    const fields = Object.fromEntries(m![1]!.split('&').map((kv) => kv.split('=') as [string, string]));
    expect(decodeURIComponent(fields.sr!)).toBe(resource);
    const expected = createHmac('sha256', key).update(`${fields.sr}\n${fields.se}`).digest('base64');
    expect(decodeURIComponent(fields.sig!)).toBe(expected);
    expect(Number(fields.se)).toBeGreaterThan(Date.now() / 1000);
  }

  it.each(['tcp', 'unix'])('fetches the trust bundle and gets SAS tokens signed with the module key (%s)', async (kind) => {
    const api = kind === 'tcp' ? tcp : unix;
    const provider = new IotEdgeAuthenticationProvider({
      workloadUri: api.uri,
      deviceId: 'dev1',
      moduleId: 'alpha',
      iothubHostName: 'hub.example',
      gatewayHostName: 'localhost',
      generationId: 'gen-a-1',
      authScheme: 'sasToken',
    } as never);
    try {
      const ca = await new Promise<string>((resolve, reject) => provider.getTrustBundle((err, c) => (err ? reject(err) : resolve(c!))));
      expect(ca).toBe(TRUST);
      const creds = await provider.getDeviceCredentials();
      expect(creds.moduleId).toBe('alpha');
      verifySasToken(creds.sharedAccessSignature!, keys.alpha!.key, 'hub.example/devices/dev1/modules/alpha');
    } finally {
      provider.stop();
    }
  });

  it('gets a clear error for an unknown module', async () => {
    const provider = new IotEdgeAuthenticationProvider({
      workloadUri: tcp.uri, deviceId: 'dev1', moduleId: 'ghost', iothubHostName: 'hub.example', gatewayHostName: 'localhost', generationId: 'g', authScheme: 'sasToken',
    } as never);
    try {
      await expect(provider.getDeviceCredentials()).rejects.toThrow();
    } finally {
      provider.stop();
    }
  });
});

describe('WorkloadClient', () => {
  it('round-trips through both transports and reports failures as EnclaveEdgeError', async () => {
    for (const api of [tcp, unix]) {
      const c = new WorkloadClient({ uri: api.uri, moduleId: 'beta', generationId: 'gen-b-1' });
      expect(await c.trustBundle()).toBe(TRUST);
      const iv = randomBytes(12);
      const ct = await c.encrypt(Buffer.from('k'), iv);
      expect((await c.decrypt(ct, iv)).toString()).toBe('k');
      expect((await c.sign(Buffer.from('x'))).equals(createHmac('sha256', keys.beta!.key).update('x').digest())).toBe(true);
      await expect(c.decrypt(ct, randomBytes(12))).rejects.toSatisfy((e) => isEnclaveEdgeError(e, 'SEAL_INTEGRITY'));
    }
    const env = WorkloadClient.fromEnvironment({ IOTEDGE_WORKLOADURI: tcp.uri, IOTEDGE_MODULEID: 'ghost', IOTEDGE_MODULEGENERATIONID: 'g' });
    await expect(env.sign(Buffer.from('x'))).rejects.toSatisfy((e) => isEnclaveEdgeError(e, 'ITEM_NOT_FOUND'));
    expect(() => WorkloadClient.fromEnvironment({})).toThrow(/IOTEDGE_WORKLOADURI, IOTEDGE_MODULEID and IOTEDGE_MODULEGENERATIONID must be set/);
    await expect(new WorkloadClient({ uri: 'http://127.0.0.1:1', moduleId: 'a', generationId: 'b' }).trustBundle()).rejects.toSatisfy((e) => isEnclaveEdgeError(e, 'UNAVAILABLE'));
  });
});
