/**
 * ta-runtime as an IoT Edge module: twin-driven reconcile, input taRequest → output
 * taResponse (with a dedupe cache for edgeHub's at-least-once delivery), management
 * methods, lifecycle events and per-interval metrics on output `events`.
 */
import type { Message, Twin } from 'azure-iot-device';
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import {
  DEFAULT_MAX_LIMITS, LIMITS, TA_REQUEST_INPUT, TA_RESPONSE_OUTPUT, batchResponse, errorResponse, okResponse, parseTARequest, runtimeSettingsSchema,
  salvageRequestId, serializeMessage, type MetricsEvent, type TAResponse,
} from '@enclave-edge/protocol';
import { ReportedBatcher, jsonMessage, messageBytes, sendTelemetry } from '@enclave-edge/ta-client';
import { IntervalStats, LabelCap, createMetrics, setLogLevel, type EdgeMetrics, type Logger } from '@enclave-edge/observability';
import { DedupeCache } from './dedupe.js';
import { TARuntime } from './runtime.js';
import { RUNTIME_METHOD_NAMES, handleRuntimeMethod } from './methods.js';
import type { RuntimeConfig } from './config.js';
import type { TrustSetup } from './trust-setup.js';
import type { EdgeModuleClient } from '@enclave-edge/ta-client/module-client-like';

export const EVENTS_OUTPUT = 'events';
const MAX_IN_FLIGHT = 2048;

export interface TARuntimeModuleOptions {
  client: EdgeModuleClient;
  log: Logger;
  config: RuntimeConfig;
  trust: TrustSetup;
  metrics?: EdgeMetrics;
}

export interface TARuntimeModule {
  runtime: TARuntime;
  metrics: EdgeMetrics;
  dedupe: DedupeCache<TAResponse>;
  stop(): Promise<void>;
}

