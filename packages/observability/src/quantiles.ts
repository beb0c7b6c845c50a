/** Per-interval invocation statistics (count, errors, p50/p95) per TA and command. */
import type { InvocationStatsRow } from './types.js';

const MAX_SAMPLES = 4096; // per key per interval: reservoir bound keeps memory flat under load

export class IntervalStats {
  private rows = new Map<string, { ta: string; command: string; count: number; errors: number; samples: number[] }>();
  private since = Date.now();

  record(ta: string, command: string, ms: number, ok: boolean): void {
    const key = `${ta}\u0000${command}`;
    let row = this.rows.get(key);
    if (!row) {
      if (this.rows.size >= 1024) return; // hostile command names cannot grow this without bound
      row = { ta, command, count: 0, errors: 0, samples: [] };
      this.rows.set(key, row);
    }
    row.count++;
    if (!ok) row.errors++;
    if (row.samples.length < MAX_SAMPLES) row.samples.push(ms);
    else {
      const j = Math.floor(Math.random() * row.count); // reservoir sampling
      if (j < MAX_SAMPLES) row.samples[j] = ms;
    }
  }

  /** Return this interval's rows and start a new interval. */
  drain(): { from: string; to: string; stats: InvocationStatsRow[] } {
    const from = new Date(this.since).toISOString();
    this.since = Date.now();
    const stats: InvocationStatsRow[] = [];
    for (const r of this.rows.values()) {
      const s = r.samples.sort((a, b) => a - b);
      const pick = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : 0);
      stats.push({ ta: r.ta, command: r.command, count: r.count, errors: r.errors, p50Ms: round(pick(0.5)), p95Ms: round(pick(0.95)) });
    }
    this.rows.clear();
    return { from, to: new Date(this.since).toISOString(), stats };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
