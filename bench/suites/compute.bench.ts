/**
 * TA compute at bare speed: realistic workloads run as a TA in the emulated enclave beside the
 * same code bare in a worker (no SES, no compartment), alternating call by call. JS: a pure-JS
 * SHA-256, a FIR filter over a Float64Array, a Math-heavy loop, a hash loop over Math.imul,
 * typed-array allocation, JSON round trips, string building. Wasm: wasm-stats over 1 M values
 * and a CPU-bound AssemblyScript loop, each beside the same module instantiated bare.
 *
 * The target rows are self-timed: the code times its own compute with the clock a TA has
 * (ctx.untrustedTime, or ta.untrusted_time_ms in Wasm); the bare side runs the same code with a
 * context whose clock is the same Date.now. Each is beside an information row timed from the host
 * around the whole call, which adds the call's path into the enclave (host → TA process → worker)
 * on one side and a worker postMessage on the other.
 */
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { EmulatedEnclave } from '@enclave-edge/enclave';
import { makeTestBundle } from '@enclave-edge/enclave/testing';
import { buildWasm } from '@enclave-edge/ta-toolchain/build-wasm';
import { defineSuite, emulatedBackend, measureLatencyPaired, measurementOf, type Measurement } from '../lib.js';

/** The workloads, shared verbatim by the TA and the bare worker. Deterministic inputs (no Date/Math.random in a compartment). */
const WORKLOADS = String.raw`
'use strict';
function lcg(seed) { let s = seed >>> 0; return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0); }

const K256 = new Uint32Array([
  0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,
  0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
  0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,
  0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
  0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,
  0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
// FIPS 180-4 SHA-256, written the way pure-JS libraries are: DataView reads, Uint32Array schedule, rotations.
function sha256(data) {
  const h = new Uint32Array([0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19]);
  const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 4, data.length * 8, false);
  view.setUint32(padded.length - 8, Math.floor(data.length / 0x20000000), false);
  const w = new Uint32Array(64);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4, false);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let A = h[0], B = h[1], C = h[2], D = h[3], E = h[4], F = h[5], G = h[6], H = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((E >>> 6) | (E << 26)) ^ ((E >>> 11) | (E << 21)) ^ ((E >>> 25) | (E << 7));
      const t1 = (H + S1 + ((E & F) ^ (~E & G)) + K256[i] + w[i]) | 0;
      const S0 = ((A >>> 2) | (A << 30)) ^ ((A >>> 13) | (A << 19)) ^ ((A >>> 22) | (A << 10));
      const t2 = (S0 + ((A & B) ^ (A & C) ^ (B & C))) | 0;
      H = G; G = F; F = E; E = (D + t1) | 0; D = C; C = B; B = A; A = (t1 + t2) | 0;
    }
    h[0] += A; h[1] += B; h[2] += C; h[3] += D; h[4] += E; h[5] += F; h[6] += G; h[7] += H;
  }
  let hex = '';
  for (let i = 0; i < 8; i++) hex += h[i].toString(16).padStart(8, '0');
  return hex;
}
const SHA_INPUT = (() => { const r = lcg(1); const b = new Uint8Array(256 * 1024); for (let i = 0; i < b.length; i++) b[i] = r() & 255; return b; })();

const SIGNAL = (() => { const r = lcg(2); const s = new Float64Array(64 * 1024); for (let i = 0; i < s.length; i++) s[i] = Math.sin(i / 50) + (r() / 4294967296 - 0.5) * 0.1; return s; })();
const TAPS = (() => { const n = 63, t = new Float64Array(n); for (let i = 0; i < n; i++) { const x = i - (n - 1) / 2; t[i] = (x === 0 ? 0.2 : Math.sin(0.2 * Math.PI * x) / (Math.PI * x)) * (0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (n - 1))); } return t; })();
function fir(signal, taps) {
  const out = new Float64Array(signal.length);
  const m = taps.length;
  for (let i = m - 1; i < signal.length; i++) {
    let acc = 0;
    for (let k = 0; k < m; k++) acc += taps[k] * signal[i - k];
    out[i] = acc;
  }
  let energy = 0;
  for (let i = 0; i < out.length; i++) energy += out[i] * out[i];
  return energy;
}

function mathLoop(n) {
  let acc = 0;
  for (let i = 1; i <= n; i++) {
    const x = i * 0.001;
    acc += Math.sqrt(x) * Math.sin(x) + Math.log(1 + x) - Math.abs(Math.cos(x)) + Math.max(0, Math.tanh(x - 3)) + Math.floor(x) % 3;
  }
  return acc;
}

function imulHash(n) { let h = 2166136261; for (let i = 0; i < n; i++) h = Math.imul(h ^ (i & 255), 16777619); return h >>> 0; }

function typedAlloc(n) { let s = 0; for (let i = 0; i < n; i++) { const a = new Uint8Array(64); a[i & 63] = i; s += a[(i + 1) & 63] + a.length; } return s; }

function jsonRoundTrips(n) {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const reading = { deviceId: 'sensor-' + (i % 16), seq: i, ts: 1700000000000 + i, values: { temperature: 20 + (i % 10) / 10, humidity: 40 + (i % 7), pressure: 1013.25 }, tags: ['a', 'b', String(i % 5)] };
    const back = JSON.parse(JSON.stringify(reading));
    total += back.seq + back.values.humidity + back.tags.length;
  }
  return total;
}

function stringBuild(n) {
  let s = '';
  const parts = [];
  for (let i = 0; i < n; i++) {
    s += 'k' + i + '=' + (i * 7 % 13) + ';';
    parts.push(i.toString(36) + ':' + ((i & 1) ? 'odd' : 'even'));
    if (s.length > 4096) s = s.slice(2048);
  }
  return s.length + parts.join(',').length;
}

const WORK = {
  sha256: () => sha256(SHA_INPUT),
  fir: () => fir(SIGNAL, TAPS),
  math: (p) => mathLoop(p.n),
  imul: (p) => imulHash(p.n),
  alloc: (p) => typedAlloc(p.n),
  json: (p) => jsonRoundTrips(p.n),
  strings: (p) => stringBuild(p.n),
};

// A workload p.reps times in a row, timed by the context's clock (whole milliseconds: hence the repeats).
function timed(ctx, p) {
  const t0 = ctx.untrustedTime.now();
  let v;
  for (let r = 0; r < p.reps; r++) v = WORK[p.w](p);
  return { v, ms: ctx.untrustedTime.now() - t0 };
}
`;

