/**
 * `npm run soak [-- --minutes 10 --kill-every 20]`: the module pair under load while modules and
 * the simulator are killed with SIGKILL on a schedule; reports readings lost, acknowledged writes
 * lost, duplicate executions, callers answered within their deadline, and memory.
 * `npm run soak -- --restart-only [--kills 10]`: ta-runtime restart-to-serving (kill -9 → first
 * 200 of hello.ping) p50/p95 over N kills.
 *
 * Load: the simulated sensor at 20 readings/s through sensor-signer, and one key-vault `put` of a
 * fresh key every 200 ms through invokeTA. The simulator runs as `enclave-edge sim up`, a real
 * child process, so it can be killed too; a second route copies the raw readings to $upstream so
 * the soak knows what the sensor sent.
 */
import { fork, spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HubClient } from '@enclave-edge/hub-client';
import { ConfidentialClient, methodTransport } from '@enclave-edge/confidential';
import { buildBundles, e2eManifest, repoRoot, rssKb, startE2E } from '../tests/e2e/harness.js';
import { retryUntil } from '../tests/support/eventually.js';

const run = promisify(execFile);
const cliBin = join(repoRoot, 'packages/cli/bin/enclave-edge.js');
const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};

/** The e2e harness's supervisor: back-off from 200 ms, reset after 5 s of running. */
const SUPERVISOR_RESET_MS = 5000;

