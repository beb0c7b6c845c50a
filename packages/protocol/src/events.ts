/** Upstream telemetry: every message carries a `type` application property. */
export const EVENT_TYPES = [
  'ta.loaded',
  'ta.rejected',
  'ta.unloaded',
  'ta.crashed',
  'ta.restarted',
  'ta.failed',
  'attestation.issued',
  'metrics.invocations',
  'pipeline.error',
  'pipeline.dropped',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface InvocationStats {
  ta: string;
  command: string;
  count: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
}

export interface MetricsEvent {
  type: 'metrics.invocations';
  module: string;
  intervalSec: number;
  from: string;
  to: string;
  stats: InvocationStats[];
}
