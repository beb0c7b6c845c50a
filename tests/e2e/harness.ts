/**
 * The module pair in the simulator, from the real deployment.template.json: sample TAs built
 * and DEV-signed into a temp bundle dir, a fast sensor, and an extra `fuzzer` identity with
 * routes into both modules' inputs for hostile-input tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { startSimulator, type SimulatorHandle } from '@enclave-edge/edge-sim';
import { HubClient } from '@enclave-edge/hub-client';
import { retryUntil } from '../support/eventually.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface E2E {
  sim: SimulatorHandle;
  hub: HubClient;
  ca: string;
  bundleDir: string;
  output: string[];
  /** The simulator's own log lines (edgeHub, supervisor, service API). */
  simLog: string[];
  upstream: Array<{ moduleId: string; output?: string; properties: Record<string, string>; body: any }>;
  invoke(moduleId: string, method: string, payload?: unknown, timeoutSec?: number): Promise<{ status: number; payload: any }>;
  pidOf(moduleId: string): number | undefined;
  close(): Promise<void>;
}

export function buildBundles(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ee-e2e-tas-'));
  execFileSync(process.execPath, [join(repoRoot, 'modules/ta-runtime/scripts/build-sample-tas.mjs')], { env: { ...process.env, TA_BUNDLE_OUT: dir }, stdio: 'pipe' });
  return dir;
}

export function e2eManifest(bundleDir: string, edit?: (m: any) => void): Record<string, unknown> {
  const m = JSON.parse(readFileSync(join(repoRoot, 'deployment.template.json'), 'utf8'));
  const mods = m.modulesContent.$edgeAgent['properties.desired'].modules;
  mods['ta-runtime'].env.TA_BUNDLE_DIR = { value: bundleDir };
  // The e2e tests exercise loadTA/unloadTA, off by default (O5).
  m.modulesContent['ta-runtime']['properties.desired'].policy.allowRemoteLoad = true;
  mods.SimulatedTemperatureSensor.env = { SendInterval: { value: 0.1 }, MessageCount: { value: -1 } };
  const routes = m.modulesContent.$edgeHub['properties.desired'].routes;
  routes.fuzzToRuntime = 'FROM /messages/modules/fuzzer/outputs/toRuntime INTO BrokeredEndpoint("/modules/ta-runtime/inputs/taRequest")';
  routes.fuzzToHostSensor = 'FROM /messages/modules/fuzzer/outputs/toHostSensor INTO BrokeredEndpoint("/modules/host-module/inputs/sensor")';
  routes.fuzzToHostResponse = 'FROM /messages/modules/fuzzer/outputs/toHostResponse INTO BrokeredEndpoint("/modules/host-module/inputs/taResponse")';
  edit?.(m);
  return m;
}

export async function startE2E(edit?: (m: any) => void): Promise<E2E> {
  const bundleDir = buildBundles();
  const stateDir = mkdtempSync(join(tmpdir(), 'ee-e2e-sim-'));
  const deviceId = `e2e-${randomBytes(4).toString('hex')}`;
  const output: string[] = [];
  const simLog: string[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => {
    output.push(d.toString());
    if (output.length > 5000) output.splice(0, 1000);
    if (process.env.E2E_VERBOSE) process.stderr.write(d);
  });
  const sim = await startSimulator({
    manifest: e2eManifest(bundleDir, edit),
    repoRoot,
    stateDir,
    deviceId,
    mqttPort: 0,
    httpsPort: 0,
    writeState: false,
    extraModules: ['fuzzer', 'trivial'],
    backoff: { initialMs: 200, maxMs: 1000, resetAfterMs: 5000 },
    log: (l) => {
      simLog.push(l);
      if (simLog.length > 5000) simLog.splice(0, 1000);
      if (process.env.E2E_VERBOSE) process.stderr.write(`[edge-sim] ${l}\n`);
    },
    moduleOutput: out,
  });
  const ca = readFileSync(sim.caCertPath, 'utf8');
  const hub = HubClient.fromConnectionString(sim.serviceConnectionString, { ca });
  const upstream: E2E['upstream'] = [];
  const off = sim.onUpstream((m) => {
    let body: unknown = m.body.toString('utf8');
    try {
      body = JSON.parse(body as string);
    } catch {
      /* keep text */
    }
    upstream.push({ moduleId: m.moduleId, ...(m.output ? { output: m.output } : {}), properties: m.properties, body });
    if (upstream.length > 20_000) upstream.splice(0, 10_000);
  });
  return {
    sim,
    hub,
    ca,
    bundleDir,
    output,
    simLog,
    upstream,
    invoke: (moduleId, method, payload, timeoutSec = 15) =>
      hub.invokeModuleMethod(deviceId, moduleId, { methodName: method, payload, responseTimeoutInSeconds: timeoutSec }) as Promise<{ status: number; payload: any }>,
    pidOf: (moduleId) => sim.supervisor.status().find((s) => s.name === moduleId)?.pid,
    async close() {
      off();
      hub.close();
      await sim.stop();
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(bundleDir, { recursive: true, force: true });
      rmSync(join(repoRoot, 'modules/ta-runtime/.sim-state', deviceId), { recursive: true, force: true });
    },
  };
}

export function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 30_000, stepMs = 150): Promise<T> {
  return retryUntil(fn, timeoutMs, stepMs);
}

export function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}
