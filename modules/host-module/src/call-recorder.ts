/** Records each TA call into Prometheus metrics and the per-interval telemetry statistics. */
import { toEnclaveEdgeError } from '@enclave-edge/errors';
import type { EdgeMetrics, IntervalStats } from '@enclave-edge/observability';

export class CallRecorder {
  constructor(private readonly metrics: EdgeMetrics, private readonly stats: IntervalStats) {}

  record(ta: string, command: string, ms: number, err?: unknown): void {
    const labels = { ta, command };
    this.metrics.invocations.inc(labels);
    this.metrics.latency.observe(labels, ms / 1000);
    if (err !== undefined) this.metrics.errors.inc({ ...labels, code: toEnclaveEdgeError(err).code });
    this.stats.record(ta, command, ms, err === undefined);
  }
}