export async function startTARuntimeModule(opts: TARuntimeModuleOptions): Promise<TARuntimeModule> {
  const { client, log, config, trust } = opts;
  const metrics = opts.metrics ?? createMetrics({ module: config.moduleId });
  const stats = new IntervalStats();
  const labelCap = new LabelCap();
  const dedupe = new DedupeCache<TAResponse>();
  let inFlight = 0;
  let droppedMalformed = 0;

  await client.open();
  client.on('error', (err) => log.error({ err: err?.message }, 'module client error'));
  const twin: Twin = await client.getTwin();
  const reported = new ReportedBatcher(twin, 50, (err) => log.warn({ err: err.message }, 'reported properties update failed'));

  const emit = (type: string, body: Record<string, unknown>) => {
    void sendTelemetry(client, EVENTS_OUTPUT, type, { module: config.moduleId, ...body }).catch((err: Error) =>
      log.warn({ type, err: err.message }, 'could not send event'),
    );
  };

  // The whole runtime section is re-sent on every change: the batcher merges patches shallowly.
  const runtimeReported: Record<string, unknown> = {
    module: config.moduleId,
    version: '0.1.0',
    backend: trust.backend.kind,
    rootOfTrust: trust.rootOfTrust,
    simulated: config.simulated,
    devSignerTrusted: false,
    allowRemoteLoad: false,
    maxLimits: { ...DEFAULT_MAX_LIMITS },
    limits: { maxMessageBytes: LIMITS.maxMessageBytes, maxMethodPayloadBytes: LIMITS.maxMethodPayloadBytes, maxInlineBundleBytes: LIMITS.maxInlineBundleBytes, maxTimeoutMs: LIMITS.maxTimeoutMs, maxInFlight: MAX_IN_FLIGHT },
    methods: RUNTIME_METHOD_NAMES,
    startedAt: new Date().toISOString(),
  };

  const runtime = new TARuntime({
    backend: trust.backend,
    ...(trust.services ? { services: trust.services } : {}),
    log,
    rootOfTrust: trust.rootOfTrust.kind,
    sources: { bundleDir: config.bundleDir },
    // Bounded by MAX_IN_FLIGHT below; calls beyond a TA's maxConcurrency wait here rather than fail BUSY.
    createOptions: { queueLimit: 1024 },
    events: {
      event(type, body) {
        if (type === 'ta.restarted' && typeof body.ta === 'string') metrics.restarts.inc({ ta: body.ta });
        emit(type, body);
        metrics.liveEnclaves.set(runtime.liveEnclaves);
      },
      report(name, r) {
        reported.patch({ tas: { [name]: r } });
      },
      runtimeReport(patch) {
        Object.assign(runtimeReported, patch);
        reported.patch({ runtime: { ...runtimeReported } });
      },
      call(ta, command, ms, err) {
        // Callers name the command: bound the label pairs (see LabelCap).
        const labels = labelCap.labels(ta, command);
        metrics.invocations.inc(labels);
        metrics.latency.observe(labels, ms / 1000);
        if (err) metrics.errors.inc({ ...labels, code: err.code });
        stats.record(labels.ta, labels.command, ms, !err);
      },
    },
  });

  // Answer on output taResponse, correlated by the request id. An answer over the message
  // limit (a large result, or many in a batch) is answered with that error instead.
  const reply = (res: TAResponse) => {
    let text: string;
    try {
      text = serializeMessage(res);
    } catch (err) {
      text = serializeMessage(errorResponse(res.id, toEnclaveEdgeError(err)));
    }
    return client.sendOutputEvent(TA_RESPONSE_OUTPUT, jsonMessage('taResponse', text, { correlationId: res.id }))
      .catch((err: Error) => log.warn({ id: res.id, err: err.message }, 'could not send taResponse'));
  };

  const onRequest = (msg: Message) => {
    const body = messageBytes(msg);
    let req;
    try {
      req = parseTARequest(body);
    } catch (err) {
      const id = salvageRequestId(body);
      const e = toEnclaveEdgeError(err);
      if (id) void reply(errorResponse(id, e));
      else if (droppedMalformed++ % 100 === 0) log.warn({ code: e.code, dropped: droppedMalformed }, `malformed taRequest without an id dropped: ${e.message}`);
      return;
    }
    // In flight counts invocations: a batch counts as many as it carries.
    const weight = req.op === 'invokeBatch' ? req.items.length : 1;
    const { value, duplicate } = dedupe.run(req.id, async () => {
      if (inFlight + weight > MAX_IN_FLIGHT) return errorResponse(req.id, new EnclaveEdgeError('BUSY', `${inFlight} requests are already running`));
      inFlight += weight;
      try {
        return req.op === 'invokeBatch' ? batchResponse(req.id, await runtime.invokeBatch(req)) : okResponse(req.id, await runtime.dispatch(req));
      } catch (err) {
        return errorResponse(req.id, toEnclaveEdgeError(err));
      } finally {
        inFlight -= weight;
      }
    });
    if (duplicate) log.debug({ id: req.id }, 'duplicate request id answered from the cache');
    void value.then(reply);
  };

  client.on('inputMessage', (input, msg) => {
    void client.complete?.(msg).catch(() => undefined);
    if (input === TA_REQUEST_INPUT) onRequest(msg);
    else log.debug({ input }, 'message on an unknown input dropped');
  });

  for (const name of RUNTIME_METHOD_NAMES) {
    client.onMethod(name, (req, res) => {
      void handleRuntimeMethod(name, req.payload, runtime)
        .then((r) => res.send(r.status, r.payload))
        .catch((err: Error) => log.warn({ method: name, err: err.message }, 'could not send the method response'));
    });
  }

  let intervalSec = 60;
  let timer: NodeJS.Timeout | undefined;
  const flushMetrics = async () => {
    const { from, to, stats: rows } = stats.drain();
    if (rows.length === 0) return;
    // Typed as the wire event, so observability's rows are checked against protocol's InvocationStats.
    const event: Omit<MetricsEvent, 'type'> = { module: config.moduleId, intervalSec, from, to, stats: rows };
    await sendTelemetry(client, EVENTS_OUTPUT, 'metrics.invocations', event).catch(() => undefined);
  };
  const schedule = (sec: number) => {
    if (timer && sec === intervalSec) return;
    if (timer) clearInterval(timer);
    intervalSec = sec;
    timer = setInterval(() => void flushMetrics(), sec * 1000);
    timer.unref?.();
  };

  const applyDesired = () => {
    const desired = twin.properties.desired as Record<string, unknown>;
    const settings = runtimeSettingsSchema.safeParse({ metricsIntervalSec: desired.metricsIntervalSec, logLevel: desired.logLevel });
    if (settings.success) {
      schedule(settings.data.metricsIntervalSec);
      if (settings.data.logLevel) setLogLevel(log, settings.data.logLevel);
    }
    void runtime.reconcile({ tas: desired.tas, policy: desired.policy }).then(() => metrics.liveEnclaves.set(runtime.liveEnclaves));
  };

  reported.patch({ runtime: { ...runtimeReported } });
  schedule(intervalSec);
  applyDesired();
  twin.on('properties.desired', applyDesired);
  log.info({ backend: trust.backend.kind, rootOfTrust: trust.rootOfTrust.kind, bundleDir: config.bundleDir }, 'ta-runtime ready');

  return {
    runtime,
    metrics,
    dedupe,
    async stop() {
      if (timer) clearInterval(timer);
      await flushMetrics();
      await runtime.stop();
      await reported.flush();
      await trust.close().catch(() => undefined);
      await client.close().catch(() => undefined);
    },
  };
}
