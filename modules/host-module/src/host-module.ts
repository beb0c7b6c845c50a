/**
 * host-module: the cloud-facing side. Direct methods and pipelines become TA calls that go
 * to ta-runtime over edgeHub (output taRequest / input taResponse) through TAClient; it never
 * imports ta-runtime code.
 */
import type { Twin } from 'azure-iot-device';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { hostSettingsSchema, type HostSettings } from '@enclave-edge/protocol';
import { ReportedBatcher, TAClient, sendTelemetry } from '@enclave-edge/ta-client';
import { IntervalStats, createMetrics, setLogLevel, type EdgeMetrics, type Logger } from '@enclave-edge/observability';
import { CallRecorder } from './call-recorder.js';
import { HOST_METHOD_NAMES, handleMethod, type MethodContext } from './methods.js';
import { Pipelines } from './pipelines.js';
import type { EdgeModuleClient } from '@enclave-edge/ta-client/module-client-like';

export const TELEMETRY_OUTPUT = 'telemetry';

export interface HostModuleOptions {
  client: EdgeModuleClient;
  log: Logger;
  moduleId?: string;
  metrics?: EdgeMetrics;
}

export interface HostModule {
  taClient: TAClient;
  pipelines: Pipelines;
  metrics: EdgeMetrics;
  settings(): HostSettings;
  stop(): Promise<void>;
}

export async function startHostModule(opts: HostModuleOptions): Promise<HostModule> {
  const { client, log } = opts;
  const moduleId = opts.moduleId ?? 'host-module';
  const metrics = opts.metrics ?? createMetrics({ module: moduleId });
  const stats = new IntervalStats();
  const recorder = new CallRecorder(metrics, stats);
  const startedAt = Date.now();
  let settings: HostSettings = hostSettingsSchema.parse({});
  const defaultTimeoutMs = () => settings.defaultTimeoutMs;

  const taClient = new TAClient(client, { defaultTimeoutMs: settings.defaultTimeoutMs });
  const errorCounts = new Map<string, number>();
  const pipelines = new Pipelines({
    ta: taClient,
    send: (output, msg) => client.sendOutputEvent(output, msg),
    recorder,
    log,
    defaultTimeoutMs,
    onError: (pipeline, err) => {
      log.warn({ pipeline, code: err.code }, `pipeline failed: ${err.message}`);
      errorCounts.set(pipeline, (errorCounts.get(pipeline) ?? 0) + 1);
    },
  });

  await client.open();
  taClient.start();
  client.on('error', (err) => log.error({ err: err?.message }, 'module client error'));

  client.on('inputMessage', (input, msg) => {
    if (input === 'taResponse') return; // TAClient's own listener handles (and completes) these
    void client.complete?.(msg).catch(() => undefined);
    metrics.messages.inc({ input, output: '' });
    if (!pipelines.handles(input)) {
      log.debug({ input }, 'message on an input without a pipeline dropped');
      return;
    }
    void pipelines.onMessage(input, msg);
  });

  const health = async (): Promise<Record<string, unknown>> => {
    let runtime: Record<string, unknown>;
    try {
      const tas = await taClient.listTAs({ timeoutMs: Math.min(2000, settings.defaultTimeoutMs) });
      runtime = { reachable: true, tas: tas.length };
    } catch (err) {
      runtime = { reachable: false, error: err instanceof EnclaveEdgeError ? err.code : 'INTERNAL' };
    }
    return {
      status: runtime.reachable ? 'ok' : 'degraded',
      module: moduleId,
      uptimeSec: Math.round((Date.now() - startedAt) / 1000),
      runtime,
      inFlight: taClient.inFlight,
      pipelines: { active: Object.values(pipelines.status()).filter((p) => p.status === 'active').length, processed: pipelines.processed, failed: pipelines.failed },
    };
  };
  const ctx: MethodContext = { ta: taClient, defaultTimeoutMs, recorder, health };
  for (const name of HOST_METHOD_NAMES) {
    client.onMethod(name, (req, res) => {
      void handleMethod(name, req.payload, ctx).then(
        (r) => res.send(r.status, r.payload),
      ).catch((err: Error) => log.warn({ method: name, err: err.message }, 'could not send the method response'));
    });
  }

  const twin: Twin = await client.getTwin();
  const reported = new ReportedBatcher(twin, 50, (err) => log.warn({ err: err.message }, 'reported properties update failed'));
  const applyDesired = (desired: Record<string, unknown>) => {
    const parsed = hostSettingsSchema.safeParse(desired);
    if (parsed.success) settings = parsed.data;
    else log.warn({ issue: parsed.error.issues[0]?.message }, 'host settings in desired properties are invalid; keeping the previous ones');
    if (typeof desired.logLevel === 'string') setLogLevel(log, desired.logLevel);
    const statuses = pipelines.configure(desired.pipelines);
    // Replace the reported pipeline map: null removes pipelines no longer desired.
    const previous = (twin.properties.reported as unknown as { pipelines?: Record<string, unknown> }).pipelines ?? {};
    const pipelinesPatch: Record<string, unknown> = {};
    for (const k of Object.keys(previous)) if (!(k in statuses)) pipelinesPatch[k] = null;
    Object.assign(pipelinesPatch, statuses);
    reported.patch({ pipelines: pipelinesPatch, settings: { defaultTimeoutMs: settings.defaultTimeoutMs, metricsIntervalSec: settings.metricsIntervalSec, logLevel: log.level } });
    scheduleMetrics();
    log.info({ pipelines: Object.keys(statuses).length }, 'desired properties applied');
  };

  let metricsTimer: NodeJS.Timeout | undefined;
  let metricsEvery = 0;
  const scheduleMetrics = () => {
    if (metricsTimer && metricsEvery === settings.metricsIntervalSec) return;
    if (metricsTimer) clearInterval(metricsTimer);
    metricsEvery = settings.metricsIntervalSec;
    metricsTimer = setInterval(() => void flushMetrics(), metricsEvery * 1000);
    metricsTimer.unref?.();
  };
  const flushMetrics = async () => {
    const { from, to, stats: rows } = stats.drain();
    const pipelineErrors = Object.fromEntries(errorCounts);
    errorCounts.clear();
    if (rows.length === 0 && Object.keys(pipelineErrors).length === 0) return;
    await sendTelemetry(client, TELEMETRY_OUTPUT, 'metrics.invocations', { module: moduleId, intervalSec: metricsEvery, from, to, stats: rows, pipelineErrors })
      .catch((err: Error) => log.warn({ err: err.message }, 'could not send metrics telemetry'));
  };

  applyDesired(twin.properties.desired as Record<string, unknown>);
  twin.on('properties.desired', () => applyDesired(twin.properties.desired as Record<string, unknown>));
  reported.patch({ module: { name: moduleId, version: '0.1.0', startedAt: new Date(startedAt).toISOString(), methods: HOST_METHOD_NAMES } });
  log.info({ methods: HOST_METHOD_NAMES }, 'host-module ready');

  return {
    taClient,
    pipelines,
    metrics,
    settings: () => settings,
    async stop() {
      if (metricsTimer) clearInterval(metricsTimer);
      await flushMetrics();
      await reported.flush();
      taClient.stop();
      await client.close().catch(() => undefined);
    },
  };
}
