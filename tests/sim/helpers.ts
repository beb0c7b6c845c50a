/** Shared pieces of the simulator's end-to-end tests. */
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import https from 'node:https';
import mqtt from 'mqtt';
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from '@enclave-edge/edge-sim';
import { HubClient } from '@enclave-edge/hub-client';
import { retryUntil } from '../support/eventually.js';

export const here = dirname(fileURLToPath(import.meta.url));
export const fixtureRepo = join(here, 'fixtures', 'repo');
export const fixtureManifest = join(fixtureRepo, 'deployment.template.json');
export const probeEntry = join(fixtureRepo, 'modules', 'probe', 'main.mjs');
export const repoRoot = join(here, '..', '..');
export const cliBin = join(repoRoot, 'packages', 'cli', 'bin', 'enclave-edge.js');

export interface TestSim {
  sim: SimulatorHandle;
  hub: HubClient;
  ca: string;
  logs: string[];
  output: string[];
  stateDir: string;
  invoke(moduleId: string, methodName: string, payload?: unknown, timeout?: number): Promise<{ status: number; payload: any }>;
  close(): Promise<void>;
}

const verbose = !!process.env.EDGE_SIM_TEST_VERBOSE;

export async function startTestSim(opts: Partial<SimulatorOptions> = {}): Promise<TestSim> {
  const stateDir = mkdtempSync(join(tmpdir(), 'edge-sim-test-'));
  const logs: string[] = [];
  const output: string[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => {
    output.push(d.toString());
    if (verbose) process.stderr.write(d);
  });
  const sim = await startSimulator({
    manifest: fixtureManifest,
    stateDir,
    mqttPort: 0,
    httpsPort: 0,
    writeState: true,
    backoff: { initialMs: 100, maxMs: 1000, resetAfterMs: 5000 },
    log: (l) => {
      logs.push(l);
      if (verbose) process.stderr.write(`[edge-sim] ${l}\n`);
    },
    moduleOutput: out,
    ...opts,
  });
  const ca = readFileSync(sim.caCertPath, 'utf8');
  const hub = HubClient.fromConnectionString(sim.serviceConnectionString, { ca });
  return {
    sim,
    hub,
    ca,
    logs,
    output,
    stateDir,
    invoke: (m, name, payload, timeout = 10) => hub.invokeModuleMethod(sim.deviceId, m, { methodName: name, payload, responseTimeoutInSeconds: timeout }) as Promise<{ status: number; payload: any }>,
    async close() {
      hub.close();
      await sim.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Retry `fn` until it stops throwing (modules take a moment to start and connect). */
export function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 20_000, stepMs = 100): Promise<T> {
  return retryUntil(fn, timeoutMs, stepMs);
}

/** Run the probe module outside the simulator with the given environment. */
export function spawnProbe(env: Record<string, string>): { proc: ChildProcess; output: string[]; stop(): Promise<void> } {
  const output: string[] = [];
  const proc = spawn(process.execPath, [probeEntry], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  return {
    proc,
    output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGKILL');
      }),
  };
}

/** `enclave-edge sim up` of the fixture manifest in `cwd` on free ports (or the HTTPS port given), once probeA answers: the process and what it prints. */
export async function startCliSim(cwd: string, o: { httpsPort?: number } = {}): Promise<{ proc: ChildProcess; output(): string }> {
  let out = '';
  const proc = spawn(process.execPath, [cliBin, 'sim', 'up', '--manifest', fixtureManifest, '--mqtt-port', '0', '--https-port', String(o.httpsPort ?? 0)], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await eventually(() => expect(existsSync(join(cwd, '.edge-sim', 'state.json'))).toBe(true), 30_000);
  const whoami = () => promisify(execFile)(process.execPath, [cliBin, 'invoke', 'probeA', 'whoami', '--json'], { cwd, timeout: 30_000 });
  await eventually(async () => expect(JSON.parse((await whoami()).stdout).status).toBe(200), 30_000);
  return { proc, output: () => out };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A raw MQTT 3.1.1 CONNECT to the simulator's edgeHub with exactly this client id, user name and password. */
export function rawMqttConnect(t: TestSim, clientId: string, username: string, password: string): Promise<{ client: mqtt.MqttClient; error?: Error & { code?: number } }> {
  return new Promise((resolve) => {
    const client = mqtt.connect(`mqtts://localhost:${t.sim.mqttPort}`, { clientId, username, password, ca: t.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clean: true });
    client.once('connect', () => resolve({ client }));
    client.once('error', (error) => resolve({ client, error }));
  });
}

/** A raw HTTPS request to the simulator's service API; the body is parsed when it is JSON. */
export function rawServiceRequest(t: TestSim, method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const sep = path.includes('?') ? '&' : '?';
    const req = https.request({ host: 'localhost', port: t.sim.httpsPort, method, path: `${path}${sep}api-version=2021-04-12`, ca: t.ca, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          // not JSON: the raw text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The hub owner key of the simulator (from its service connection string). */
export const hubKeyOf = (t: TestSim): string => /SharedAccessKey=([^;]+)/.exec(t.sim.serviceConnectionString)![1]!;
/** A module's key (from its connection string, as `sim module-credentials` prints it). */
export const moduleKeyOf = (t: TestSim, moduleId: string): string => /SharedAccessKey=([^;]+)/.exec(t.sim.moduleConnectionString(moduleId))![1]!;
