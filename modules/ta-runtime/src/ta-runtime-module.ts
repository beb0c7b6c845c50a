/**
 * ta-runtime as an IoT Edge module: twin-driven reconcile, input taRequest → output
 * taResponse (with a dedupe cache for edgeHub's at-least-once delivery), management
 * methods, lifecycle events and per-interval metrics on output `events`.
 * The module frame orders its start: taRequests are taken only once the desired TAs are
 * loaded or refused; callers still waiting for the previous instance are told it is gone.
 */
import type { Message } from 'azure-iot-device';
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import {
  DEFAULT_MAX_LIMITS, LIMITS, RUNTIME_READY_TYPE, TA_REQUEST_INPUT, TA_RESPONSE_OUTPUT, batchResponse, errorResponse, okResponse, parseTARequest,
  runtimeSettingsSchema, salvageRequestId, serializeMessage, type TAResponse,
} from '@enclave-edge/protocol';
import { jsonMessage, messageBytes } from '@enclave-edge/ta-client';
import { createMetrics, setLogLevel, type EdgeMetrics, type Logger } from '@enclave-edge/observability';
import { openModuleFrame, type EdgeModuleClient } from '@enclave-edge/module-frame';
import { DedupeCache } from './dedupe.js';
import { TARuntime } from './runtime.js';
import { RUNTIME_METHOD_NAMES, guardRuntimeMethod, runtimeMethods } from './methods.js';
import type { RuntimeConfig } from './config.js';
import type { TrustSetup } from './trust-setup.js';

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
  /** The frame is ready: desired TAs loaded or refused. */
  ready(): boolean;
  stop(): Promise<void>;
}

/** Answers that say nothing ran: not kept in the duplicate cache, so a retry under the same id runs. */
function nothingRan(res: TAResponse): boolean {
  return !res.ok && (res.error.code === 'UNAVAILABLE' || res.error.code === 'BUSY' || res.error.detail?.started === false);
}

export async function startTARuntimeModule(opts: TARuntimeModuleOptions): Promise<TARuntimeModule> {
  const { client, log, config, trust } = opts;
  const metrics = opts.metrics ?? createMetrics({ module: config.moduleId });
  const frame = await openModuleFrame({ client, log, moduleId: config.moduleId, metrics, telemetryOutput: EVENTS_OUTPUT });
  const { reported, recorder } = frame;
  const dedupe = new DedupeCache<TAResponse>();
  let inFlight = 0;

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
    policyError: null,
    limits: { maxMessageBytes: LIMITS.maxMessageBytes, maxMethodPayloadBytes: LIMITS.maxMethodPayloadBytes, maxInlineBundleBytes: LIMITS.maxInlineBundleBytes, maxTimeoutMs: LIMITS.maxTimeoutMs, maxInFlight: MAX_IN_FLIGHT },
    methods: RUNTIME_METHOD_NAMES,
    startedAt: new Date(frame.startedAt).toISOString(),
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
        frame.emit(type, body);
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
        recorder.record(ta, command, ms, err);
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

  const onRequest = (msg: Message, held: boolean) => {
    const body = messageBytes(msg);
    let req;
    try {
      req = parseTARequest(body);
    } catch (err) {
      const id = salvageRequestId(body);
      const e = toEnclaveEdgeError(err);
      if (id) void reply(errorResponse(id, e));
      else frame.drops.drop(`input:${TA_REQUEST_INPUT}`, e.code, `malformed taRequest without an id: ${e.message}`);
      return;
    }
    // Sent to the previous instance (edgeHub resumed its session): the sender is told by the
    // ready notice that the call may not have run, and retries it under the same id. Running
    // it now would spend the TA on a deadline mostly gone (and a call past its deadline ends
    // its TA instance); answering 503 leaves the retry to run it once.
    if (held) {
      void reply(errorResponse(req.id, new EnclaveEdgeError('UNAVAILABLE', 'ta-runtime restarted; the request arrived before it was ready and did not run: retry', { detail: { retryAfterMs: 0 } })));
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
    void value.then((res) => {
      if (!duplicate && nothingRan(res)) dedupe.forget(req.id);
      return reply(res);
    });
  };

  /** `patch`: the desired patch, when this is one; its null TA entries remove those TAs, whoever loaded them. */
  const applyDesired = async (desired: Record<string, unknown>, patch?: unknown) => {
    const patchTas = patch && typeof patch === 'object' ? (patch as { tas?: unknown }).tas : undefined;
    const removed = patchTas && typeof patchTas === 'object' ? Object.keys(patchTas).filter((k) => (patchTas as Record<string, unknown>)[k] === null) : [];
    const settings = runtimeSettingsSchema.safeParse({ metricsIntervalSec: desired.metricsIntervalSec, logLevel: desired.logLevel });
    if (settings.success) {
      frame.setMetricsInterval(settings.data.metricsIntervalSec);
      if (settings.data.logLevel) setLogLevel(log, settings.data.logLevel);
    }
    // Later changes must not hold up the frame's queue of twin updates: only the first reconcile is awaited (readiness).
    const done = runtime.reconcile({ tas: desired.tas, policy: desired.policy }, removed).then(() => metrics.liveEnclaves.set(runtime.liveEnclaves));
    if (!frame.ready) await done;
  };

  reported.patch({ runtime: { ...runtimeReported } });
  await frame.serve({
    applyDesired,
    inputs: new Map([[TA_REQUEST_INPUT, onRequest]]),
    methods: runtimeMethods(runtime),
    methodGuard: (name) => guardRuntimeMethod(name, runtime),
  });
  // Callers still waiting for an earlier instance's answers learn at once that it is gone.
  void client.sendOutputEvent(TA_RESPONSE_OUTPUT, jsonMessage(RUNTIME_READY_TYPE, { module: config.moduleId, startedAt: runtimeReported.startedAt }))
    .catch((err: Error) => log.warn({ err: err.message }, 'could not send the ready notice'));
  log.info({ backend: trust.backend.kind, rootOfTrust: trust.rootOfTrust.kind, bundleDir: config.bundleDir }, 'ta-runtime ready');

  return {
    runtime,
    metrics,
    dedupe,
    ready: () => frame.ready,
    stop: () => frame.stop(async () => {
      await runtime.stop();
      await trust.close().catch(() => undefined);
    }),
  };
}
