/**
 * `enclave-edge monitor --eventhub` against a running `sim up`: `$upstream` read through the
 * Event Hub-compatible endpoint with @azure/event-hubs (as a back end reads it), printed in the
 * format of the simulator's own stream, from earliest, latest or an enqueued time, per consumer group.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliBin, startCliSim } from '../sim/helpers.js';

const run = promisify(execFile);
let cwd: string;
let up: ChildProcess;

const cliIn = (dir: string, ...args: string[]) => run(process.execPath, [cliBin, ...args], { cwd: dir, timeout: 30_000 });
const cli = (...args: string[]) => cliIn(cwd, ...args);
const sendIn = (dir: string, body: unknown, extra: Record<string, unknown> = {}) =>
  cliIn(dir, 'invoke', 'probeA', 'send', JSON.stringify({ messages: [{ output: 'telemetry', body, contentType: 'application/json', ...extra }] }));
const send = (body: unknown, extra: Record<string, unknown> = {}) => sendIn(cwd, body, extra);

/** A monitor process: its output so far, a wait for text on stdout or stderr, its exit. */
function monitorIn(dir: string, ...args: string[]) {
  const proc = spawn(process.execPath, [cliBin, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  const waiters: Array<() => void> = [];
  const onData = (k: 'stdout' | 'stderr') => (d: Buffer) => {
    out[k] += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout!.on('data', onData('stdout'));
  proc.stderr!.on('data', onData('stderr'));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  const has = async (k: 'stdout' | 'stderr', text: string): Promise<void> => {
    while (!out[k].includes(text)) {
      const more = new Promise<void>((resolve) => waiters.push(resolve));
      if ((await Promise.race([more.then(() => 'more'), exited.then(() => 'exit')])) === 'exit' && !out[k].includes(text)) throw new Error(`monitor exited before printing ${text}: ${out.stderr}`);
    }
  };
  return { proc, out, exited, stderrHas: (text: string) => has('stderr', text), stdoutHas: (text: string) => has('stdout', text) };
}
const monitor = (...args: string[]) => monitorIn(cwd, ...args);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'monitor-eventhub-'));
  up = (await startCliSim(cwd)).proc;
}, 60_000);

afterAll(() => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  rmSync(cwd, { recursive: true, force: true });
});

describe('enclave-edge monitor --eventhub', () => {
  let first: any;

  it('--from earliest: what was sent before it started, as the simulator stream shows it, plus where it was read', async () => {
    await send({ t: 1 }, { messageId: 'm-1', correlationId: 'c-1', properties: { site: 'north' } });
    const { stdout } = await cli('--json', 'monitor', '--eventhub', '--from', 'earliest', '--count', '1');
    first = JSON.parse(stdout.trim());
    expect(first).toEqual({
      deviceId: 'edge-sim-device',
      moduleId: 'probeA',
      enqueuedTimeUtc: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      systemProperties: { '$.mid': 'm-1', '$.cid': 'c-1', '$.ct': 'application/json', '$.cdid': 'edge-sim-device', '$.cmid': 'probeA' },
      properties: { site: 'north' },
      body: { t: 1 },
      eventHub: { consumerGroup: '$Default', partitionId: expect.stringMatching(/^[0-3]$/), sequenceNumber: 0, offset: '0' },
    });
    // The human format is the one `monitor` prints for the simulator's stream (no output name: the endpoint does not carry it).
    const human = await cli('monitor', '--eventhub', '--from', 'earliest', '--count', '1');
    expect(human.stdout).toBe(`[${first.enqueuedTimeUtc}] edge-sim-device/probeA\n  system: {"$.mid":"m-1","$.cid":"c-1","$.ct":"application/json"}\n  properties: {"site":"north"}\n  body: {"t":1}\n`);
    expect(human.stderr).toContain('monitoring $upstream of edge-sim-device through the Event Hub-compatible endpoint (4 partitions, consumer group $Default, from earliest)');
  });

  it('by default (latest): only what is enqueued after it says it is monitoring', async () => {
    await send({ n: 'before' });
    const m = monitor('monitor', '--eventhub', '--count', '1', '--timeout', '60');
    await m.stderrHas('through the Event Hub-compatible endpoint');
    expect(m.out.stderr).toContain('from latest');
    await send({ n: 'after' });
    expect(await m.exited).toBe(0);
    expect(m.out.stdout).toContain('body: {"n":"after"}');
    expect(m.out.stdout).not.toContain('before');
  });

  it('--from <ISO time>: what was enqueued after that time', async () => {
    const { stdout } = await cli('--json', 'monitor', '--eventhub', '--from', first.enqueuedTimeUtc, '--count', '1');
    expect(JSON.parse(stdout.trim())).toMatchObject({ body: { n: 'before' }, eventHub: { sequenceNumber: 1 } });
  });

  it('--consumer-group reads the stream on its own', async () => {
    const { stdout } = await cli('--json', 'monitor', '--eventhub', '--consumer-group', 'backend', '--from', 'earliest', '--count', '3');
    const events = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e) => e.body)).toEqual([{ t: 1 }, { n: 'before' }, { n: 'after' }]);
    expect(events.map((e) => e.eventHub.consumerGroup)).toEqual(['backend', 'backend', 'backend']);
    expect(events.map((e) => e.eventHub.sequenceNumber)).toEqual([0, 1, 2]);
  });

  it('refuses --from and --consumer-group without --eventhub, and a bad --from or group, naming the problem', async () => {
    const fails = async (...args: string[]) => cli(...args).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect((await fails('monitor', '--from', 'earliest')).stderr).toMatch(/^enclave-edge: BAD_PARAMETERS: --consumer-group and --from read the Event Hub-compatible endpoint: add --eventhub\n$/);
    expect((await fails('monitor', '--eventhub', '--from', 'yesterday')).stderr).toContain('--from must be earliest, latest or an ISO 8601 time');
    expect((await fails('monitor', '--eventhub', '--consumer-group', 'a/b')).stderr).toContain('not a consumer group name: "a/b"');
  });
});

describe('enclave-edge monitor --eventhub across a simulator restart', () => {
  let dir: string;
  let sim: ChildProcess | undefined;

  afterAll(() => {
    if (sim && sim.exitCode === null) sim.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps reading where it was once the simulator is back on its HTTPS port, as a back end does', async () => {
    dir = mkdtempSync(join(tmpdir(), 'monitor-eventhub-restart-'));
    const httpsPort = await freePort();
    sim = (await startCliSim(dir, { httpsPort })).proc;
    const m = monitorIn(dir, '--json', 'monitor', '--eventhub', '--from', 'earliest', '--count', '2', '--timeout', '120');
    await sendIn(dir, { n: 'before-restart' });
    await m.stdoutHas('before-restart');
    const stopped = new Promise((resolve) => sim!.once('exit', resolve));
    sim.kill('SIGTERM');
    await stopped;
    sim = (await startCliSim(dir, { httpsPort })).proc;
    await sendIn(dir, { n: 'after-restart' });
    expect(await m.exited).toBe(0);
    const events = m.out.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e) => [e.body, e.eventHub.sequenceNumber])).toEqual([
      [{ n: 'before-restart' }, 0],
      [{ n: 'after-restart' }, 1],
    ]);
  }, 150_000);
});