const TA_SOURCE = `${WORKLOADS}\nmodule.exports = { commands: { run: (ctx, p) => WORK[p.w](p), timed: (ctx, p) => timed(ctx, p) } };`;

/** The bare side: the same workloads, plus the same Wasm modules behind a minimal WASM-ABI host, in a plain worker. */
const BARE_WORKER = `${WORKLOADS}
const { parentPort } = require('node:worker_threads');
// the clock the TA context gives (worker/context.cts)
const CTX = Object.freeze({ untrustedTime: Object.freeze({ now: () => Date.now() }) });
const wasm = new Map();
function loadWasm(name, bytes) {
  let result = null;
  let inst;
  const text = (p, l) => new TextDecoder().decode(new Uint8Array(inst.exports.memory.buffer, p, l));
  inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    ta: { result: (p, l) => { result = text(p, l); }, log: () => {}, random: () => {}, untrusted_time_ms: () => Date.now() },
    env: { abort: () => { throw new Error('abort'); } },
  });
  wasm.set(name, (command, params) => {
    const cmd = new TextEncoder().encode(command);
    const par = new TextEncoder().encode(JSON.stringify(params ?? null));
    const ptr = inst.exports.ta_alloc(cmd.length + par.length);
    const mem = new Uint8Array(inst.exports.memory.buffer);
    mem.set(cmd, ptr);
    mem.set(par, ptr + cmd.length);
    result = null;
    const rc = inst.exports.ta_invoke(ptr, cmd.length, ptr + cmd.length, par.length);
    if (rc !== 0) throw new Error('wasm rc ' + rc + ': ' + result);
    return result === null ? null : JSON.parse(result);
  });
}
parentPort.on('message', (m) => {
  if (m.t === 'wasm') { loadWasm(m.name, m.bytes); parentPort.postMessage({ id: m.id }); return; }
  const value = m.t === 'js' ? WORK[m.p.w](m.p) : m.t === 'timed' ? timed(CTX, m.p) : wasm.get(m.name)(m.command, m.params);
  parentPort.postMessage({ id: m.id, value });
});
`;

function bareWorker(): { call: (msg: Record<string, unknown>) => Promise<unknown>; close: () => Promise<number> } {
  const w = new Worker(BARE_WORKER, { eval: true, execArgv: [], env: {} });
  let next = 0;
  const pending = new Map<number, (v: unknown) => void>();
  w.on('message', (m: { id: number; value: unknown }) => {
    pending.get(m.id)?.(m.value);
    pending.delete(m.id);
  });
  return {
    call: (msg) => new Promise((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      w.postMessage({ ...msg, id });
    }),
    close: () => w.terminate(),
  };
}

/** A self-timed compute figure ({ ms } from the code's own clock), or a refusal naming what came back. */
function selfMs(v: unknown, what: string): number {
  const ms = (v as { ms?: unknown } | null)?.ms;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new Error(`${what}: no self-timed figure in ${JSON.stringify(v)}`);
  return ms;
}

