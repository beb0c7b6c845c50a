/**
 * The simulator's hub state survives kill -9 as IoT Hub's does: desired properties, tags and
 * reported properties set before the crash, the device twin's tags, configurations, and a
 * deployment applied through the service API, are there after `sim up` starts again on the same
 * state folder; so are the messages stored for a module that is not running (store and forward). `sim up` runs as a real child
 * process; the test kills it with SIGKILL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HubClient } from '@enclave-edge/hub-client';
import { cliBin, eventually, fixtureManifest, isAlive } from './helpers.js';

const run = promisify(execFile);
let cwd: string;
let up: ChildProcess | undefined;

function startSim(): ChildProcess {
  return spawn(process.execPath, [cliBin, 'sim', 'up', '--manifest', fixtureManifest, '--mqtt-port', '0', '--https-port', '0', '--state-dir', 'state'], { cwd, stdio: ['ignore', 'ignore', 'ignore'] });
}

/** The service API's own calls the typed client does not wrap (device twin, one configuration). */
const raw = (hub: HubClient, method: string, path: string, body?: unknown): Promise<any> =>
  (hub as unknown as { request(m: string, p: string, b: unknown, o: { what: string }): Promise<unknown> }).request(method, path, body, { what: `${method} ${path}` });

const storedFor = async (hub: HubClient, module: string, input: string): Promise<number> => {
  const s = (await hub.simulatorStatus()) as { storeAndForward: { destinations: Array<{ module: string; input: string; messages: number }> } };
  return s.storeAndForward.destinations.find((d) => d.module === module && d.input === input)?.messages ?? 0;
};

interface Credentials {
  connectionString: string;
  caCertPath: string;
  deviceId: string;
  eventHubCompatibleConnectionString: string;
}

async function connect(): Promise<{ hub: HubClient; deviceId: string; creds: Credentials }> {
  const { stdout } = await eventually(() => run(process.execPath, [cliBin, '--json', 'sim', 'credentials', '--state-dir', 'state'], { cwd, timeout: 20_000 }), 60_000, 200);
  const c = JSON.parse(stdout) as Credentials;
  return { hub: HubClient.fromConnectionString(c.connectionString, { ca: readFileSync(c.caCertPath, 'utf8') }), deviceId: c.deviceId, creds: c };
}

/** Every event from the earliest up to the one whose body is `until`, read by the unmodified @azure/event-hubs consumer. */
async function readUpstreamUntil(c: Credentials, until: unknown): Promise<Array<{ body: unknown; sequenceNumber: number; partitionId: string }>> {
  const here = dirname(fileURLToPath(import.meta.url));
  const proc = fork(join(here, 'fixtures', 'clients', 'eh-consumer.mjs'), [c.eventHubCompatibleConnectionString], { env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: c.caCertPath }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    return await new Promise((resolve, reject) => {
      proc.on('message', (m: any) => {
        if (m.ready && m.sub === undefined) proc.send({ id: 1, op: 'subscribe', from: 'earliest', untilBody: until });
        else if (m.id === 1) m.ok ? resolve(m.value) : reject(new Error(m.error.message));
        else if (m.error) reject(new Error(m.error));
      });
      proc.once('exit', (code) => reject(new Error(`consumer exited ${code}`)));
    });
  } finally {
    proc.kill();
  }
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
    // probeLate is stopped: what probeA sends it waits in store and forward.
    const sent = await hub.invokeModuleMethod(deviceId, 'probeA', { methodName: 'send', payload: { messages: [{ output: 'toLate', body: 'kept-1' }, { output: 'toLate', body: 'kept-2' }] }, responseTimeoutInSeconds: 10 });
    expect(sent.status).toBe(200);
    expect(await storedFor(hub, 'probeLate', 'queued')).toBe(2);
    // Upstream telemetry IoT Hub acknowledged (the send answers after the PUBACK) is still on its built-in endpoint.
    expect((await hub.invokeModuleMethod(deviceId, 'probeA', { methodName: 'send', payload: { messages: [{ output: 'telemetry', body: { marker: 'upstream-before-crash' }, contentType: 'application/json' }] }, responseTimeoutInSeconds: 10 })).status).toBe(200);
    await raw(hub, 'PATCH', `/twins/${deviceId}`, { tags: { ring: 'canary' } });
    const config = await hub.createOrUpdateConfiguration('kept-config', { content: { modulesContent: {} }, targetCondition: "tags.ring = 'never'", priority: 3 } as never);
    hub.close();

    const pid = up.pid!;
    const exited = new Promise<void>((r) => up!.once('exit', () => r()));
    process.kill(pid, 'SIGKILL');
    await exited;
    expect(isAlive(pid)).toBe(false);

    up = startSim();
    let creds: Credentials;
    ({ hub, deviceId, creds } = await connect());
    const after = (await hub.getModuleTwin(deviceId, 'probeA')) as any;
    expect(after.tags).toEqual({ site: 'plant-7', floor: 2 });
    expect(after.properties.desired).toMatchObject({ greeting: 'after-crash', added: { deep: true }, nested: { x: 1 } });
    expect(after.properties.desired.$version).toBeGreaterThanOrEqual(before.properties.desired.$version);
    expect(after.properties.reported).toMatchObject({ seen: 'before-crash' });
    expect((await raw(hub, 'GET', `/twins/${deviceId}`)).tags).toEqual({ ring: 'canary' });
    expect(await raw(hub, 'GET', '/configurations/kept-config')).toMatchObject({ id: 'kept-config', priority: 3, targetCondition: "tags.ring = 'never'", etag: config.etag });
    expect(await storedFor(hub, 'probeLate', 'queued')).toBe(2);
    // A marker sent after the restart; everything from the earliest up to it is read once.
    await eventually(async () => {
      const r = await hub.invokeModuleMethod(deviceId, 'probeA', { methodName: 'send', payload: { messages: [{ output: 'telemetry', body: { marker: 'upstream-after-crash' }, contentType: 'application/json' }] }, responseTimeoutInSeconds: 5 });
      if (r.status !== 200) throw new Error(JSON.stringify(r));
    }, 30_000);
    const events = await readUpstreamUntil(creds, { marker: 'upstream-after-crash' });
    const kept = events.filter((e) => (e.body as { marker?: string }).marker === 'upstream-before-crash');
    expect(kept).toHaveLength(1);
    const newer = events.at(-1)!;
    // Positions go on from where they were: the new event comes after the kept one, not at 0 again.
    if (newer.partitionId === kept[0]!.partitionId) expect(newer.sequenceNumber).toBeGreaterThan(kept[0]!.sequenceNumber);
    // The restarted module reads the kept desired properties, not the manifest's.
    await eventually(async () => {
      const r = await hub.invokeModuleMethod(deviceId, 'probeA', { methodName: 'freshTwin', payload: null, responseTimeoutInSeconds: 5 });
      expect((r.payload as any).desired).toMatchObject({ greeting: 'after-crash' });
    }, 30_000);
    hub.close();
  }, 120_000);
});
