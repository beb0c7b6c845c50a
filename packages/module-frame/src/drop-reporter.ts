/**
 * Messages a module took but could not handle are reported, never silently lost: each drop
 * counts in the `enclave_edge_pipeline_dropped_total` metric at once, and a `pipeline.dropped`
 * event with the counts since the last one leaves at most once a second (a flood of drops
 * costs one event per second, not one per message).
 */
import type { EdgeMetrics } from '@enclave-edge/observability';

const EVENT_EVERY_MS = 1000;

interface Pending {
  count: number;
  reason: string;
}

export class DropReporter {
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private total = 0;

  constructor(private readonly metrics: EdgeMetrics, private readonly emit: (type: string, body: Record<string, unknown>) => void) {}

  /** Messages reported dropped since start. */
  get dropped(): number {
    return this.total;
  }

  /** One message dropped by `source` (a pipeline name or `input:<name>`) with an error code. */
  drop(source: string, code: string, reason: string): void {
    this.total++;
    this.metrics.dropped.inc({ source, code });
    const key = `${source}\u0000${code}`;
    const p = this.pending.get(key);
    if (p) {
      p.count++;
      p.reason = reason;
    } else {
      this.pending.set(key, { count: 1, reason });
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), EVENT_EVERY_MS);
      this.timer.unref?.();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const [key, p] of this.pending) {
      const [source, code] = key.split('\u0000') as [string, string];
      this.emit('pipeline.dropped', { source, code, count: p.count, reason: p.reason });
    }
    this.pending.clear();
  }
}
