/**
 * Confidential calls end to end in the simulator with the real SDK: a unique marker in the
 * params and in the TA's result reaches the caller, yet appears in no MQTT PUBLISH through
 * edgeHub (captured at the broker, both directions), no module or simulator log line, nothing
 * on the service API's upstream stream. Plain calls to confidential-only commands are refused;
 * the CLI refuses emulated evidence unless allowed, before anything is sent.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { ConfidentialClient, methodTransport } from '@enclave-edge/confidential';
import { TAClient } from '@enclave-edge/ta-client';
import { eventually, repoRoot, startE2E, type E2E } from './harness.js';

let t: E2E;
/** Every PUBLISH payload through edgeHub (topic + body), from clients and to clients. */
const packets: string[] = [];
const streamed: string[] = [];
const stream = new AbortController();
let client: ConfidentialClient;
let caPath: string;

/**
 * Test-only capture at the broker: aedes' publish authorisation sees every PUBLISH a module
 * sends; its client objects' `publish` sees every PUBLISH edgeHub writes to a module (routed
 * messages and the `$iothub/*` topics it writes to one client).
 */
function captureAtBroker(e: E2E): void {
  const aedes = (e.sim.hub as unknown as { aedes: { authorizePublish: (c: unknown, p: { topic: string; payload: Buffer }, cb: unknown) => void; clients: Record<string, object> } }).aedes;
  const inbound = aedes.authorizePublish;
  aedes.authorizePublish = (c, p, cb) => {
    packets.push(`${p.topic} ${Buffer.from(p.payload ?? '').toString('latin1')}`);
    return inbound.call(aedes, c, p, cb);
  };
  const proto = Object.getPrototypeOf(Object.values(aedes.clients)[0]!) as { publish: (p: { topic: string; payload: Buffer }, cb: unknown) => void };
  const outbound = proto.publish;
  proto.publish = function (this: unknown, p, cb) {
    packets.push(`${p.topic} ${Buffer.from(p.payload ?? '').toString('latin1')}`);
    return outbound.call(this, p, cb);
  };
}

beforeAll(async () => {
  // The fuzzer module calls TAs itself with TAClient: ta-runtime's answers reach it too.
  t = await startE2E((m) => {
    m.modulesContent.$edgeHub['properties.desired'].routes.runtimeToFuzzer = 'FROM /messages/modules/ta-runtime/outputs/taResponse INTO BrokeredEndpoint("/modules/fuzzer/inputs/taResponse")';
  });
  await eventually(async () => {
    const r = await t.invoke('host-module', 'invokeTA', { ta: 'key-vault', command: 'list' }, 5);
    if (r.status !== 200) throw new Error(JSON.stringify(r));
  }, 90_000);
  captureAtBroker(t);
  void (async () => {
    try {
      for await (const e of t.hub.streamUpstream({ signal: stream.signal })) streamed.push(JSON.stringify(e));
    } catch {
      /* aborted at the end */
    }
  })();
  const twin = await t.hub.getModuleTwin(t.sim.deviceId, 'ta-runtime');
  caPath = (twin as any).properties.reported.runtime.rootOfTrust.deviceCaPath as string;
  client = new ConfidentialClient({ transport: methodTransport((m, p) => t.invoke('host-module', m, p)), trustAnchors: readFileSync(caPath, 'utf8'), allowEmulated: true });
}, 150_000);
afterAll(async () => {
  stream.abort();
  await t?.close();
});

/** Everything the rich side saw: broker packets, module and simulator output, the upstream stream and events. */
function richSide(): string {
  return [...packets, ...t.output, ...t.simLog, ...streamed, ...t.upstream.map((m) => JSON.stringify(m))].join('\n');
}

/** Wait until a marker call has gone all the way through (so the negative check is not early). */
async function flushMarker(): Promise<void> {
  const flush = `flush-${randomBytes(6).toString('hex')}`;
  expect(await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'echo', params: flush })).toMatchObject({ status: 200, payload: { result: flush } });
  await eventually(() => {
    if (!packets.some((p) => p.includes(flush))) throw new Error('flush marker not seen at the broker yet');
  });
}