async function restartToServing(kills: number): Promise<void> {
  const t = await startE2E();
  try {
    const ping = () => t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping', timeoutMs: 500 }, 2);
    await retryUntil(async () => {
      if ((await ping()).status !== 200) throw new Error('not serving');
    }, 120_000, 200);
    const totals: number[] = [];
    const starts: number[] = [];
    const phases = new Map<string, number[]>();
    for (let k = 0; k < kills; k++) {
      const pid = t.pidOf('ta-runtime')!;
      const mark = t.output.length;
      const killedAt = performance.now();
      const killedAtEpoch = Date.now();
      process.kill(pid, 'SIGKILL');
      for (;;) {
        const r = await ping().catch(() => ({ status: 0 }));
        if (r.status === 200 && t.pidOf('ta-runtime') !== pid) break;
        await sleep(20);
      }
      const total = performance.now() - killedAt;
      totals.push(total);
      const trace = startTrace(t.output.slice(mark).join(''), killedAtEpoch, total);
      for (const [name, ms] of Object.entries(trace)) phases.set(name, [...(phases.get(name) ?? []), ms]);
      if (trace.processStartToReady !== undefined) starts.push(trace.processStartToReady);
      process.stdout.write(`kill ${k + 1}: ${total.toFixed(0)} ms to the first 200; ${Object.entries(trace).map(([n, ms]) => `${n} ${ms}`).join(', ')}\n`);
      // Past the supervisor's reset window (5 s): each kill is a first crash (200 ms back-off), not a crash loop.
      await sleep(SUPERVISOR_RESET_MS + 1000);
    }
    const summary = {
      kills,
      restartToServingMs: { p50: Math.round(pct(totals, 50)), p95: Math.round(pct(totals, 95)), max: Math.round(Math.max(...totals)) },
      processStartToReadyMs: { p50: pct(starts, 50), p95: pct(starts, 95) },
      phasesP50Ms: Object.fromEntries([...phases].map(([n, xs]) => [n, Math.round(pct(xs, 50))])),
      phasesP95Ms: Object.fromEntries([...phases].map(([n, xs]) => [n, Math.round(pct(xs, 95))])),
      supervisorBackoffMs: 200,
      pauseBetweenKillsMs: SUPERVISOR_RESET_MS + 1000,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await t.close();
  }
}

/**
 * Where one restart's time went, from ta-runtime's own log lines (its ready line and each "TA
 * loaded" line carry ms since its process started): kill → process start, → module frame opened
 * (node start, imports, root of trust), → MQTT connected, → twin read, → ready (serving), each
 * TA loaded (admission and enclave start included), and → the first 200 through host-module.
 */
function startTrace(text: string, killedAtEpoch: number, totalMs: number): Record<string, number> {
  const json = (re: RegExp) => [...text.matchAll(re)].map((m) => {
    try {
      return JSON.parse(m[1]!) as Record<string, any>;
    } catch {
      return undefined;
    }
  }).filter((x) => x !== undefined);
  const ready = json(/ta-runtime ready (\{.*"processStartedAt".*\})\s*$/gm)[0];
  if (!ready) return {};
  const out: Record<string, number> = {
    killToProcessStart: ready.processStartedAt - killedAtEpoch,
    processStartToFrame: ready.frameOpenedMs,
    mqttConnect: ready.connectedMs - ready.frameOpenedMs,
    twinRead: ready.twinMs - ready.connectedMs,
    twinToReady: ready.readyMs - ready.twinMs,
    processStartToReady: ready.readyMs,
  };
  for (const l of json(/TA loaded (\{.*\})\s*$/gm)) {
    if (typeof l.ta !== 'string') continue;
    out[`loaded:${l.ta}`] = l.atMs;
    if (typeof l.admitMs === 'number') out[`admit:${l.ta}`] = l.admitMs;
    if (typeof l.createMs === 'number') out[`enclaveStart:${l.ta}`] = l.createMs;
  }
  out.processStartToFirst200 = Math.round(killedAtEpoch + totalMs - ready.processStartedAt);
  return out;
}

interface Sim {
  proc: ChildProcess;
  hub: HubClient;
  deviceId: string;
  stop: AbortController;
}

async function soak(minutes: number, killEvery: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ee-soak-'));
  const bundleDir = buildBundles();
  const manifest = e2eManifest(bundleDir, (m) => {
    m.modulesContent.$edgeAgent['properties.desired'].modules.SimulatedTemperatureSensor.env = { SendInterval: { value: 0.05 }, MessageCount: { value: -1 } };
    m.modulesContent.$edgeHub['properties.desired'].routes.sensorRaw = 'FROM /messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput INTO $upstream';
  });
  writeFileSync(join(dir, 'soak.template.json'), JSON.stringify(manifest));

  const raw = new Map<string, number>(); // batch/seq → when the sensor's copy reached $upstream
  const signed = new Map<string, number>(); // batch/seq → times signed
  let droppedEvents = 0;
  const simKills: number[] = [];

  // The soak's reader of the built-in endpoint. A restarted simulator may listen on another AMQP
  // port (5671 taken): then a new reader starts from the earliest event, and what the old one
  // already saw is not counted twice (events are kept on disk with their positions).
  let reader: { proc: ChildProcess; cs: string } | undefined;
  const seenEvents = new Set<string>();
  const startReader = (cs: string, ca: string): void => {
    if (reader?.cs === cs) return;
    reader?.proc.kill();
    const r = fork(join(repoRoot, 'bench/fixtures/eh-reader/reader.mjs'), [cs], { env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: ca }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    r.on('message', (e: { key: string; moduleId: string | null; properties: Record<string, string>; body: unknown }) => {
      if (seenEvents.has(e.key)) return;
      seenEvents.add(e.key);
      const key = `${e.properties.batchId}/${e.properties.sequenceNumber}`;
      if (e.moduleId === 'SimulatedTemperatureSensor') raw.set(key, Date.now());
      else if (e.properties.pipeline === 'signTemperature') signed.set(key, (signed.get(key) ?? 0) + 1);
      else if (e.properties.type === 'pipeline.dropped') droppedEvents += Number((e.body as { count?: number } | null)?.count ?? 0);
    });
    reader = { proc: r, cs };
  };
  const startSim = async (): Promise<Sim> => {
    const proc = spawn(process.execPath, [cliBin, 'sim', 'up', '--manifest', join(dir, 'soak.template.json'), '--repo-root', repoRoot, '--state-dir', join(dir, 'state'), '--mqtt-port', '0', '--https-port', '0'],
      { cwd: dir, stdio: ['ignore', 'ignore', 'ignore'] });
    const { stdout } = await retryUntil(() => run(process.execPath, [cliBin, '--json', 'sim', 'credentials', '--state-dir', join(dir, 'state')], { cwd: dir }), 60_000, 300);
    const c = JSON.parse(stdout) as { connectionString: string; caCertPath: string; deviceId: string; eventHubCompatibleConnectionString: string };
    const hub = HubClient.fromConnectionString(c.connectionString, { ca: readFileSync(c.caCertPath, 'utf8') });
    const stop = new AbortController();
    // The reader goes on across restarts from where it was: what reached IoT Hub while the
    // simulator restarted is still seen.
    startReader(c.eventHubCompatibleConnectionString, c.caCertPath);
    return { proc, hub, deviceId: c.deviceId, stop };
  };
  let sim = await startSim();
  const invoke = (payload: unknown, timeoutSec: number) =>
    sim.hub.invokeModuleMethod(sim.deviceId, 'host-module', { methodName: 'invokeTA', payload, responseTimeoutInSeconds: timeoutSec });
  await retryUntil(async () => {
    if ((await invoke({ ta: 'key-vault', command: 'list', params: {} }, 5)).status !== 200) throw new Error('not serving');
  }, 120_000, 500);

  let cc: { hub: HubClient; client: ConfidentialClient } | undefined;
  const caPem = async () => {
    const twin = await sim.hub.getModuleTwin(sim.deviceId, 'ta-runtime');
    return readFileSync((twin as any).properties.reported.runtime.rootOfTrust.deviceCaPath as string, 'utf8');
  };
  const anchors = await caPem();
  const confidential = (): ConfidentialClient => {
    if (cc?.hub !== sim.hub) {
      const hub = sim.hub;
      cc = { hub, client: new ConfidentialClient({ transport: methodTransport((m, p) => hub.invokeModuleMethod(sim.deviceId, 'host-module', { methodName: m, payload: p, responseTimeoutInSeconds: 10 })), trustAnchors: anchors, allowEmulated: true }) };
    }
    return cc.client;
  };
  // Writers: each acknowledged put must be readable at the end.
  const acked = new Map<string, string>();
  const calls = { total: 0, answered: 0, late: 0, statuses: new Map<string, number>() };
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const name = `soak-${i}`;
      const started = Date.now();
      const deadlineMs = 10_000;
      calls.total++;
      let outcome: string;
      try {
        // key-vault's put answers only confidential calls: sealed to its attested key.
        await confidential().invoke('key-vault', 'put', { name, value: String(i) });
        outcome = '200';
        acked.set(name, String(i));
      } catch (err) {
        const e = err as { code?: string; detail?: { errorCode?: unknown } };
        outcome = `${e.code ?? 'ERROR'}${e.detail?.errorCode !== undefined ? ` ${String(e.detail.errorCode)}` : ''}`;
      }
      const took = Date.now() - started;
      if (took <= deadlineMs + 2000) calls.answered++;
      else calls.late++;
      calls.statuses.set(outcome, (calls.statuses.get(outcome) ?? 0) + 1);
      await sleep(200);
    }
  })();

  const memory = new Map<string, number[]>();
  const status = async () => JSON.parse((await run(process.execPath, [cliBin, '--json', 'sim', 'status', '--state-dir', join(dir, 'state')], { cwd: dir })).stdout) as {
    modules: Array<{ name: string; process: { pid?: number } | null }>;
  };
  const pidOf = async (name: string) => (await status()).modules.find((m) => m.name === name)?.process?.pid;
  const schedule = ['ta-runtime', 'host-module', 'ta-runtime', 'SimulatedTemperatureSensor', 'ta-runtime', 'sim'];
  const end = Date.now() + minutes * 60_000;
  let next = Date.now() + killEvery * 1000;
  let k = 0;
  const kills = new Map<string, number>();
  while (Date.now() < end) {
    await sleep(1000);
    for (const name of ['ta-runtime', 'host-module']) {
      const pid = await pidOf(name).catch(() => undefined);
      if (pid) memory.set(name, [...(memory.get(name) ?? []), rssKb(pid)]);
    }
    if (Date.now() < next) continue;
    next = Date.now() + killEvery * 1000;
    const target = schedule[k++ % schedule.length]!;
    kills.set(target, (kills.get(target) ?? 0) + 1);
    if (target === 'sim') {
      simKills.push(Date.now());
      sim.stop.abort();
      sim.hub.close();
      const exited = new Promise((r) => sim.proc.once('exit', r));
      sim.proc.kill('SIGKILL');
      await exited;
      sim = await startSim();
    } else {
      const pid = await pidOf(target).catch(() => undefined);
      if (pid) process.kill(pid, 'SIGKILL');
    }
    process.stdout.write(`${new Date().toISOString()} killed ${target}; ${acked.size} writes acknowledged, ${signed.size}/${raw.size} readings signed\n`);
  }
  writing = false;
  await writer;
  // Drain: readings still in retries or stored get their chance.
  await sleep(20_000);

  // Every acknowledged put read back (confidential get), eight at a time; a get that fails counts as lost.
  let writesLost = 0;
  let readBack = 0;
  const names = [...acked];
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let e = names.pop(); e; e = names.pop()) {
      const [name, value] = e;
      const r = (await confidential().invoke('key-vault', 'get', { name }).catch(() => undefined)) as { value?: unknown } | undefined;
      if (r?.value === value) readBack++;
      else writesLost++;
    }
  }));
  const nearSimKill = (at: number) => simKills.some((s) => at <= s && at >= s - 5000);
  let lost = 0;
  let lostAtSimKill = 0;
  const lastRaw = Math.max(...raw.values());
  for (const [key, at] of raw) {
    if (signed.has(key) || at > lastRaw - 5000) continue;
    if (nearSimKill(at)) lostAtSimKill++;
    else lost++;
  }
  const duplicates = [...signed.values()].reduce((n, c) => n + (c - 1), 0);
  const mem = Object.fromEntries([...memory].map(([m, xs]) => [m, { firstMb: Math.round(xs[0]! / 1024), lastMb: Math.round(xs.at(-1)! / 1024), maxMb: Math.round(Math.max(...xs) / 1024) }]));
  const summary = {
    minutes, killEvery, kills: Object.fromEntries(kills),
    readings: { sent: raw.size, signed: signed.size, lost, lostInSimulatorCrashWindow: lostAtSimKill, duplicates, droppedReported: droppedEvents },
    writes: { acknowledged: acked.size, readBack, lost: writesLost },
    callers: { total: calls.total, answeredWithinDeadline: calls.answered, late: calls.late, statuses: Object.fromEntries(calls.statuses) },
    memory: mem,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  sim.stop.abort();
  sim.hub.close();
  reader?.proc.kill();
  sim.proc.kill('SIGTERM');
  await new Promise((r) => sim.proc.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
  rmSync(bundleDir, { recursive: true, force: true });
}

if (args.includes('--restart-only')) await restartToServing(opt('kills', 10));
else await soak(opt('minutes', 3), opt('kill-every', 20));
process.exit(0);
