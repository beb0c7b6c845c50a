/**
 * The benchmark harness. Every figure is reported beside a baseline measured in the same
 * run, because this machine is shared and absolute numbers drift.
 */
import { performance } from 'node:perf_hooks';
import { createBackend, probeBackend, EmulatedBackend, type EmulatedBackendOptions } from '@enclave-edge/enclave';

export interface Measurement {
  label: string;
  samples: number;
  p50Us: number;
  p99Us: number;
  /** Operations per second (sequential for latency runs, aggregate for throughput runs). */
  opsPerSec: number;
}

export interface Target {
  description: string;
  pass: boolean;
}

export interface Comparison {
  suite: string;
  name: string;
  subject: Measurement;
  baseline: Measurement;
  /** subject p50 / baseline p50 (latency) — or baseline ops/s / subject ops/s for throughput: >1 means slower. */
  ratio: number;
  targets: Target[];
  notes?: string;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Sequential latency: `iterations` calls after `warmup`, each timed. */
export async function measureLatency(
  label: string,
  fn: () => unknown,
  opts: { iterations?: number; warmup?: number } = {},
): Promise<Measurement> {
  const iterations = opts.iterations ?? 2000;
  const warmup = opts.warmup ?? Math.min(200, iterations);
  for (let i = 0; i < warmup; i++) await fn();
  const times = new Float64Array(iterations);
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const s = performance.now();
    await fn();
    times[i] = (performance.now() - s) * 1000;
  }
  const total = performance.now() - t0;
  const sorted = Array.from(times).sort((a, b) => a - b);
  return { label, samples: iterations, p50Us: percentile(sorted, 50), p99Us: percentile(sorted, 99), opsPerSec: (iterations / total) * 1000 };
}

/**
 * Latency of a subject and its baseline, interleaved call by call (baseline, subject, baseline,
 * …), so that both see the same machine: on a shared host the load changes between two
 * back-to-back runs by more than the effect being measured.
 */
export async function measureLatencyPaired(
  subject: { label: string; fn: (i: number) => unknown },
  baseline: { label: string; fn: (i: number) => unknown },
  opts: { iterations?: number; warmup?: number } = {},
): Promise<{ subject: Measurement; baseline: Measurement }> {
  const iterations = opts.iterations ?? 2000;
  const warmup = opts.warmup ?? Math.min(200, iterations);
  for (let i = 0; i < warmup; i++) {
    await baseline.fn(i);
    await subject.fn(i);
  }
  const times = [new Float64Array(iterations), new Float64Array(iterations)];
  const spent = [0, 0];
  const fns = [baseline.fn, subject.fn];
  for (let i = 0; i < iterations; i++) {
    for (let k = 0; k < 2; k++) {
      const s = performance.now();
      await fns[k]!(i);
      const us = (performance.now() - s) * 1000;
      times[k]![i] = us;
      spent[k]! += us;
    }
  }
  return { baseline: measurementOf(baseline.label, times[0]!, spent[0]!), subject: measurementOf(subject.label, times[1]!, spent[1]!) };
}

/** A Measurement from per-call times in µs (`spentUs`: the wall time they took, for ops/s; their sum by default). */
export function measurementOf(label: string, timesUs: ArrayLike<number>, spentUs?: number): Measurement {
  const sorted = Array.from(timesUs).sort((a, b) => a - b);
  const spent = spentUs ?? sorted.reduce((a, b) => a + b, 0);
  return { label, samples: sorted.length, p50Us: percentile(sorted, 50), p99Us: percentile(sorted, 99), opsPerSec: (sorted.length / spent) * 1e6 };
}

/**
 * measureLatencyPaired in rounds: on a shared host, which core each side's threads wake on (and
 * who else runs there) changes between rounds by more than the effect, so one round's p50 ratio
 * can land far off either way. Reports the round with the median subject/baseline p50 ratio, and
 * every round's ratio.
 */
export async function measureRatioPaired(
  subject: { label: string; fn: (i: number) => unknown },
  baseline: { label: string; fn: (i: number) => unknown },
  opts: { rounds?: number; iterations?: number; warmup?: number } = {},
): Promise<{ subject: Measurement; baseline: Measurement; ratio: number; ratios: number[] }> {
  const rounds: Array<{ subject: Measurement; baseline: Measurement; ratio: number }> = [];
  for (let r = 0; r < (opts.rounds ?? 7); r++) {
    const m = await measureLatencyPaired(subject, baseline, { iterations: opts.iterations ?? 1000, warmup: r === 0 ? (opts.warmup ?? 300) : 50 });
    rounds.push({ ...m, ratio: m.subject.p50Us / m.baseline.p50Us });
  }
  const ratios = rounds.map((x) => x.ratio);
  const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[rounds.length >> 1]!;
  return { ...median, ratios };
}

/** Aggregate throughput with `concurrency` calls in flight until `total` calls have completed. */
export async function measureThroughput(
  label: string,
  fn: () => Promise<unknown>,
  opts: { total?: number; concurrency?: number; warmup?: number } = {},
): Promise<Measurement> {
  const total = opts.total ?? 10_000;
  const concurrency = opts.concurrency ?? 64;
  for (let i = 0; i < (opts.warmup ?? 100); i++) await fn();
  const times: number[] = [];
  let started = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (started < total) {
      started++;
      const s = performance.now();
      await fn();
      times.push((performance.now() - s) * 1000);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - t0;
  times.sort((a, b) => a - b);
  return { label, samples: times.length, p50Us: percentile(times, 50), p99Us: percentile(times, 99), opsPerSec: (times.length / elapsed) * 1000 };
}

export interface BenchContext {
  /** Without `targets` the row is information only. */
  compare(c: Omit<Comparison, 'suite' | 'ratio' | 'targets'> & { ratio?: number; targets?: Target[] }): void;
}

export interface BenchSuite {
  name: string;
  run(ctx: BenchContext): Promise<void>;
}

export function defineSuite(suite: BenchSuite): BenchSuite {
  return suite;
}

/**
 * The emulated backend as every product path picks it: probed and created through the registry
 * (ta-runtime, `ta run`, the TA test harness). Typed as EmulatedBackend for the suites that
 * measure its own knobs (standby pool, prewarm).
 */
export function emulatedBackend(options?: EmulatedBackendOptions): EmulatedBackend {
  const probe = probeBackend('emulated');
  if (!probe.available) throw new Error(`the emulated backend is not available here: ${probe.reason ?? 'no reason given'}`);
  const backend = createBackend('emulated', options as Record<string, unknown> | undefined);
  if (!(backend instanceof EmulatedBackend)) throw new Error(`the registry's "emulated" backend is a ${backend.constructor.name}, not EmulatedBackend`);
  return backend;
}