/**
 * Subject and baseline alternating call by call (measureLatencyPaired), each call also returning
 * the time its code measured itself: `endToEnd` as timed from the host, `self` from those figures.
 */
async function measureSelfTimedPaired(
  subject: { label: string; fn: () => Promise<unknown> },
  baseline: { label: string; fn: () => Promise<unknown> },
  opts: { iterations: number; warmup: number },
): Promise<{ endToEnd: { subject: Measurement; baseline: Measurement }; self: { subject: Measurement; baseline: Measurement } }> {
  const own: [number[], number[]] = [[], []];
  const endToEnd = await measureLatencyPaired(
    { label: `${subject.label}, end to end`, fn: async () => own[0].push(selfMs(await subject.fn(), subject.label) * 1000) },
    { label: `${baseline.label}, end to end`, fn: async () => own[1].push(selfMs(await baseline.fn(), baseline.label) * 1000) },
    opts,
  );
  // warm-up calls recorded too: keep the measured ones
  const measured = (xs: number[]) => xs.slice(xs.length - opts.iterations);
  return { endToEnd, self: { subject: measurementOf(`${subject.label}, self-timed`, measured(own[0])), baseline: measurementOf(`${baseline.label}, self-timed`, measured(own[1])) } };
}

const JS_WORKLOADS: Array<{ w: string; label: string; p?: Record<string, unknown> }> = [
  { w: 'sha256', label: 'SHA-256 (pure JS) of 256 KiB' },
  { w: 'fir', label: 'FIR filter, 63 taps over a 64 Ki Float64Array' },
  { w: 'math', label: 'Math-heavy loop, 200 k iterations', p: { n: 200_000 } },
  { w: 'imul', label: 'hash loop over Math.imul, 5 M iterations', p: { n: 5_000_000 } },
  { w: 'alloc', label: 'new Uint8Array(64) per iteration, 500 k', p: { n: 500_000 } },
  { w: 'json', label: 'JSON parse+stringify, 5 k round trips', p: { n: 5_000 } },
  { w: 'strings', label: 'string building, 100 k parts', p: { n: 100_000 } },
];

/**
 * COMPUTE_BENCH_ITERATIONS and COMPUTE_BENCH_SELF_ITERATIONS override the paired calls per
 * end-to-end and per self-timed JS workload (Wasm: half as many); COMPUTE_BENCH_SELF_MS the least
 * compute per self-timed JS call (the clock ticks in ms); COMPUTE_BENCH_ONLY=js or =wasm runs one half.
 */
const ITERATIONS = Number(process.env.COMPUTE_BENCH_ITERATIONS ?? 30);
const SELF_ITERATIONS = Number(process.env.COMPUTE_BENCH_SELF_ITERATIONS ?? 40);
const ONLY = process.env.COMPUTE_BENCH_ONLY;
const SELF_MS = Number(process.env.COMPUTE_BENCH_SELF_MS ?? 50);
const target = (ratio: number) => [{ description: '≥ 0.9× bare speed (time ≤ 1.11× the same code bare in a worker)', pass: ratio <= 1 / 0.9 }];

