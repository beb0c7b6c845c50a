/**
 * A fault in one TA stays in that TA, in the running local edge: a TA whose command, and one whose
 * onCreate, allocates `new Array(3e7).fill(1.5)` gets OUT_OF_MEMORY while `invokeTA hello ping`
 * answers 200 throughout and the ta-runtime module process is never restarted; an MQTT CONNECT
 * with module id `constructor` leaves the simulator serving. One local edge for the file; the TAs
 * go in as a user deploys them (`ta deploy --key … --trust-signer`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { encodeBundle, generateSigningKey } from '@enclave-edge/bundle';
import { testManifest } from '@enclave-edge/enclave/testing';
import { StateDir } from '@enclave-edge/edge-sim/state';
import { serviceConnectionString } from '@enclave-edge/edge-sim/module-env';
import { HubClient } from '@enclave-edge/hub-client';
import { cli } from '../acceptance/user.js';
import { startLocalEdge, type LocalEdge } from '../support/local-edge.js';

let edge: LocalEdge | undefined;
let hub: HubClient;
let device: string;
let key: string;
const rt = () => StateDir.openExisting(edge!.stateDir).readRuntime()!;

const HOG_COMMAND = `module.exports = { commands: { ping: () => 'pong', hog: () => new Array(3e7).fill(1.5).length } };`;
const HOG_CREATE = `module.exports = { onCreate() { globalThis.keep = new Array(3e7).fill(1.5); }, commands: { ping: () => 'pong' } };`;

const invokeTA = (ta: string, command: string, params?: unknown) =>
  hub.invokeModuleMethod(device, 'host-module', { methodName: 'invokeTA', payload: { ta, command, ...(params === undefined ? {} : { params }) }, responseTimeoutInSeconds: 60 });

async function taRuntimeProcess(): Promise<{ pid: number; restarts: number }> {
  const s = (await hub.simulatorStatus()) as { modules: Array<{ name: string; process: { pid?: number; restarts: number } | null }> };
  const p = s.modules.find((m) => m.name === 'ta-runtime')?.process;
  expect(p?.pid).toBeGreaterThan(0);
  return { pid: p!.pid!, restarts: p!.restarts };
}

/** `invokeTA hello ping` back to back until stopped; stop() sends one more (the marker) and returns every answer. */
function pingThroughout(): { stop: () => Promise<Array<{ status: number; payload: unknown }>> } {
  let running = true;
  const answers: Array<{ status: number; payload: unknown }> = [];
  const loop = (async () => {
    while (running) answers.push(await invokeTA('hello', 'ping').catch((err: Error) => ({ status: -1, payload: err.message })));
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      answers.push(await invokeTA('hello', 'ping'));
      return answers;
    },
  };
}

/** Deploy a JS TA as a user does: an unsigned bundle file, signed and trusted by `ta deploy`. */
async function deploy(name: string, code: string): Promise<{ code: number; out: string }> {
  const file = join(edge!.work, `${name}.tab`);
  writeFileSync(file, encodeBundle({ manifest: testManifest({ name }), code: new TextEncoder().encode(code) }));
  const r = await cli(['--json', 'ta', 'deploy', file, '--key', key, '--trust-signer', `fault-${name}`, '--wait', '120', ...edge!.at()], { timeoutMs: 180_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

beforeAll(async () => {
  edge = await startLocalEdge();
  const state = StateDir.openExisting(edge.stateDir);
  const r = rt();
  device = r.deviceId;
  hub = HubClient.fromConnectionString(serviceConnectionString({ hubHostName: r.hubHostName, deviceId: r.deviceId, mqttPort: r.mqttPort, httpsPort: r.httpsPort, workloadUri: r.workloadUri, caCertPath: state.caCertPath }, state.hubKey), { ca: readFileSync(state.caCertPath, 'utf8') });
  key = join(edge.work, 'key.pem');
  writeFileSync(key, generateSigningKey().privateKeyPem, { mode: 0o600 });
}, 180_000);

afterAll(async () => {
  hub?.close();
  await edge?.stop();
}, 60_000);

describe('the local edge: a fault domain is one TA', () => {
  it('a command allocating new Array(3e7).fill(1.5): OUT_OF_MEMORY for that TA; hello answers 200 throughout; ta-runtime never restarts', async () => {
    const before = await taRuntimeProcess();
    const d = await deploy('hog-command', HOG_COMMAND);
    expect(d.code, d.out).toBe(0);
    const pings = pingThroughout();
    const hog = await invokeTA('hog-command', 'hog');
    const answers = await pings.stop();
    expect(hog.status).toBe(500);
    expect(JSON.stringify(hog.payload)).toContain('OUT_OF_MEMORY');
    expect(answers.length).toBeGreaterThan(1);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    // The TA itself serves again, in a fresh process of its own.
    expect(await invokeTA('hog-command', 'ping')).toMatchObject({ status: 200, payload: { result: 'pong' } });
    expect(await taRuntimeProcess()).toEqual(before);
  }, 240_000);

  it('onCreate allocating new Array(3e7).fill(1.5): the TA is refused OUT_OF_MEMORY; hello answers 200 throughout; ta-runtime never restarts', async () => {
    const before = await taRuntimeProcess();
    const pings = pingThroughout();
    const d = await deploy('hog-create', HOG_CREATE);
    const answers = await pings.stop();
    expect(d.code, d.out).not.toBe(0);
    expect(d.out).toContain('OUT_OF_MEMORY');
    const reported = (((await hub.getModuleTwin(device, 'ta-runtime')).properties as { reported: { tas: Record<string, { errorCode?: string }> } }).reported.tas)['hog-create'];
    expect(reported?.errorCode).toBe('OUT_OF_MEMORY');
    expect(answers.length).toBeGreaterThan(1);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(await taRuntimeProcess()).toEqual(before);
  }, 240_000);

  it('an MQTT CONNECT with module id "constructor" is refused and the simulator keeps serving', async () => {
    const r = rt();
    const error = await new Promise<(Error & { code?: number }) | undefined>((resolve) => {
      const c = mqtt.connect(`mqtts://localhost:${r.mqttPort}`, {
        clientId: `${r.deviceId}/constructor`,
        username: `${r.hubHostName}/${r.deviceId}/constructor/?api-version=2021-04-12`,
        password: 'SharedAccessSignature sr=x&sig=y&se=1',
        ca: readFileSync(StateDir.openExisting(edge!.stateDir).caCertPath, 'utf8'),
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      });
      c.once('connect', () => (c.end(true), resolve(undefined)));
      c.once('error', (e) => (c.end(true), resolve(e)));
    });
    expect(error?.code).toBe(5);
    expect(await invokeTA('hello', 'ping')).toMatchObject({ status: 200, payload: { result: 'pong' } });
  }, 60_000);
});
