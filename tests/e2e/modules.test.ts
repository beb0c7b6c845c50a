/**
 * The module pair end to end in the simulator with the real SDK: the npm start scenario,
 * invokeTA for every sample, attestation verified by the verifier library, runtime changes
 * from desired patches, a tampered bundle, and ta-runtime killed and recovering.
 */
import { createPublicKey, randomBytes, verify as verifySig } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvidence } from '@enclave-edge/attestation';
import { ConfidentialClient, methodTransport } from '@enclave-edge/confidential';
import { canonicalJson } from '@enclave-edge/ta-sdk';
import { eventually, startE2E, type E2E } from './harness.js';

let t: E2E;
beforeAll(async () => {
  // key-vault starts absent: a desired patch adds it at runtime below.
  t = await startE2E((m) => {
    delete m.modulesContent['ta-runtime']['properties.desired'].tas['key-vault'];
  });
  await eventually(async () => {
    const r = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' }, 5);
    if (r.status !== 200) throw new Error(JSON.stringify(r));
  }, 60_000);
  // The desired TAs load in parallel: hello answering does not mean the others are in.
  await eventually(async () => {
    const r = await t.invoke('host-module', 'listTAs', {}, 5);
    const loaded = new Set((r.payload?.tas ?? []).filter((x: any) => x.status === 'loaded').map((x: any) => x.name));
    for (const name of ['hello', 'wasm-stats', 'sensor-signer']) if (!loaded.has(name)) throw new Error(`${name} not loaded yet: ${JSON.stringify(r.payload)}`);
  }, 60_000);
}, 120_000);
afterAll(async () => t?.close());

async function runtimeTwin(): Promise<any> {
  return t.hub.getModuleTwin(t.sim.deviceId, 'ta-runtime');
}
async function deviceCa(): Promise<string> {
  const twin = await runtimeTwin();
  const path = twin.properties.reported.runtime.rootOfTrust.deviceCaPath as string;
  return readFileSync(path, 'utf8');
}

describe('invokeTA through the service API', () => {
  it('answers hello.ping and echoes binary params', async () => {
    expect(await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' })).toEqual({ status: 200, payload: { result: 'pong' } });
    const echo = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'echo', params: { n: 1, b: { $binary: 'AAEC' } } });
    expect(echo).toEqual({ status: 200, payload: { result: { n: 1, b: { $binary: 'AAEC' } } } });
  });

  it('runs the Wasm sample and the sensor signer', async () => {
    const stats = await t.invoke('host-module', 'invokeTA', { ta: 'wasm-stats', command: 'stats', params: [2, 4, 6] });
    expect(stats.status).toBe(200);
    expect(stats.payload.result).toMatchObject({ count: 3, min: 2, max: 6, mean: 4 });
    const pk = await t.invoke('host-module', 'invokeTA', { ta: 'sensor-signer', command: 'publicKey' });
    expect(pk.payload.result).toMatchObject({ kty: 'EC', crv: 'P-256' });
  });

  it('maps errors to status codes with {error:{code,message}}', async () => {
    const missing = await t.invoke('host-module', 'invokeTA', { ta: 'nope', command: 'ping' });
    expect(missing.status).toBe(404);
    expect(missing.payload.error).toMatchObject({ code: 'ITEM_NOT_FOUND', message: expect.stringContaining('nope') });
    const bad = await t.invoke('host-module', 'invokeTA', { ta: 'hello' });
    expect(bad.status).toBe(400);
    expect(bad.payload.error.message).toContain('command');
    const big = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'echo', params: 'x'.repeat(140 * 1024) });
    expect([413, 400]).toContain(big.status);
  });

  it('opens and closes sessions, and reports health', async () => {
    const open = await t.invoke('host-module', 'openSession', { ta: 'hello' });
    expect(open.status).toBe(200);
    const sessionId = open.payload.sessionId as string;
    expect(await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping', sessionId })).toMatchObject({ status: 200 });
    expect(await t.invoke('host-module', 'closeSession', { ta: 'hello', sessionId })).toMatchObject({ status: 200 });
    const again = await t.invoke('host-module', 'closeSession', { ta: 'hello', sessionId });
    expect(again.status).toBeGreaterThanOrEqual(400);
    const health = await t.invoke('host-module', 'health', {});
    expect(health).toMatchObject({ status: 200, payload: { status: 'ok', runtime: { reachable: true } } });
    const list = await t.invoke('host-module', 'listTAs', {});
    expect(list.payload.tas.map((x: { name: string }) => x.name).sort()).toEqual(['hello', 'sensor-signer', 'wasm-stats']);
  });
});

