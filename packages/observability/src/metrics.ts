/** Prometheus metrics (prom-client) with the names both modules share. */
import { randomUUID } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface EdgeMetrics {
  registry: Registry;
  invocations: Counter<'ta' | 'command'>;
  errors: Counter<'ta' | 'command' | 'code'>;
  latency: Histogram<'ta' | 'command'>;
  liveEnclaves: Gauge;
  restarts: Counter<'ta'>;
  messages: Counter<'input' | 'output'>;
  /** Messages a module took but could not handle (`source`: a pipeline or `input:<name>`). */
  dropped: Counter<'source' | 'code'>;
}

/**
 * IoT Edge's own metrics label set (edgeAgent/edgeHub, and Microsoft's monitoring workbooks):
 * `iothub`, `edge_device`, `instance_number` (one per process start) and `module_name`. The hub and
 * device come from the environment edgeAgent gives modules; absent ones are left out.
 */
export function edgeMetricLabels(module: string, env: Record<string, string | undefined> = process.env, instance = INSTANCE_NUMBER): Record<string, string> {
  return {
    module_name: module,
    ...(env.IOTEDGE_IOTHUBHOSTNAME ? { iothub: env.IOTEDGE_IOTHUBHOSTNAME } : {}),
    ...(env.IOTEDGE_DEVICEID ? { edge_device: env.IOTEDGE_DEVICEID } : {}),
    instance_number: instance,
  };
}

const INSTANCE_NUMBER = randomUUID();

export function createMetrics(opts: { module: string; defaultMetrics?: boolean; env?: Record<string, string | undefined> }): EdgeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels(edgeMetricLabels(opts.module, opts.env));
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'enclave_edge_' });
  const registers = [registry];
  return {
    registry,
    invocations: new Counter({ name: 'enclave_edge_ta_invocations_total', help: 'TA calls', labelNames: ['ta', 'command'], registers }),
    errors: new Counter({ name: 'enclave_edge_ta_errors_total', help: 'TA calls that failed, by error code', labelNames: ['ta', 'command', 'code'], registers }),
    latency: new Histogram({
      name: 'enclave_edge_ta_latency_seconds',
      help: 'TA call latency',
      labelNames: ['ta', 'command'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }),
    liveEnclaves: new Gauge({ name: 'enclave_edge_live_enclaves', help: 'Enclaves currently loaded', registers }),
    restarts: new Counter({ name: 'enclave_edge_enclave_restarts_total', help: 'Enclave restarts after a crash or timeout', labelNames: ['ta'], registers }),
    messages: new Counter({ name: 'enclave_edge_messages_total', help: 'Messages handled, by input or output', labelNames: ['input', 'output'], registers }),
    dropped: new Counter({ name: 'enclave_edge_pipeline_dropped_total', help: 'Messages taken but not handled, by source and error code', labelNames: ['source', 'code'], registers }),
  };
}
