/** Records each TA call into Prometheus metrics and the per-interval telemetry statistics. */
import { toEnclaveEdgeError } from '@enclave-edge/errors';
import { LabelCap, type EdgeMetrics, type IntervalStats } from '@enclave-edge/observability';

export class CallRecorder {
  // Callers name the TA and command: bound the label pairs (see LabelCap).
  private readonly cap = new LabelCap();

  constructor(private readonly metrics: EdgeMetrics, private readonly stats: IntervalStats) {}

  record(ta: string, command: string, ms: number, err?: unknown): void {
    const labels = this.cap.labels(ta, command);
    this.metrics.invocations.inc(labels);
    this.metrics.latency.observe(labels, ms / 1000);
    if (err !== undefined) this.metrics.errors.inc({ ...labels, code: toEnclaveEdgeError(err).code });
    this.stats.record(labels.ta, labels.command, ms, err === undefined);
  }
}