export default defineSuite({
  name: 'compute',
  async run(ctx) {
    const backend = emulatedBackend();
    const bare = bareWorker();
    const live: EmulatedEnclave[] = [];
    try {
      const js = await backend.create(makeTestBundle(TA_SOURCE, { name: 'compute', limits: { heapMb: 256, callTimeoutMs: 60_000, maxConcurrency: 1 } }));
      live.push(js);
      for (const wl of ONLY === 'wasm' ? [] : JS_WORKLOADS) {
        const params = { w: wl.w, ...wl.p };
        const [inTA, outside] = [await js.invoke(undefined, 'run', params), await bare.call({ t: 'js', p: params })];
        if (inTA !== outside) throw new Error(`${wl.w}: the TA computed ${String(inTA)}, bare ${String(outside)}`);
        const { subject, baseline } = await measureLatencyPaired(
          { label: `TA (enclave): ${wl.label}`, fn: () => js.invoke(undefined, 'run', params) },
          { label: `bare worker: ${wl.label}`, fn: () => bare.call({ t: 'js', p: params }) },
          { iterations: ITERATIONS, warmup: 3 },
        );

        // enough repeats per call that whole-millisecond clock ticks are small beside the figure
        const reps = Math.max(1, Math.ceil((SELF_MS * 1000) / baseline.p50Us));
        const timedParams = { ...params, reps };
        const same = (side: string) => (v: unknown) => {
          if ((v as { v?: unknown }).v !== outside) throw new Error(`${wl.w}: the timed run ${side} computed ${JSON.stringify(v)}, not ${String(outside)}`);
          return v;
        };
        const m = await measureSelfTimedPaired(
          { label: `TA (enclave): ${wl.label} ×${reps}`, fn: () => js.invoke(undefined, 'timed', timedParams).then(same('in the TA')) },
          { label: `bare worker: ${wl.label} ×${reps}`, fn: () => bare.call({ t: 'timed', p: timedParams }).then(same('bare')) },
          { iterations: SELF_ITERATIONS, warmup: 2 },
        );
        const ratio = m.self.subject.p50Us / m.self.baseline.p50Us;
        ctx.compare({ name: `JS ${wl.label}`, ...m.self, ratio, targets: target(ratio), notes: `self-timed compute, ${reps} runs per call` });
        ctx.compare({ name: `JS ${wl.label}, end to end (info)`, subject, baseline, notes: 'one run per call, timed from the host around invoke(): includes the call into the enclave' });
      }

      const root = fileURLToPath(new URL('../..', import.meta.url));
      const timedWasm = `${root}bench/fixtures/timed-wasm`;
      const asLoopHeapMb = (JSON.parse(readFileSync(`${root}bench/fixtures/as-loop/ta.json`, 'utf8')) as { limits: { heapMb: number } }).limits.heapMb;
      const values = (n: number) => Array.from({ length: n }, (_, i) => (i % 1000) * 0.5 - 100);
      const wasmTAs = [
        // each module unchanged plus a "timed" command: its own command timed by the module itself.
        // The sample declares 16 MB of linear memory; 1 M values as JSON text and Array<f64> need more.
        { name: 'wasm-stats', code: (await buildWasm(timedWasm, 'assembly/stats.ts', false, 512)).code, command: 'stats', sizes: [1_000_000, 250_000], label: (n: number) => `wasm-stats over ${n / 1000} k values`, params: values },
        { name: 'as-loop', code: (await buildWasm(timedWasm, 'assembly/spin.ts', false, asLoopHeapMb)).code, command: 'spin', sizes: [20_000_000], label: (n: number) => `AssemblyScript loop, ${n / 1e6} M rounds`, params: (n: number) => ({ n }) },
      ];
      for (const t of ONLY === 'js' ? [] : wasmTAs) {
        const create = async () => {
          const e = await backend.create(makeTestBundle(t.code, { name: t.name, runtime: 'wasm', limits: { heapMb: 512, callTimeoutMs: 60_000, maxConcurrency: 1 } }), { maxPayloadBytes: 16 * 1024 * 1024 });
          live.push(e);
          return e;
        };
        let e = await create();
        await bare.call({ t: 'wasm', name: t.name, bytes: t.code });
        const refused: string[] = [];
        for (const n of t.sizes) {
          const params = t.params(n);
          let inTA: unknown;
          try {
            inTA = await e.invoke(undefined, t.command, params);
          } catch (err) {
            // reported as a missed target, then measured at the next size
            refused.push(`${t.label(n)}: the enclave refused it (${(err as Error).message})`);
            e = await create();
            continue;
          }
          const outside = await bare.call({ t: 'call', name: t.name, command: t.command, params });
          if (JSON.stringify(inTA) !== JSON.stringify(outside)) throw new Error(`${t.name}: the TA returned ${JSON.stringify(inTA)}, bare ${JSON.stringify(outside)}`);
          const ok = (v: unknown) => {
            if ((v as { rc?: unknown }).rc !== 0) throw new Error(`${t.name}: the timed command failed: ${JSON.stringify(v)}`);
            return v;
          };
          const m = await measureSelfTimedPaired(
            { label: `TA (enclave): ${t.label(n)}`, fn: async () => ok(await e.invoke(undefined, 'timed', params)) },
            { label: `bare worker: ${t.label(n)}`, fn: async () => ok(await bare.call({ t: 'call', name: t.name, command: 'timed', params })) },
            { iterations: Math.max(5, Math.round(SELF_ITERATIONS / 2)), warmup: 2 },
          );
          const ratio = m.self.subject.p50Us / m.self.baseline.p50Us;
          ctx.compare({
            name: `Wasm ${t.label(n)}`, ...m.self, ratio,
            targets: [...refused.map((r) => ({ description: r, pass: false })), ...target(ratio)],
            notes: `self-timed compute: ta_invoke of "${t.command}" from its start to its end. A Wasm TA's process runs with V8's Wasm trap handler, as bare node does (guard pages bound loads and stores; RLIMIT_AS has room for each instance's guarded memory)`,
          });
          ctx.compare({
            name: `Wasm ${t.label(n)}, end to end (info)`, ...m.endToEnd,
            notes: `timed from the host around invoke(): includes the call into the enclave${t.name === 'wasm-stats' ? '; both sides take the numbers as a message and hand them to ta_invoke as JSON text (WASM-ABI.md)' : ''}`,
          });
          break;
        }
      }
    } finally {
      await Promise.all(live.map((e) => e.destroy()));
      await bare.close();
    }
  },
});
