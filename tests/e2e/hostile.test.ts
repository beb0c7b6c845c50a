/**
 * 10,000 malformed or hostile requests, property-based (fast-check), at both modules' direct
 * methods and message inputs: every method answer is a known status with {error:{code,message}},
 * no module crashes, and memory stays within a bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { ERROR_CODES } from '@enclave-edge/errors';
import { eventually, rssKb, startE2E, type E2E } from './harness.js';

const STATUSES = new Set([200, 400, 404, 409, 413, 500, 503, 504]);
let t: E2E;
let fuzzer: InstanceType<typeof device.ModuleClient>;

beforeAll(async () => {
  t = await startE2E((m) => {
    // A quiet sensor: this file measures hostile traffic, not readings.
    m.modulesContent.$edgeAgent['properties.desired'].modules.SimulatedTemperatureSensor.status = 'stopped';
  });
  await eventually(async () => {
    const r = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' }, 5);
    if (r.status !== 200) throw new Error(JSON.stringify(r));
  }, 60_000);
  fuzzer = device.ModuleClient.fromConnectionString(t.sim.moduleConnectionString('fuzzer'), deviceMqtt.Mqtt);
  fuzzer.setOptions({ ca: t.ca });
  await fuzzer.open();
}, 90_000);
afterAll(async () => {
  await fuzzer?.close().catch(() => undefined);
  await t?.close();
});

const taName = fc.oneof(fc.constantFrom('hello', 'wasm-stats', 'sensor-signer', 'key-vault', '', '../x', 'HELLO', '__proto__', 'a'.repeat(65)), fc.string({ maxLength: 20 }));
const command = fc.oneof(fc.constantFrom('ping', 'echo', 'stats', 'sign', 'whoami', 'attest', 'constructor', '__proto__', 'toString', ''), fc.string({ maxLength: 20 }));
const deep = fc.integer({ min: 50, max: 200 }).map((n) => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
});
const params = fc.oneof(
  { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.constant({ $binary: '!!!' }) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.array(fc.double(), { maxLength: 50 }) },
);
const payload = fc.oneof(
  { weight: 6, arbitrary: fc.record({ ta: taName, command, params, sessionId: fc.string({ maxLength: 40 }), timeoutMs: fc.oneof(fc.integer({ min: -5, max: 3000 }), fc.double()), nonce: fc.string({ maxLength: 140 }), name: taName, bundle: fc.base64String({ maxLength: 200 }) }, { requiredKeys: [] }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: deep },
);
const sample = <T>(arb: fc.Arbitrary<T>, n: number, seed: number): T[] => fc.sample(arb, { numRuns: n, seed });

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

function checkAnswer(r: { status: number; payload: any }, what: string): void {
  expect(STATUSES.has(r.status), `${what}: status ${r.status}`).toBe(true);
  if (r.status !== 200) {
    expect(ERROR_CODES, `${what}: ${JSON.stringify(r.payload).slice(0, 200)}`).toContain(r.payload?.error?.code);
    expect(typeof r.payload.error.message).toBe('string');
  }
}

describe('hostile inputs', () => {
  it('10,000 hostile method calls and messages: clear errors, no crash, bounded memory', async () => {
    const pids = { runtime: t.pidOf('ta-runtime')!, host: t.pidOf('host-module')! };
    const before = { runtime: rssKb(pids.runtime), host: rssKb(pids.host) };

    // 2,500 direct-method calls at host-module, 1,000 at ta-runtime (through the service API).
    const hostCalls = sample(fc.tuple(fc.constantFrom('invokeTA', 'listTAs', 'openSession', 'closeSession', 'attest', 'health'), payload), 2500, 42);
    const rtCalls = sample(fc.tuple(fc.constantFrom('listTAs', 'loadTA', 'unloadTA', 'getEvidence'), payload), 1000, 43);
    let answered = 0;
    await pool(hostCalls, 24, async ([m, p]) => {
      checkAnswer(await t.invoke('host-module', m, p, 20), `host-module ${m}`);
      answered++;
    });
    await pool(rtCalls, 24, async ([m, p]) => {
      checkAnswer(await t.invoke('ta-runtime', m, p, 20), `ta-runtime ${m}`);
      answered++;
    });
    expect(answered).toBe(3500);

    // 6,500 raw messages: ta-runtime's taRequest input, host-module's sensor (pipeline) and taResponse inputs.
    const body = fc.oneof(
      { weight: 3, arbitrary: fc.record({ id: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('dup-1', 'dup-2')), op: fc.constantFrom('invoke', 'openSession', 'closeSession', 'listTAs', 'attest', 'bogus'), ta: taName, command, params, deadline: fc.oneof(fc.constant(Date.now() + 60_000), fc.integer()), sessionId: fc.string({ maxLength: 10 }), nonce: fc.string({ maxLength: 20 }) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
      { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    );
    const messages = [
      ...sample(body, 3500, 44).map((b) => ['toRuntime', b] as const),
      ...sample(body, 2000, 45).map((b) => ['toHostSensor', b] as const),
      ...sample(body, 1000, 46).map((b) => ['toHostResponse', b] as const),
    ];
    messages.push(['toRuntime', 'x'.repeat(200 * 1024)], ['toHostSensor', 'y'.repeat(200 * 1024)]);
    // Pipelines only run for inputs with a pipeline: route sensor input to hello.echo for this test.
    await t.hub.updateModuleTwin(t.sim.deviceId, 'host-module', { properties: { desired: { pipelines: { fuzz: { input: 'sensor', ta: 'hello', command: 'echo', output: 'fuzzed' } } } } });
    await pool(messages, 32, async ([output, b]) => {
      await fuzzer.sendOutputEvent(output, new device.Message(b as string | Buffer));
    });

    // Still alive, same processes, still answering; memory within a bound.
    await eventually(async () => {
      const r = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' }, 5);
      if (r.status !== 200) throw new Error(JSON.stringify(r));
    });
    expect(t.pidOf('ta-runtime')).toBe(pids.runtime);
    expect(t.pidOf('host-module')).toBe(pids.host);
    const health = await t.invoke('host-module', 'health', {});
    expect(health.payload).toMatchObject({ status: 'ok' });
    const after = { runtime: rssKb(pids.runtime), host: rssKb(pids.host) };
    expect(after.runtime - before.runtime, `ta-runtime RSS ${before.runtime} → ${after.runtime} kB`).toBeLessThan(150_000);
    expect(after.host - before.host, `host-module RSS ${before.host} → ${after.host} kB`).toBeLessThan(150_000);
  }, 240_000);
});