describe('attestation', () => {
  it('gives a token the verifier accepts when emulated evidence is allowed and rejects under the strict default', async () => {
    const nonce = randomBytes(16).toString('hex');
    const r = await t.invoke('host-module', 'attest', { ta: 'hello', nonce });
    expect(r.status).toBe(200);
    const token = r.payload.token as string;
    const trustAnchors = await deviceCa();
    const ok = await verifyEvidence(token, { trustAnchors, nonce, policy: { allowEmulated: true } });
    expect(ok.accepted, JSON.stringify(ok)).toBe(true);
    const strict = await verifyEvidence(token, { trustAnchors, nonce });
    expect(strict).toMatchObject({ accepted: false, reason: 'emulated' });
    const wrongNonce = await verifyEvidence(token, { trustAnchors, nonce: randomBytes(16).toString('hex'), policy: { allowEmulated: true } });
    expect(wrongNonce.accepted).toBe(false);
    expect(t.upstream.some((m) => m.properties.type === 'attestation.issued' && m.body.ta === 'hello')).toBe(true);
  });

  it('signs sensor readings in sensor-signer; each verifies with the key from verified evidence (npm start scenario)', async () => {
    const nonce = randomBytes(16).toString('hex');
    const r = await t.invoke('host-module', 'attest', { ta: 'sensor-signer', nonce });
    expect(r.status).toBe(200);
    const verdict = await verifyEvidence(r.payload.token, { trustAnchors: await deviceCa(), nonce, policy: { allowEmulated: true } });
    expect(verdict.accepted).toBe(true);
    const jwk = (verdict as any).claims.cnf.jwk;
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    const signed = await eventually(() => {
      const s = t.upstream.filter((m) => m.moduleId === 'host-module' && m.output === 'signed');
      if (s.length < 3) throw new Error(`only ${s.length} signed readings so far`);
      return s.slice(0, 3);
    });
    for (const m of signed) {
      expect(m.properties).toMatchObject({ pipeline: 'signTemperature', ta: 'sensor-signer' });
      const { reading, signature } = m.body as { reading: Record<string, unknown>; signature: string };
      expect(reading).toHaveProperty('machine');
      const ok = verifySig('sha256', Buffer.from(canonicalJson(reading as never)), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
      expect(ok).toBe(true);
      const forged = verifySig('sha256', Buffer.from(canonicalJson({ ...reading, forged: true } as never)), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
      expect(forged).toBe(false);
    }
  });
});

describe('runtime changes from desired properties', () => {
  it('rejects a tampered bundle with its reason in reported properties and telemetry, then adds the good one at runtime', async () => {
    const good = readFileSync(`${t.bundleDir}/key-vault.tab`);
    const bad = Buffer.from(good);
    bad[bad.length - 300]! ^= 0x20;
    await t.hub.updateModuleTwin(t.sim.deviceId, 'ta-runtime', { properties: { desired: { tas: { 'key-vault': { source: `base64:${bad.toString('base64')}` } } } } });
    const rejected = await eventually(async () => {
      const kv = (await runtimeTwin()).properties.reported.tas?.['key-vault'];
      if (kv?.status !== 'rejected') throw new Error(`key-vault is ${JSON.stringify(kv)}`);
      return kv;
    });
    expect(rejected.lastError).toMatch(/SIGNATURE_INVALID|MEASUREMENT_MISMATCH|BAD_FORMAT/);
    const event = await eventually(() => {
      const e = t.upstream.find((m) => m.properties.type === 'ta.rejected' && m.body.ta === 'key-vault');
      if (!e) throw new Error('no ta.rejected event yet');
      return e;
    });
    expect(event.body.reason).toEqual(expect.any(String));
    expect(await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' })).toMatchObject({ status: 200 });

    await t.hub.updateModuleTwin(t.sim.deviceId, 'ta-runtime', { properties: { desired: { tas: { 'key-vault': { source: 'key-vault.tab' } } } } });
    await eventually(async () => {
      const r = await t.invoke('host-module', 'invokeTA', { ta: 'key-vault', command: 'list' });
      if (r.status !== 200) throw new Error(JSON.stringify(r));
    });
    // put and get answer only confidential calls (tests/e2e/confidential.test.ts has the rest).
    const plain = await t.invoke('host-module', 'invokeTA', { ta: 'key-vault', command: 'put', params: { name: 'k1', value: 's3cret' } });
    expect(plain).toMatchObject({ status: 403, payload: { error: { code: 'ACCESS_DENIED' } } });
    const kv = new ConfidentialClient({ transport: methodTransport((m, p) => t.invoke('host-module', m, p)), trustAnchors: await deviceCa(), allowEmulated: true });
    await kv.invoke('key-vault', 'put', { name: 'k1', value: 's3cret' });
    expect(await kv.invoke('key-vault', 'get', { name: 'k1' })).toEqual({ name: 'k1', value: 's3cret' });
    expect(t.upstream.some((m) => m.properties.type === 'ta.loaded' && m.body.ta === 'key-vault')).toBe(true);
  });

  it('serves management methods on ta-runtime', async () => {
    const list = await t.invoke('ta-runtime', 'listTAs', {});
    expect(list.status).toBe(200);
    expect(list.payload.tas.find((x: any) => x.name === 'hello')).toMatchObject({ status: 'loaded', measurement: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const managed = await t.invoke('ta-runtime', 'unloadTA', { name: 'hello' });
    expect(managed.status).toBe(409);
    const ev = await t.invoke('ta-runtime', 'getEvidence', { ta: 'hello', nonce: randomBytes(12).toString('hex') });
    expect(ev.status).toBe(200);
    expect(ev.payload.token.split('.')).toHaveLength(3);
    const bad = await t.invoke('ta-runtime', 'loadTA', { name: 'hello', bundle: 'AAAA' });
    expect(bad.status).toBe(409);
  });
});

describe('logs', () => {
  it('writes IoT Edge style lines with a syslog severity prefix', () => {
    const lines = t.output.join('').split('\n').filter((l) => l.includes('ta-runtime') && /<\d> \d{4}-\d\d-\d\d/.test(l));
    expect(lines.length).toBeGreaterThan(0);
    expect(t.output.join('')).not.toMatch(/SharedAccessKey=/);
  });
});

describe('ta-runtime killed', () => {
  it('host-module answers 503/504 meanwhile and recovers when the simulator restarts it', async () => {
    const pid = t.pidOf('ta-runtime')!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    const during = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping', timeoutMs: 300 });
    expect([503, 504]).toContain(during.status);
    expect(['TIMEOUT', 'UNAVAILABLE']).toContain(during.payload.error.code);
    await eventually(async () => {
      const r = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping', timeoutMs: 2000 });
      if (r.status !== 200) throw new Error(JSON.stringify(r));
    }, 60_000);
    expect(t.pidOf('ta-runtime')).not.toBe(pid);
  }, 90_000);
});

describe('deploy apply, interval metrics and /metrics', () => {
  it('applies a generated deployment through the CLI; per-interval metrics telemetry and Prometheus follow it', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { e2eManifest, repoRoot } = await import('./harness.js');
    const run = promisify(execFile);
    const dir = mkdtempSync(join(tmpdir(), 'ee-e2e-deploy-'));
    try {
      const template = e2eManifest(t.bundleDir, (m) => {
        m.modulesContent['host-module']['properties.desired'].metricsIntervalSec = 1;
        m.modulesContent['ta-runtime']['properties.desired'].metricsIntervalSec = 1;
      });
      writeFileSync(join(dir, 'e2e.template.json'), JSON.stringify(template));
      const bin = join(repoRoot, 'packages/cli/bin/enclave-edge.js');
      const gen = await run(process.execPath, [bin, 'deploy', 'generate', '--template', join(dir, 'e2e.template.json'), '--out-dir', dir, '--allow-dev-signer', '--json'], { cwd: repoRoot });
      const path = JSON.parse(gen.stdout).path as string;
      await run(process.execPath, [bin, 'deploy', 'apply', path, '--connection-string', t.sim.serviceConnectionString, '--device', t.sim.deviceId], {
        cwd: repoRoot,
        env: { ...process.env, NODE_EXTRA_CA_CERTS: t.sim.caCertPath },
      });
      await eventually(async () => {
        const twin = await t.hub.getModuleTwin(t.sim.deviceId, 'host-module');
        if ((twin as any).properties.reported.settings?.metricsIntervalSec !== 1) throw new Error('not applied yet');
      }, 60_000);
      await eventually(async () => {
        const r = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' }, 5);
        if (r.status !== 200) throw new Error(JSON.stringify(r));
      }, 60_000);
      for (let i = 0; i < 5; i++) await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' });
      const metrics = await eventually(() => {
        const fromHost = t.upstream.find((m) => m.moduleId === 'host-module' && m.properties.type === 'metrics.invocations' && m.body.intervalSec === 1 && m.body.stats.some((s: any) => s.ta === 'hello'));
        const fromRuntime = t.upstream.find((m) => m.moduleId === 'ta-runtime' && m.properties.type === 'metrics.invocations' && m.body.intervalSec === 1 && m.body.stats.some((s: any) => s.ta === 'hello'));
        if (!fromHost || !fromRuntime) throw new Error('no metrics telemetry yet');
        return { fromHost, fromRuntime };
      }, 30_000);
      const row = metrics.fromHost.body.stats.find((s: any) => s.ta === 'hello' && s.command === 'ping');
      expect(row).toMatchObject({ count: expect.any(Number), errors: expect.any(Number), p50Ms: expect.any(Number), p95Ms: expect.any(Number) });
      expect(metrics.fromHost.body.intervalSec).toBe(1);

      const urls = [...t.output.join('').matchAll(/\[ta-runtime\].*metrics endpoint listening \{"url":"([^"]+)"\}/g)].map((m) => m[1]!);
      expect(urls.length).toBeGreaterThan(0);
      const text = await (await fetch(urls.at(-1)!)).text();
      expect(text).toMatch(/enclave_edge_ta_invocations_total\{ta="hello",command="ping",module_name="ta-runtime"[,}].*\d+/);
      expect(text).toContain('enclave_edge_live_enclaves');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
