/**
 * `$edgeAgent` / `$edgeHub` through the unmodified azure-iothub Client and Registry: the six
 * built-in methods with IoT Edge's payloads and answers, and the runtime twins' reported
 * properties after a crash and a RestartModule. One simulator for the file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { readdirSync, readFileSync } from 'node:fs';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { eventually, cliBin, type TestSim } from './helpers.js';
import { startSimOnStandardPorts, startOfficialClients, type OfficialClients, SdkError } from './official-clients.js';

let t: TestSim;
let sdk: OfficialClients;

beforeAll(async () => {
  t = await startSimOnStandardPorts();
  sdk = await startOfficialClients(t);
  await eventually(() => t.invoke('probeA', 'whoami'));
  await eventually(() => t.invoke('probeB', 'whoami'));
  // probeA answers methods before it has read its twin and printed its ready line; the log tests
  // below count lines, so that line must be in before they print theirs.
  await eventually(async () => {
    const r = await logsOf('probeA', {});
    if (!String(r.payload?.[0]?.payload).includes('probe probeA ready')) throw new Error('probeA not ready yet');
  });
}, 60_000);

afterAll(async () => {
  await sdk?.close();
  await t?.close();
});

const agent = async (methodName: string, payload: unknown) =>
  (await sdk.client('invokeDeviceMethod', t.sim.deviceId, '$edgeAgent', { methodName, payload, responseTimeoutInSeconds: 30 })).body as { status: number; payload: any };
const agentTwin = async () => (await sdk.registry('getModuleTwin', t.sim.deviceId, '$edgeAgent')).body.properties;
const logsOf = (id: string, filter: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
  agent('GetModuleLogs', { schemaVersion: '1.0', items: [{ id, filter }], encoding: 'none', contentType: 'text', ...extra });
/**
 * Have probeA print lines, then wait until the last one is in its logs: stdout reaches the
 * simulator through a pipe, which may come after the method's answer over MQTT.
 */
async function print(lines: string[]): Promise<void> {
  await t.invoke('probeA', 'log', { lines });
  await eventually(async () => {
    const r = await logsOf('probeA', { tail: 1 }, { encoding: 'gzip' });
    if (gunzipSync(Buffer.from(r.payload[0].payloadBytes, 'base64')).toString() !== `${lines.at(-1)}\n`) throw new Error('not yet in the logs');
  });
}
const marker = (text: string) => print([text]);