describe('confidential key-vault calls through edgeHub', () => {
  it('puts and gets a secret; the marker never appears on the rich side', async () => {
    const marker = `MARKER-${randomBytes(8).toString('hex')}`;
    expect(await client.invoke('key-vault', 'put', { name: 'db-password', value: marker })).toEqual({ name: 'db-password', created: true });
    expect(await client.invoke('key-vault', 'get', { name: 'db-password' })).toEqual({ name: 'db-password', value: marker });
    await flushMarker();
    expect(packets.some((p) => p.includes('__ee_confidential'))).toBe(true); // the envelopes did pass the broker
    expect(t.simLog.length).toBeGreaterThan(0);
    expect(richSide()).not.toContain(marker);
  });

  it('a module calls a TA confidentially through edgeHub with TAClient: it reads the marker back, no MQTT packet carries it', async () => {
    const mod = device.ModuleClient.fromConnectionString(t.sim.moduleConnectionString('fuzzer'), deviceMqtt.Mqtt);
    mod.setOptions({ ca: t.ca });
    await mod.open();
    try {
      const ta = new TAClient(mod, { output: 'toRuntime', confidential: { trustAnchors: readFileSync(caPath, 'utf8'), allowEmulated: true } }).start();
      // edgeHub first delivers what ta-runtime said while this module was away (its runtime.ready
      // notice, which fails calls then waiting); once a ping answers, that backlog is through.
      await eventually(() => ta.invoke('hello', 'ping'));
      const marker = `MODULE-${randomBytes(8).toString('hex')}`;
      const before = packets.length;
      expect(await ta.invoke('key-vault', 'put', { name: 'from-module', value: marker }, { confidential: true })).toEqual({ name: 'from-module', created: true });
      expect(await ta.invoke('key-vault', 'get', { name: 'from-module' }, { confidential: true })).toEqual({ name: 'from-module', value: marker });
      // The same call plain from the module is refused; evidence and envelopes went module → edgeHub → ta-runtime.
      await expect(ta.invoke('key-vault', 'get', { name: 'from-module' })).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
      const mine = packets.slice(before).filter((p) => p.includes('/modules/fuzzer/'));
      expect(mine.some((p) => p.includes('__ee_confidential'))).toBe(true);
      expect(mine.some((p) => p.includes('"op":"attest"'))).toBe(true);
      ta.stop();
      await flushMarker();
      expect(richSide()).not.toContain(marker);
    } finally {
      await mod.close().catch(() => undefined);
    }
  });

  it('refuses a plain invokeTA to a confidential-only command with ACCESS_DENIED', async () => {
    const r = await t.invoke('host-module', 'invokeTA', { ta: 'key-vault', command: 'get', params: { name: 'db-password' } });
    expect(r).toMatchObject({ status: 403, payload: { error: { code: 'ACCESS_DENIED', message: expect.stringMatching(/only confidential calls/) } } });
  });

  it('the CLI: --confidential prints the decrypted answer; without --allow-emulated it refuses before sending', async () => {
    const marker = `CLI-${randomBytes(8).toString('hex')}`;
    const policy = join(t.bundleDir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ minSecurityVersion: 1 }));
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [join(repoRoot, 'packages/cli/bin/enclave-edge.js'), ...args], { env: { ...process.env, NO_COLOR: '1', NODE_EXTRA_CA_CERTS: t.sim.caCertPath } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const target = ['--connection-string', t.sim.serviceConnectionString, '--device', t.sim.deviceId];
    const put = await cli(['--json', 'invoke', 'host-module', 'invokeTA', JSON.stringify({ ta: 'key-vault', command: 'put', params: { name: 'cli', value: marker } }), '--confidential', '--trust', caPath, '--policy', policy, '--allow-emulated', ...target]);
    expect(put.stderr).not.toMatch(/ACCESS_DENIED|refused/);
    expect(JSON.parse(put.stdout)).toMatchObject({ status: 200, payload: { result: { name: 'cli' } }, confidential: { ta: 'key-vault', tee: 'emulated' } });
    const get = await cli(['invoke', 'host-module', 'invokeTA', JSON.stringify({ ta: 'key-vault', command: 'get', params: { name: 'cli' } }), '--confidential', '--trust', caPath, '--allow-emulated', ...target]);
    expect(get.code).toBe(0);
    expect(get.stdout).toContain(marker);
    const sentBefore = packets.filter((p) => p.includes('__ee_confidential')).length;
    const strict = await cli(['invoke', 'host-module', 'invokeTA', JSON.stringify({ ta: 'key-vault', command: 'get', params: { name: 'cli' } }), '--confidential', '--trust', caPath, ...target]);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/POLICY_VIOLATION: evidence of TA "key-vault" refused \(emulated\)/);
    await flushMarker();
    expect(packets.filter((p) => p.includes('__ee_confidential')).length).toBe(sentBefore);
    expect(richSide()).not.toContain(marker);
  }, 60_000);
});
