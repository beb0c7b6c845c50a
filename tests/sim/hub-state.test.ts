/**
 * The simulator's hub state survives kill -9 as IoT Hub's does: desired properties, tags and
 * reported properties set before the crash, and a deployment applied through the service API,
 * are there after `sim up` starts again on the same state folder. `sim up` runs as a real child
 * process; the test kills it with SIGKILL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HubClient } from '@enclave-edge/hub-client';
import { cliBin, eventually, fixtureManifest, isAlive } from './helpers.js';

const run = promisify(execFile);
let cwd: string;
let up: ChildProcess | undefined;

function startSim(): ChildProcess {
  return spawn(process.execPath, [cliBin, 'sim', 'up', '--manifest', fixtureManifest, '--mqtt-port', '0', '--https-port', '0', '--state-dir', 'state'], { cwd, stdio: ['ignore', 'ignore', 'ignore'] });
}

async function connect(): Promise<{ hub: HubClient; deviceId: string }> {
  const { stdout } = await eventually(() => run(process.execPath, [cliBin, '--json', 'sim', 'credentials', '--state-dir', 'state'], { cwd, timeout: 20_000 }), 60_000, 200);
  const c = JSON.parse(stdout) as { connectionString: string; caCertPath: string; deviceId: string };
  return { hub: HubClient.fromConnectionString(c.connectionString, { ca: readFileSync(c.caCertPath, 'utf8') }), deviceId: c.deviceId };
}

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'edge-sim-hubstate-'));
});
afterAll(() => {
  if (up?.exitCode === null) up.kill('SIGTERM');
  rmSync(cwd, { recursive: true, force: true });
});

describe('hub state across a simulator crash', () => {
  it('keeps desired, reported and tags after kill -9 and restart', async () => {
    up = startSim();
    let { hub, deviceId } = await connect();
    await hub.updateModuleTwin(deviceId, 'probeA', { tags: { site: 'plant-7', floor: 2 }, properties: { desired: { greeting: 'after-crash', added: { deep: true } } } });
    // A reported patch from the module itself: ask the probe to report, through its direct method.
    await eventually(async () => {
      const r = await hub.invokeModuleMethod(deviceId, 'probeA', { methodName: 'report', payload: { seen: 'before-crash' }, responseTimeoutInSeconds: 5 });
      if (r.status !== 200) throw new Error(JSON.stringify(r));
    }, 30_000);
    const before = (await hub.getModuleTwin(deviceId, 'probeA')) as any;
    hub.close();

    const pid = up.pid!;
    const exited = new Promise<void>((r) => up!.once('exit', () => r()));
    process.kill(pid, 'SIGKILL');
    await exited;
    expect(isAlive(pid)).toBe(false);

    up = startSim();
    ({ hub, deviceId } = await connect());
    const after = (await hub.getModuleTwin(deviceId, 'probeA')) as any;
    expect(after.tags).toEqual({ site: 'plant-7', floor: 2 });
    expect(after.properties.desired).toMatchObject({ greeting: 'after-crash', added: { deep: true }, nested: { x: 1 } });
    expect(after.properties.desired.$version).toBeGreaterThanOrEqual(before.properties.desired.$version);
    expect(after.properties.reported).toMatchObject({ seen: 'before-crash' });
    // The restarted module reads the kept desired properties, not the manifest's.
    await eventually(async () => {
      const r = await hub.invokeModuleMethod(deviceId, 'probeA', { methodName: 'freshTwin', payload: null, responseTimeoutInSeconds: 5 });
      expect((r.payload as any).desired).toMatchObject({ greeting: 'after-crash' });
    }, 30_000);
    hub.close();
  }, 120_000);
});
