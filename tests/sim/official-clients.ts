/**
 * A simulator on the ports the official clients dial (443, 8883) and a back-end process running
 * the unmodified `azure-iothub` Client and Registry against it. Each test file gets a loopback
 * alias of its own (127.x.y.z), so several simulators share the machine without taking each
 * other's 443; binding 443 needs root or the one-time setting README documents (the ordinary-user
 * path is tested in official-clients-port.test.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { startTestSim, here, type TestSim } from './helpers.js';
import type { SimulatorOptions } from '@enclave-edge/edge-sim';

export interface SdkResult {
  body: any;
  statusCode?: number | null;
  headers?: Record<string, string> | null;
}

export interface OfficialClients {
  /** Call `Client.<method>(...args)` / `Registry.<method>(...args)` in the back-end process; rejects with the SDK's error (name, message, statusCode). */
  client(method: string, ...args: unknown[]): Promise<SdkResult>;
  registry(method: string, ...args: unknown[]): Promise<SdkResult>;
  /** `Registry.createQuery(sql, pageSize)` paged with `next()` ('raw') or `nextAsTwin()` ('twin') until `hasMoreResults` is false, optionally from a continuation token. */
  queryPages(sql: string, pageSize?: number, as?: 'twin' | 'raw', start?: string): Promise<QueryPage[]>;
  close(): Promise<void>;
}

export interface QueryPage {
  items: any[];
  hasMoreResults: boolean;
  continuationToken: string | null;
}

export class SdkError extends Error {
  constructor(
    readonly sdkName: string,
    message: string,
    readonly statusCode: number | null,
    readonly responseBody: string | null,
  ) {
    super(message);
  }
}

function randomLoopback(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

/** startTestSim on a fresh loopback alias with the standard ports; a few tries in case an alias is taken. */
export async function startSimOnStandardPorts(opts: Partial<SimulatorOptions> = {}): Promise<TestSim> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startTestSim({ host: randomLoopback(), httpsPort: 443, mqttPort: 8883, ...opts });
    } catch (err) {
      if (attempt < 5 && err instanceof EnclaveEdgeError && err.code === 'CONFLICT') continue;
      if (err instanceof EnclaveEdgeError && err.code === 'ACCESS_DENIED') {
        throw new Error(`these tests run the official clients on port 443, which this user may not bind: run as root or once \`sudo sysctl -w net.ipv4.ip_unprivileged_port_start=443\` (${err.message})`);
      }
      throw err;
    }
  }
}

export async function startOfficialClients(t: TestSim): Promise<OfficialClients> {
  const proc: ChildProcess = fork(join(here, 'fixtures', 'clients', 'sdk-runner.mjs'), [t.sim.serviceConnectionString], {
    env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: t.sim.caCertPath },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (v: SdkResult) => void; reject: (e: Error) => void }>();
  let next = 1;
  await new Promise<void>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`sdk runner exited (${code}) before it was ready`)));
    proc.on('message', (m: any) => {
      if (m?.ready) return resolve();
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new SdkError(m.error.name, m.error.message, m.error.statusCode, m.error.responseBody));
    });
  });
  proc.removeAllListeners('exit');
  proc.on('exit', () => {
    for (const p of pending.values()) p.reject(new Error('sdk runner exited'));
    pending.clear();
  });
  const call = (target: string) => (method: string, ...args: unknown[]) =>
    new Promise<SdkResult>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      proc.send({ id, target, method, args });
    });
  return {
    client: call('client'),
    registry: call('registry'),
    queryPages: (sql, pageSize, as = 'twin', start) => call('query')('pages', sql, pageSize ?? null, as, start ?? null).then((r) => r.body as QueryPage[]),
    close: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}
