/** Redeploy through POST /devices/{d}/applyConfigurationContent: modules started, stopped, restarted; routes swapped; desired pushed. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestSim, eventually, fixtureManifest, isAlive, type TestSim } from './helpers.js';

let t: TestSim;
let socketDir: string;
const DEVICE = 'edge-sim-device';

beforeAll(async () => {
  // This simulator serves the workload API on a unix socket, as aziot-edged does on a device.
  socketDir = mkdtempSync(join(tmpdir(), 'edge-sim-wl-'));
  t = await startTestSim({ workloadSocket: join(socketDir, 'workload.sock') });
  await eventually(() => t.invoke('probeA', 'whoami'));
  await eventually(() => t.invoke('probeB', 'whoami'));
});

afterAll(async () => {
  await t?.close();
  rmSync(socketDir, { recursive: true, force: true });
});

function nextContent(): { modulesContent: Record<string, any> } {
  const m = JSON.parse(readFileSync(fixtureManifest, 'utf8'));
  const mc = m.modulesContent;
  const mods = mc.$edgeAgent['properties.desired'].modules;
  mods.probeA.env.PROBE_TAG.value = 'a-2'; // changed → restart
  delete mods.probeB; // removed → stop
  mods.probeC = { ...mods.probeA, startupOrder: 3, env: { PROBE_TAG: { value: 'c-1' } } }; // new → start
  mc.$edgeHub['properties.desired'].routes = {
    aToC: 'FROM /messages/modules/probeA/outputs/toB INTO BrokeredEndpoint("/modules/probeC/inputs/fromA")',
  };
  mc.probeA['properties.desired'] = { greeting: 'redeployed' };
  return { modulesContent: mc };
}

describe('workload API on a unix socket', () => {
  it('modules start with IOTEDGE_WORKLOADURI=unix://…', async () => {
    expect(t.sim.workloadUri).toBe(`unix://${join(socketDir, 'workload.sock')}`);
    expect(((await t.invoke('probeA', 'env')).payload as Record<string, string>).IOTEDGE_WORKLOADURI).toBe(t.sim.workloadUri);
  });
});

describe('applyConfigurationContent', () => {
  it('refuses content with a broken route, naming the route, and changes nothing', async () => {
    const bad = nextContent();
    bad.modulesContent.$edgeHub['properties.desired'].routes = { broken: 'FROM /messages/* INTO' };
    await expect(t.hub.applyConfigurationContent(DEVICE, bad)).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(t.hub.applyConfigurationContent(DEVICE, bad)).rejects.toThrow(/broken/);
    expect((await t.invoke('probeB', 'whoami')).payload.env).toBe('b-1');
  });

  it('starts, stops and restarts changed modules, swaps routes and pushes desired properties', async () => {
    const pidB = t.sim.supervisor.status().find((s) => s.name === 'probeB')!.pid!;
    const pidA = t.sim.supervisor.status().find((s) => s.name === 'probeA')!.pid!;
    await t.hub.applyConfigurationContent(DEVICE, nextContent());

    // probeB stopped and gone.
    await eventually(() => expect(isAlive(pidB)).toBe(false));
    await expect(t.invoke('probeB', 'whoami')).rejects.toMatchObject({ detail: { errorCode: 404103 } });
    // probeA restarted with the new env; probeC started.
    await eventually(async () => expect((await t.invoke('probeA', 'whoami')).payload.env).toBe('a-2'));
    expect(isAlive(pidA)).toBe(false);
    await eventually(async () => expect((await t.invoke('probeC', 'whoami')).payload).toEqual({ moduleId: 'probeC', env: 'c-1' }));
    // New desired properties reached the twin (and the restarted module reads them).
    const twin = (await t.hub.getModuleTwin(DEVICE, 'probeA')) as any;
    expect(twin.properties.desired.greeting).toBe('redeployed');
    expect(twin.properties.desired.nested).toBeUndefined();
    expect((await t.invoke('probeA', 'freshTwin')).payload.desired.greeting).toBe('redeployed');
    // The new route is live, the old one is not.
    await t.invoke('probeA', 'send', { messages: [{ output: 'toB', body: 'to C now' }] });
    await eventually(async () => {
      const ins = (await t.invoke('probeC', 'inputs')).payload as any[];
      expect(ins.map((m) => [m.input, m.body])).toEqual([['fromA', 'to C now']]);
    });
    expect(t.sim.spec().modules.map((m) => m.name).sort()).toEqual(['otherImage', 'probeA', 'probeC', 'probeLate']);
  });

  it('also applies a fleet configuration (PUT /configurations/{id})', async () => {
    const c = nextContent();
    c.modulesContent.probeA['properties.desired'] = { greeting: 'fleet' };
    const r = await t.hub.createOrUpdateConfiguration('fleet-1', { targetCondition: "deviceId='edge-sim-device'", priority: 10, content: c });
    expect(r.id).toBe('fleet-1');
    await eventually(async () => expect((await t.invoke('probeA', 'twin')).payload.patches.some((p: any) => p.greeting === 'fleet')).toBe(true));
  });

  it('takes a deployment as sent: ${VAR} is not expanded from the simulator\'s environment or .env', async () => {
    expect(process.env.HOME).toBeTruthy();
    const c = nextContent();
    c.modulesContent.$edgeAgent['properties.desired'].modules.probeA.env.PROBE_TAG.value = '${HOME}';
    c.modulesContent.probeA['properties.desired'] = { greeting: '${PATH}' };
    await t.hub.applyConfigurationContent(DEVICE, c);
    await eventually(async () => expect((await t.invoke('probeA', 'whoami')).payload.env).toBe('${HOME}'));
    expect(((await t.hub.getModuleTwin(DEVICE, 'probeA')) as any).properties.desired.greeting).toBe('${PATH}');

    const f = nextContent();
    f.modulesContent.probeA['properties.desired'] = { greeting: 'fleet ${HOME}' };
    await t.hub.createOrUpdateConfiguration('fleet-2', { targetCondition: "deviceId='edge-sim-device'", priority: 10, content: f });
    await eventually(async () => expect(((await t.hub.getModuleTwin(DEVICE, 'probeA')) as any).properties.desired.greeting).toBe('fleet ${HOME}'));
    expect(JSON.stringify(await t.hub.getModuleTwin(DEVICE, 'probeA'))).not.toContain(process.env.HOME!);
  });
});