describe('$edgeAgent / $edgeHub direct methods', () => {
  it('ping answers 200 with an empty payload on both (method names case-insensitive)', async () => {
    expect(await agent('ping', {})).toEqual({ status: 200, payload: null });
    expect(await agent('Ping', {})).toEqual({ status: 200, payload: null });
    const hub = (await sdk.client('invokeDeviceMethod', t.sim.deviceId, '$edgeHub', { methodName: 'ping', payload: {} })).body;
    expect(hub).toEqual({ status: 200, payload: null });
  });

  it('GetModuleLogs returns a module’s last lines (tail), text', async () => {
    await print(['first line', 'second line', 'third line']);
    const r = await logsOf('probeA', { tail: 2 });
    expect(r.status).toBe(200);
    expect(r.payload).toEqual([{ name: 'probeA', payload: 'second line\nthird line\n' }]);
  });

  it('filters by loglevel, regex, since and until; id is a regular expression over module names', async () => {
    await print(['<3> 2026-01-01 00:00:00.000 +00:00 [ERR] - disk on fire', '<7> debug chatter', 'plain info line']);
    expect((await logsOf('probeA', { tail: 3, loglevel: 4 })).payload[0].payload).toBe('<3> 2026-01-01 00:00:00.000 +00:00 [ERR] - disk on fire\n');
    expect((await logsOf('probeA', { tail: 3, regex: 'chatter|plain' })).payload[0].payload).toBe('<7> debug chatter\nplain info line\n');
    expect((await logsOf('probeA', { since: '10 minutes', regex: 'disk on fire' })).payload[0].payload).toContain('disk on fire');
    expect((await logsOf('probeA', { until: '1 d' })).payload[0].payload).toBe('');
    expect((await logsOf('probeA', { since: Math.floor(Date.now() / 1000) + 3600 })).payload[0].payload).toBe('');
    const both = await logsOf('^probe[AB]$', { tail: 1 });
    expect(both.payload.map((p: { name: string }) => p.name)).toEqual(['probeA', 'probeB']);
    const runtime = await logsOf('edge', { tail: 50 });
    expect(runtime.payload.map((p: { name: string }) => p.name)).toEqual(['edgeAgent', 'edgeHub']);
    expect(runtime.payload[1].payload).toMatch(/^<6> \d{4}-\d{2}-\d{2} .* \[INF\] - module probeA connected$/m);
  });

  it('contentType json gives IoT Edge log records; encoding gzip gives payloadBytes', async () => {
    await marker('json me');
    const j = await logsOf('probeA', { tail: 1 }, { contentType: 'json' });
    expect(j.payload[0].name).toBe('probeA');
    expect(j.payload[0].payload).toEqual([expect.objectContaining({ moduleId: 'probeA', deviceId: t.sim.deviceId, iotHub: t.sim.hubHostName, stream: 'stdout', logLevel: 6, text: 'json me', timeStamp: expect.stringMatching(/Z$/) })]);
    const z = await logsOf('probeA', { tail: 1 }, { encoding: 'gzip' });
    expect(gunzipSync(Buffer.from(z.payload[0].payloadBytes, 'base64')).toString()).toBe('json me\n');
    const zj = await logsOf('probeA', { tail: 1 }, { encoding: 'gzip', contentType: 'json' });
    expect(JSON.parse(gunzipSync(Buffer.from(zj.payload[0].payloadBytes, 'base64')).toString())[0].text).toBe('json me');
  });

  it('over the 128 KB method response limit: 400 saying how to narrow it; gzip or tail fits', async () => {
    const line = 'x'.repeat(1000);
    await print(Array.from({ length: 160 }, (_, i) => `${i} ${line}`));
    const big = await logsOf('probeA', { regex: '^\\d+ x' });
    expect(big.status).toBe(400);
    expect(big.payload.message).toMatch(/over the 128 KB direct method response limit/);
    expect((await logsOf('probeA', { regex: '^\\d+ x' }, { encoding: 'gzip' })).status).toBe(200);
    expect((await logsOf('probeA', { tail: 5 })).status).toBe(200);
  });

  it('a regex that backtracks catastrophically runs in linear time: the answer is right and the agent keeps answering', async () => {
    const long = 'a'.repeat(50_000) + 'b';
    await print(['redos marker aaaa', long]);
    // With a backtracking engine this call would never return. The long line must not match, so
    // the last matching line is the marker printed before it.
    const r = await logsOf('probeA', { regex: '(a+)+$', tail: 1 });
    expect(r).toEqual({ status: 200, payload: [{ name: 'probeA', payload: 'redos marker aaaa\n' }] });
    expect(await agent('ping', {})).toEqual({ status: 200, payload: null });
  });

  it('bad requests get 400 naming the problem; unknown methods 501; the agent keeps answering', async () => {
    expect(await agent('GetModuleLogs', { schemaVersion: '2.0', items: [{ id: 'probeA' }] })).toEqual({ status: 400, payload: { message: 'schemaVersion "2.0" is not supported (expected "1.0")' } });
    expect((await logsOf('probeA', { regex: '(' })).payload.message).toMatch(/^items\[0\]\.filter\.regex: not a regular expression RE2 accepts \(.*missing closing \)/);
    expect((await logsOf('probeA', { regex: '(a)\\1' })).payload.message).toMatch(/^items\[0\]\.filter\.regex: .*invalid escape sequence/);
    expect((await logsOf('[', {})).payload.message).toMatch(/^items\[0\]\.id: not a regular expression RE2 accepts/);
    expect((await logsOf('probeA', { since: 'yesterday-ish' })).payload.message).toMatch(/^items\[0\]\.filter\.since: expected a UNIX timestamp/);
    expect((await logsOf('probeA', { tial: 3 })).payload.message).toMatch(/items\.0\.filter.*tial/);
    expect((await agent('RestartModule', { schemaVersion: '1.0', id: 'nope' })).payload.message).toBe('module nope is not in the deployment');
    expect((await agent('RestartModule', { schemaVersion: '1.0', id: 'otherImage' })).payload.message).toMatch(/otherImage is not run by the simulator/);
    expect(await agent('Reboot', {})).toEqual({ status: 501, payload: { message: '$edgeAgent has no method Reboot' } });
    expect(await agent('ping', {})).toEqual({ status: 200, payload: null });
  });

  it('UploadModuleLogs and UploadSupportBundle write to a SAS URL; GetTaskStatus follows them to Completed', async () => {
    await marker('upload me');
    const sasUrl = t.sim.blobContainerSasUrl('edge-logs');
    const up = await agent('UploadModuleLogs', { schemaVersion: '1.0', sasUrl, items: [{ id: 'probeA', filter: { tail: 3 } }], encoding: 'none', contentType: 'text' });
    expect(up.status).toBe(200);
    expect(up.payload).toEqual({ status: 'NotStarted', message: '', correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const done = await eventually(async () => {
      const s = await agent('GetTaskStatus', { schemaVersion: '1.0', correlationId: up.payload.correlationId });
      if (s.payload.status !== 'Completed') throw new Error(JSON.stringify(s));
      return s;
    });
    expect(done.payload).toEqual({ status: 'Completed', message: '', correlationId: up.payload.correlationId });
    const dir = join(t.sim.blobContainerDir('edge-logs'), t.sim.hubHostName, t.sim.deviceId);
    const file = readdirSync(dir).find((f) => f.startsWith('probeA-') && f.endsWith('.log'))!;
    expect(readFileSync(join(dir, file), 'utf8')).toMatch(/upload me\n$/);

    const bundle = await agent('UploadSupportBundle', { schemaVersion: '1.0', sasUrl, since: '1 h' });
    await eventually(async () => {
      const s = await agent('GetTaskStatus', { schemaVersion: '1.0', correlationId: bundle.payload.correlationId });
      if (s.payload.status !== 'Completed') throw new Error(JSON.stringify(s));
    });
    const zip = readdirSync(dir).find((f) => f.startsWith('support_bundle-') && f.endsWith('.zip'))!;
    const listing = execFileSync('unzip', ['-l', join(dir, zip)], { encoding: 'utf8' });
    expect(listing).toMatch(/logs\/probeA_log\.txt/);
    expect(listing).toMatch(/check\.json/);
    const probeLog = execFileSync('unzip', ['-p', join(dir, zip), 'logs/probeA_log.txt'], { encoding: 'utf8' });
    expect(probeLog).toContain('upload me');
  });

  it('an upload to a URL whose SAS does not verify fails the task with the storage error; unknown tasks are Unknown', async () => {
    const bad = t.sim.blobContainerSasUrl('edge-logs').replace(/sig=[^&]+/, 'sig=AAAA');
    const up = await agent('UploadModuleLogs', { schemaVersion: '1.0', sasUrl: bad, items: [{ id: 'probeA', filter: { tail: 1 } }] });
    const failed = await eventually(async () => {
      const s = await agent('GetTaskStatus', { schemaVersion: '1.0', correlationId: up.payload.correlationId });
      if (s.payload.status !== 'Failed') throw new Error(JSON.stringify(s));
      return s;
    });
    expect(failed.payload.message).toBe('blob upload answered 403: the SAS signature does not match');
    expect((await agent('GetTaskStatus', { schemaVersion: '1.0', correlationId: 'nope' })).payload.status).toBe('Unknown');
  });
});

describe('runtime twins (Registry.getModuleTwin)', () => {
  it('$edgeAgent reports per-module status with IoT Edge’s fields, and the desired it runs', async () => {
    const tw = await agentTwin();
    expect(tw.desired.schemaVersion).toBe('1.1');
    expect(tw.desired.modules.probeA.settings.image).toBe('${MODULES.probe}');
    const r = tw.reported;
    expect(r.lastDesiredStatus).toEqual({ code: 200, description: '' });
    expect(r.lastDesiredVersion).toBe(tw.desired.$version);
    expect(r.systemModules.edgeHub).toMatchObject({ runtimeStatus: 'running', settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.6' } });
    expect(r.modules.probeA).toMatchObject({ runtimeStatus: 'running', restartPolicy: 'always', version: '1.0', exitCode: 0, restartCount: expect.any(Number), lastStartTimeUtc: expect.stringMatching(/Z$/) });
    expect(r.modules.probeLate).toMatchObject({ runtimeStatus: 'stopped' });
    expect(r.modules.otherImage).toMatchObject({ runtimeStatus: 'unknown', statusDescription: expect.stringMatching(/^not run by the simulator/) });
  });

  it('after a crash: exitCode, lastExitTimeUtc, restartCount; after RestartModule: lastRestartTimeUtc', async () => {
    const before = (await agentTwin()).reported.modules.probeA;
    await t.invoke('probeA', 'crash');
    const crashed = await eventually(async () => {
      const m = (await agentTwin()).reported.modules.probeA;
      if (m.restartCount <= before.restartCount || m.runtimeStatus !== 'running') throw new Error(JSON.stringify(m));
      return m;
    });
    expect(crashed.exitCode).toBe(3);
    expect(Date.parse(crashed.lastExitTimeUtc)).toBeGreaterThanOrEqual(Date.parse(before.lastStartTimeUtc));
    await eventually(() => t.invoke('probeA', 'whoami'));

    const restartedBefore = (await agentTwin()).reported.modules.probeB;
    expect(await agent('RestartModule', { schemaVersion: '1.0', id: 'probeB' })).toEqual({ status: 200, payload: null });
    const restarted = await eventually(async () => {
      const m = (await agentTwin()).reported.modules.probeB;
      if (m.lastStartTimeUtc === restartedBefore.lastStartTimeUtc || m.runtimeStatus !== 'running') throw new Error(JSON.stringify(m));
      return m;
    });
    expect(restarted.lastRestartTimeUtc).not.toBe('0001-01-01T00:00:00');
    await eventually(() => t.invoke('probeB', 'whoami'));
  });

  it('$edgeHub reports its clients, connected or not', async () => {
    const r = (await sdk.registry('getModuleTwin', t.sim.deviceId, '$edgeHub')).body.properties.reported;
    expect(r.lastDesiredStatus).toEqual({ code: 200, description: '' });
    expect(r.clients[`${t.sim.deviceId}/probeA`]).toMatchObject({ status: 'Connected', lastConnectedTimeUtc: expect.stringMatching(/Z$/) });
  });

  it('a deployment with a schemaVersion edgeAgent does not support is refused, naming the field', async () => {
    const content = { modulesContent: { $edgeAgent: { 'properties.desired': { schemaVersion: '2.0', modules: {} } }, $edgeHub: { 'properties.desired': { schemaVersion: '1.2', routes: {} } } } };
    const err = await sdk.registry('applyConfigurationContentOnDevice', t.sim.deviceId, content).catch((e: SdkError) => e);
    expect(err).toBeInstanceOf(SdkError);
    expect((err as SdkError).statusCode).toBe(400);
    expect((err as SdkError).responseBody).toMatch(/schemaVersion: edgeAgent supports schemaVersion \\"1.0\\" and \\"1.1\\"/);
    expect(t.sim.spec().modules.map((m) => m.name)).toContain('probeA');
  });
});

describe('enclave-edge invoke $edgeAgent GetModuleLogs (the CLI)', () => {
  it('returns the module’s last lines', async () => {
    await marker('cli sees me');
    // Not spawnSync: the simulator runs in this process and must keep answering.
    const r = await promisify(execFile)(process.execPath, [cliBin, 'invoke', '$edgeAgent', 'GetModuleLogs', JSON.stringify({ schemaVersion: '1.0', items: [{ id: 'probeA', filter: { tail: 1 } }], encoding: 'none', contentType: 'text' }), '--state-dir', t.stateDir, '--json'], { encoding: 'utf8' });
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 200, payload: [{ name: 'probeA', payload: 'cli sees me\n' }] });
  });
});
