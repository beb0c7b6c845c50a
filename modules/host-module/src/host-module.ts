/**
 * host-module: the cloud-facing side. Direct methods and pipelines become TA calls that go
 * to ta-runtime over edgeHub (output taRequest / input taResponse) through TAClient; it never
 * imports ta-runtime code. The module frame orders its start: it takes messages and methods
 * only once its pipelines are built from the twin.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { hostSettingsSchema, type HostSettings } from '@enclave-edge/protocol';
import { TAClient } from '@enclave-edge/ta-client';
import { createMetrics, setLogLevel, type EdgeMetrics, type Logger } from '@enclave-edge/observability';
import { openModuleFrame, type EdgeModuleClient } from '@enclave-edge/module-frame';
import type { Message } from 'azure-iot-device';
import { hostMethods, type MethodContext } from './methods.js';
import { Pipelines } from './pipelines.js';

export const TELEMETRY_OUTPUT = 'telemetry';

export interface HostModuleOptions {
  client: EdgeModuleClient;
  log: Logger;
  moduleId?: string;
  metrics?: EdgeMetrics;
  /** Persistent storage: pipeline input messages taken but not finished are kept there through a crash. */
  stateDir?: string | undefined;
}

export interface HostModule {
  taClient: TAClient;
  pipelines: Pipelines;
  metrics: EdgeMetrics;
  settings(): HostSettings;
  /** The frame is ready: twin read, pipelines built. */
  ready(): boolean;
  stop(): Promise<void>;
}

export async function startHostModule(opts: HostModuleOptions): Promise<HostModule> {
  const { client, log } = opts;
  const moduleId = opts.moduleId ?? 'host-module';
  const metrics = opts.metrics ?? createMetrics({ module: moduleId });
  let settings: HostSettings = hostSettingsSchema.parse({});
  const defaultTimeoutMs = () => settings.defaultTimeoutMs;

  const taClient = new TAClient(client, { defaultTimeoutMs: settings.defaultTimeoutMs, listen: false });

  // Every input but the TA answers is a pipeline's: those messages are journaled until their output is sent.
  const journal = opts.stateDir ? { dir: opts.stateDir, covers: (input: string) => input !== taClient.responseInput } : undefined;
  if (!journal) log.warn('no module storage (EDGE_MODULE_STATE_DIR): pipeline messages taken but not finished are lost if host-module dies');
  const frame = await openModuleFrame({ client, log, moduleId, metrics, telemetryOutput: TELEMETRY_OUTPUT, ...(journal ? { journal } : {}) });
  const { twin, reported, recorder } = frame;
  const errorCounts = new Map<string, number>();
  const pipelines = new Pipelines({
    ta: taClient,
    // Single attempts where the transport allows: the pipelines re-send in order themselves.
    send: client.sendOutputOnce ?? ((output, msg) => client.sendOutputEvent(output, msg)),
    recorder,
    log,
    defaultTimeoutMs,
    onError: (pipeline, err) => {
      log.warn({ pipeline, code: err.code }, `pipeline failed: ${err.message}`);
      errorCounts.set(pipeline, (errorCounts.get(pipeline) ?? 0) + 1);
    },
    onDropped: (pipeline, err) => frame.drops.drop(pipeline, err.code, err.message),
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
      uptimeSec: Math.round((Date.now() - frame.startedAt) / 1000),
      runtime,
      inFlight: taClient.inFlight,
      pipelines: {
        active: Object.values(pipelines.status()).filter((p) => p.status === 'active').length,
        processed: pipelines.processed, failed: pipelines.failed, retried: pipelines.retried, dropped: frame.drops.dropped,
      },
    };
  };
  const ctx: MethodContext = { ta: taClient, defaultTimeoutMs, recorder, health };

  const applyDesired = (desired: Record<string, unknown>) => {
    const parsed = hostSettingsSchema.safeParse(desired);
    if (parsed.success) settings = parsed.data;
    else log.warn({ issue: parsed.error.issues[0]?.message }, 'host settings in desired properties are invalid; keeping the previous ones');
    if (typeof desired.logLevel === 'string') setLogLevel(log, desired.logLevel);
    const statuses = pipelines.configure(desired.pipelines);
    // Replace the reported pipeline map: null removes pipelines no longer desired.
    const previous = (twin.properties.reported as unknown as { pipelines?: Record<string, unknown> }).pipelines ?? {};
    const pipelinesPatch: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const k of Object.keys(previous)) if (!Object.hasOwn(statuses, k)) pipelinesPatch[k] = null;
    Object.assign(pipelinesPatch, statuses);
    reported.patch({ pipelines: pipelinesPatch, settings: { defaultTimeoutMs: settings.defaultTimeoutMs, metricsIntervalSec: settings.metricsIntervalSec, logLevel: log.level } });
    frame.setMetricsInterval(settings.metricsIntervalSec);
    log.info({ pipelines: Object.keys(statuses).length }, 'desired properties applied');
  };

  const inputs = new Map<string, (msg: Message) => void>([[taClient.responseInput, (msg) => taClient.acceptResponse(msg)]]);
  // Every other input goes to the pipelines; one that no pipeline takes is reported dropped.
  const onOtherInput = (input: string, msg: Message) => {
    if (!pipelines.handles(input)) return frame.drops.drop(`input:${input}`, 'NO_PIPELINE', `no enabled pipeline takes input "${input}"`);
    return pipelines.onMessage(input, msg);
  };

  const methods = hostMethods(ctx);
  reported.patch({ module: { name: moduleId, version: '0.1.0', startedAt: new Date(frame.startedAt).toISOString(), methods: [...methods.keys()] } });
  await frame.serve({
    applyDesired,
    inputs,
    onOtherInput,
    methods,
    metricsExtra: () => {
      if (errorCounts.size === 0) return undefined;
      const pipelineErrors = Object.fromEntries(errorCounts);
      errorCounts.clear();
      return { pipelineErrors };
    },
  });

  return {
    taClient,
    pipelines,
    metrics,
    settings: () => settings,
    ready: () => frame.ready,
    stop: () => frame.stop(async () => taClient.stop()),
  };
}
