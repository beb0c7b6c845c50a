/**
 * Enclave runtime: the ordinary call vs a raw round trip over the same mechanism (and Node IPC, worker
 * postMessage), cold start of a 1 MiB signed bundle vs a bare worker start (from a standby, back to back,
 * fully cold), and memory per TA process and per idle instance with 20 TAs live at once.
 */
import { Worker } from 'node:worker_threads';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { randomUUID, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { EmulatedBackend, type EmulatedEnclave } from '@enclave-edge/enclave';
import { makeTestBundle, testManifest } from '@enclave-edge/enclave/testing';
import { admit, admittedOrThrow, encodeBundle, signBundle, verifyBundle, pemSigner, generateSigningKey } from '@enclave-edge/bundle';
import { runtimePolicySchema } from '@enclave-edge/protocol';
import { defineSuite, emulatedBackend, measureLatency, measureLatencyPaired, measureRatioPaired, type Measurement } from '../lib.js';

const HELLO = `module.exports = { commands: { ping: (ctx, p) => ({ pong: p }) } };`;

function echoWorker(): Worker {
  return new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, ok: true, value: { pong: m.params } }));`, { eval: true, execArgv: [], env: {} });
}

/** Round trips over an echoing peer: `send` posts a call with this id, answers come to the returned listener. */
function roundTrips(send: (id: number) => void): { call: () => Promise<void>; answered: (m: { id: number }) => void } {
  let next = 0;
  const pending = new Map<number, () => void>();
  return {
    call: () => new Promise<void>((r) => {
      const id = next++;
      pending.set(id, r);
      send(id);
    }),
    answered: (m) => {
      pending.get(m.id)?.();
      pending.delete(m.id);
    },
  };
}

/** A bare worker that echoes: one postMessage round trip per call, the floor of the ordinary path. */
function rawPostMessageCall(): { call: () => Promise<void>; close: () => Promise<number> } {
  const w = echoWorker();
  const rt = roundTrips((id) => w.postMessage({ t: 'call', id, cmd: 'ping', params: { n: id } }));
  w.on('message', rt.answered);
  return { call: rt.call, close: () => w.terminate() };
}

/** A bare child process that echoes over Node's IPC channel (a TA process's control channel). */
async function rawIpcCall(): Promise<{ call: () => Promise<void>; close: () => void }> {
  const c = spawn(process.execPath, ['-e', "process.on('message', (m) => process.send(m)); process.send(0)"], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: {} });
  await new Promise((r) => c.once('message', r));
  const rt = roundTrips((id) => c.send({ t: 'post', wid: 1, m: { t: 'call', id, kind: 'invoke', cmd: 'ping', params: { n: id } }, id }));
  c.on('message', rt.answered);
  return { call: rt.call, close: () => void c.kill() };
}

const FRAME_CHANNEL = fileURLToPath(new URL('../../packages/enclave/dist/emulated/wire/frame-channel.cjs', import.meta.url));
const { FrameChannel } = createRequire(import.meta.url)(FRAME_CHANNEL) as typeof import('../../packages/enclave/src/emulated/wire/frame-channel.cjs');

/**
 * A bare child process that echoes over the mechanism enclave workers in a TA process use to reach
 * the runtime (a unix socket carrying length-prefixed V8 serialisation): the floor of the call path.
 */
async function rawFrameCall(): Promise<{ call: () => Promise<void>; close: () => void }> {
  const name = `enclave-bench-${randomBytes(8).toString('hex')}`;
  const server = createServer();
  await new Promise<void>((r) => server.listen(`\0${name}`, r));
  const accepted = new Promise<InstanceType<typeof FrameChannel>>((r) => server.once('connection', (s) => r(new FrameChannel(s))));
  const code = `const { FrameChannel } = require(${JSON.stringify(FRAME_CHANNEL)}); const ch = new FrameChannel(require('node:net').connect({ path: '\\0' + process.argv[1] })); ch.on('message', (m) => ch.postMessage({ t: 'done', id: m.id, ok: true, value: { pong: m.params } })); ch.on('close', () => process.exit(0));`;
  const c = spawn(process.execPath, ['-e', code, name], { stdio: ['ignore', 'ignore', 'inherit'], env: {} });
  const ch = await accepted;
  const rt = roundTrips((id) => ch.postMessage({ t: 'call', id, kind: 'invoke', sid: undefined, cmd: 'ping', params: { n: id } }));
  ch.on('message', rt.answered);
  return {
    call: rt.call,
    close: () => {
      ch.close();
      server.close();
      c.kill();
    },
  };
}

/** ≈1 MiB of real code (many small functions), not one big string. */
function megabyteTA(): string {
  const parts = [HELLO];
  let size = HELLO.length;
  for (let i = 0; size < 1024 * 1024; i++) {
    const f = `function helper${i}(x) { const y = x * ${i} + ${i % 7}; return y > ${i} ? y - ${i} : [y, '${i.toString(36)}'].join('-'); }\n`;
    parts.push(f);
    size += f.length;
  }
  return parts.join('');
}

/** ENCLAVE_BENCH_ONLY=cold,idle runs some sections only (call, cold, idle). */
const ONLY = process.env.ENCLAVE_BENCH_ONLY?.split(',').map((x) => x.trim());
const want = (section: string) => !ONLY || ONLY.includes(section);

export default defineSuite({
  name: 'enclave',
  async run(ctx) {
    const backend = emulatedBackend();

    // 1. Ordinary call: caller → (direct channel) → the TA's worker in its process → compartment → TA → back.
    if (want('call')) {
      // Calls alternate with raw round trips over the same mechanism, so both see the same load.
      const frames = await rawFrameCall();
      const e = await backend.create(makeTestBundle(HELLO, { name: 'hello', limits: { maxConcurrency: 64 } }));
      let n = 0;
      const { subject, baseline, ratio, ratios } = await measureRatioPaired(
        { label: 'enclave.invoke hello.ping (process per TA)', fn: () => e.invoke(undefined, 'ping', { n: n++ }) },
        { label: 'raw unix-socket round trip (V8-serialised frames)', fn: frames.call },
        { rounds: 7, iterations: 1000, warmup: 500 },
      );
      ctx.compare({
        name: 'ordinary call p50 vs raw IPC',
        subject,
        baseline,
        ratio,
        targets: [{ description: 'p50 ≤ 1.5× a raw round trip over the same IPC (median of 7 alternating rounds)', pass: ratio <= 1.5 }],
        notes:
          'the enclave worker inside the TA process talks to the runtime over a unix socket of its own (length-prefixed V8 serialisation, what Node\'s advanced IPC channel sends); the baseline is a bare child process echoing over the same. ' +
          `Round ratios: ${ratios.map((x) => x.toFixed(2)).join(', ')}; the row shows the median round`,
      });
      // Node's own IPC channel (the TA process's control channel), and today's in-process worker postMessage (info).
      const ipc = await rawIpcCall();
      const nodeIpc = await measureLatencyPaired(
        { label: 'enclave.invoke hello.ping (process per TA)', fn: () => e.invoke(undefined, 'ping', { n: n++ }) },
        { label: 'raw child-process IPC round trip (advanced serialization)', fn: ipc.call },
        { iterations: 3000, warmup: 300 },
      );
      ctx.compare({ name: 'ordinary call p50 vs Node child-process IPC (info)', subject: nodeIpc.subject, baseline: nodeIpc.baseline, ratio: nodeIpc.subject.p50Us / nodeIpc.baseline.p50Us });
      const raw = rawPostMessageCall();
      const pm = await measureLatencyPaired(
        { label: 'enclave.invoke hello.ping (process per TA)', fn: () => e.invoke(undefined, 'ping', { n: n++ }) },
        { label: 'raw worker postMessage round trip', fn: raw.call },
        { iterations: 3000, warmup: 300 },
      );
      ctx.compare({ name: 'ordinary call p50 vs worker postMessage (info)', subject: pm.subject, baseline: pm.baseline, ratio: pm.subject.p50Us / pm.baseline.p50Us, notes: 'no target: the cost of the process boundary' });
      await raw.close();
      ipc.close();
      frames.close();
      await e.destroy();
    }

    // 3. Cold start of a 1 MiB signed bundle: verify + (spawn + lockdown, or a standby) + evaluate + ready.
    if (want('cold')) {
      const code = new TextEncoder().encode(megabyteTA());
      const key = generateSigningKey();
      const signed = await signBundle(encodeBundle({ manifest: testManifest({ name: 'big', uuid: randomUUID() }), code }), pemSigner(key.privateKeyPem));
      const mib = (signed.length / 1048576).toFixed(2);
      const baseline = await measureLatency('bare worker start (spawn → first message)', async () => {
        const w = new Worker(`require('node:worker_threads').parentPort.postMessage(1)`, { eval: true, execArgv: [], env: {} });
        await new Promise((r) => w.once('message', r));
        await w.terminate();
      }, { iterations: 20, warmup: 3 });
      type Steps = NonNullable<EmulatedEnclave['lastStartup']>;
      const policy = runtimePolicySchema.parse({ trustedSigners: { bench: key.signerId }, allowEmulated: true });
      /** admit (verify + policy) + create, timed; `before` runs untimed (e.g. waiting for the pool to refill). */
      const coldStarts = async (label: string, b: EmulatedBackend, before: () => Promise<void>) => {
        const live: EmulatedEnclave[] = [];
        const steps: Steps[] = [];
        const times: number[] = [];
        for (let i = 0; i < 23; i++) {
          await before();
          const s = performance.now();
          const e = await b.create(admittedOrThrow(await admit(signed, policy, { backendKind: b.kind, origin: 'desired' })));
          const t = (performance.now() - s) * 1000;
          if (i >= 3) {
            times.push(t);
            steps.push(e.lastStartup!);
          }
          live.push(e);
        }
        await Promise.all(live.map((e) => e.destroy()));
        times.sort((a, b) => a - b);
        const at = (p: number) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)]!;
        const med = (k: keyof Omit<Steps, 'origin'>) => steps.map((x) => x[k]).sort((a, b) => a - b)[steps.length >> 1]!.toFixed(1);
        const origins = [...new Set(steps.map((x) => x.origin))].join('/');
        const m: Measurement = { label, samples: times.length, p50Us: at(50), p99Us: at(99), opsPerSec: NaN };
        return { m, origins, breakdown: `boot ${med('bootMs')}, SES+lockdown ${med('lockdownMs')}, hand-over ${med('assignMs')}, evaluate ${mib} MiB ${med('loadMs')}, onCreate ${med('createMs')}, ready msg ${med('readyMs')}` };
      };
      const t0 = performance.now();
      verifyBundle(signed, { trustedSigners: [key.signerId] });
      const verifyMs = (performance.now() - t0).toFixed(1);

      const pooled = emulatedBackend({ standby: 1 });
      const hit = await coldStarts(`cold start from a standby worker, ${mib} MiB`, pooled, () => pooled.prewarm());
      const burst = await coldStarts(`cold start, creates back to back, ${mib} MiB`, pooled, async () => undefined);
      await pooled.destroy();
      const fresh = emulatedBackend({ standby: 0 });
      const cold = await coldStarts(`fully cold start (standby: 0), ${mib} MiB`, fresh, async () => undefined);
      const r = (m: Measurement) => m.p50Us / baseline.p50Us;
      const ms = (m: Measurement) => (m.p50Us / 1000).toFixed(1);
      ctx.compare({
        name: 'cold start 1 MiB bundle (standby hit: the runtime\'s default path)',
        subject: hit.m,
        baseline,
        ratio: r(hit.m),
        targets: [
          { description: 'p50 ≤ 80 ms', pass: hit.m.p50Us <= 80_000 },
          { description: '≤ 3× bare worker start', pass: r(hit.m) <= 3 },
        ],
        notes:
          `targets applied to the path EmulatedBackend takes by default (standby: 1): admit + hand-over to a worker spawned and locked down ahead of time + evaluate + onCreate + ready (${hit.origins}). ` +
          `That path is taken when the pool had time to refill since the previous start (≈ one worker start) and the TA's limits match a kept shape; otherwise see the rows below. ` +
          `Median steps (ms): verify ${verifyMs}, ${hit.breakdown}`,
      });
      ctx.compare({
        name: 'cold start 1 MiB bundle, back to back (info)',
        subject: burst.m,
        baseline,
        ratio: r(burst.m),
        targets: [],
        notes: `creates with no pause (a deployment starting several TAs at once): the pool refills only once no start is in flight, so after the first such create the rest spawn fresh (${burst.origins}). Median steps (ms): ${burst.breakdown}`,
      });
      ctx.compare({
        name: 'cold start 1 MiB bundle, fully cold (info)',
        subject: cold.m,
        baseline,
        ratio: r(cold.m),
        targets: [],
        notes: `standby: 0, or a limits shape the pool does not keep: spawn + SES lockdown + evaluate. p50 ${ms(cold.m)} ms, ${r(cold.m).toFixed(2)}× bare worker (on this path: p50 ≤ 80 ms ${cold.m.p50Us <= 80_000 ? 'met' : 'missed'}, ≤ 3× bare worker ${r(cold.m) <= 3 ? 'met' : 'missed'}). Median steps (ms): ${cold.breakdown}`,
      });
    }

    // 4. 20 idle TAs live at once, all answering: RSS per TA process and per idle instance in it.
    if (want('idle')) {
      const count = 20;
      const settle = () => new Promise((r) => setTimeout(r, 300));
      const rssOf = (pid: number) => Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]) * 4096;
      const mb = (bytes: number) => bytes / 1048576;
      // Baseline: bare child processes of the same node, each with one echoing worker thread.
      const bare = await Promise.all(
        Array.from({ length: count }, async () => {
          const c = spawn(process.execPath, ['-e', `const { Worker } = require('node:worker_threads'); const w = new Worker(${JSON.stringify("require('node:worker_threads').parentPort.postMessage(1)")}, { eval: true }); w.once('message', () => process.send(1)); setInterval(() => {}, 1e9);`], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: {} });
          await new Promise((r) => c.once('message', r));
          return c;
        }),
      );
      await settle();
      const bareEach = mb(bare.reduce((a, c) => a + rssOf(c.pid!), 0) / count);
      for (const c of bare) c.kill();
      const before = process.memoryUsage().rss;
      const enclaves: EmulatedEnclave[] = [];
      for (let i = 0; i < count; i++) enclaves.push(await backend.create(makeTestBundle(HELLO, { name: `idle-${i}` })));
      await Promise.all(enclaves.map((e, i) => e.invoke(undefined, 'ping', i)));
      await settle();
      const runtimeEach = mb((process.memoryUsage().rss - before) / count);
      const enclaveEach = mb(enclaves.reduce((a, e) => a + rssOf(e.processInfo()!.pid), 0) / count);
      let k = 0;
      const subject = await measureLatency(`ping one of ${count} live TAs (round robin)`, () => enclaves[k++ % count]!.invoke(undefined, 'ping', k), { iterations: 2000, warmup: 200 });
      const answers = await Promise.all(enclaves.map((e, i) => e.invoke(undefined, 'ping', i)));
      const allAnswer = answers.every((a, i) => (a as { pong: number }).pong === i);
      // Per idle instance: a TA with an instance per session, its process measured as sessions open.
      const perSession = await backend.create(makeTestBundle(HELLO, { name: 'idle-sessions', session: { singleInstance: false, multiSession: true, keepAlive: true }, limits: { maxInstances: 12 } }));
      const sessions: string[] = [await perSession.openSession()];
      await settle();
      const pid = perSession.processInfo()!.pid;
      const oneInstance = rssOf(pid);
      const extra = 8;
      for (let i = 0; i < extra; i++) sessions.push(await perSession.openSession());
      await Promise.all(sessions.map((sid, i) => perSession.invoke(sid, 'ping', i)));
      await settle();
      const instanceEach = mb((rssOf(pid) - oneInstance) / extra);
      const baseline: Measurement = { label: `bare child process + 1 worker thread: RSS ${bareEach.toFixed(1)} MB each`, samples: count, p50Us: NaN, p99Us: NaN, opsPerSec: NaN };
      ctx.compare({
        name: `${count} idle TAs live at once`,
        subject: { ...subject, label: `${subject.label}; RSS ${enclaveEach.toFixed(1)} MB per TA process, ${instanceEach.toFixed(1)} MB per further idle instance, +${runtimeEach.toFixed(1)} MB in the runtime per TA` },
        baseline,
        ratio: enclaveEach / bareEach,
        targets: [
          { description: `RSS per TA process with one idle instance (measured ${enclaveEach.toFixed(1)} MB; info)`, pass: true },
          { description: `RSS per further idle instance in a TA process (measured ${instanceEach.toFixed(1)} MB; info)`, pass: true },
          { description: `all ${count} TAs answering`, pass: allAnswer },
        ],
        notes: `ratio = TA process RSS / a bare child process with one worker thread; RSS from /proc/<pid>/statm. Per instance: ${extra} more sessions of an instance-per-session TA, its process's RSS growth / ${extra}`,
      });
      await perSession.destroy();
      await Promise.all(enclaves.map((e) => e.destroy()));
    }
    await backend.destroy();
  },
});
