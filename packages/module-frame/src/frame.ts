/**
 * The module frame: what host-module and ta-runtime both are around their own logic.
 *
 * Start-up order (ready before receiving):
 *   1. `openModuleFrame`: connect, read the twin, set up reported properties, metrics and
 *      call recording. No input is subscribed and no method is registered yet.
 *   2. The module builds its parts.
 *   3. `frame.serve(...)`: apply the desired properties and wait until the module can handle
 *      messages (pipelines built, TAs loaded or refused); only then are input messages handed
 *      to the module and its methods run (until then a method call is answered 503 UNAVAILABLE
 *      with `retryAfterMs`: the module is connected but not ready).
 *
 * Input messages cannot simply wait at edgeHub: the SDK connects with a persistent session
 * (clean=false), so edgeHub resumes the previous subscription and delivers at once, and the
 * SDK emits a message with no `inputMessage` listener to nobody. The frame therefore listens
 * from the first moment and holds what arrives before ready, in order (bounded; beyond the
 * bound a message is reported dropped), then hands it over. The MQTT transport acknowledges a
 * message when it arrives (complete() is a no-op; abandon() and reject() are not supported),
 * so a message taken is the module's: handled, retried, or reported dropped — never ignored.
 * With a journal (FrameOptions.journal), inputs it covers are also on disk from before that
 * acknowledgement until the module is finished with them, so a kill -9 loses none of them: the
 * next instance gets them first (input-journal.ts).
 */
import type { Message, Twin } from 'azure-iot-device';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { methodError } from '@enclave-edge/protocol';
import { IntervalStats, type EdgeMetrics, type Logger } from '@enclave-edge/observability';
import { CallRecorder } from './call-recorder.js';
import { DropReporter } from './drop-reporter.js';
import { IntervalTimer } from './interval-timer.js';
import { dispatchMethod, type MethodTable } from './methods.js';
import { ReportedBatcher } from './reported.js';
import { sendTelemetry } from './telemetry.js';
import type { EdgeModuleClient } from './edge-module-client.js';
import { InputJournal } from './input-journal.js';
import { holdWritesUntilDurable, writesCoalesced } from './low-latency.js';

export interface FrameOptions {
  client: EdgeModuleClient;
  log: Logger;
  moduleId: string;
  metrics: EdgeMetrics;
  /** Output for lifecycle events and `metrics.invocations` telemetry. */
  telemetryOutput: string;
  /**
   * Keep taken-but-unfinished input messages in `dir` (the module's persistent storage) for the
   * inputs `covers` names; a handler's returned promise settling is the moment it is finished.
   */
  journal?: { dir: string; covers(input: string): boolean };
}

/** A handler is finished with its message when its returned promise settles (or at once when it returns nothing). */
export type InputHandler = (msg: Message, held: boolean) => unknown;

export interface ServeOptions {
  /**
   * Apply desired properties; the first call's completion is the moment the module is ready.
   * `patch`: the desired patch that caused this call (its nulls are deletions the merged document no longer shows).
   */
  applyDesired(desired: Record<string, unknown>, patch?: unknown): Promise<void> | void;
  /** Input name → handler, called once the module is ready; `held`: the message arrived before. */
  inputs: Map<string, InputHandler>;
  /** Messages on any other input (default: reported dropped); finished as for `inputs`. */
  onOtherInput?: (input: string, msg: Message) => unknown;
  methods: MethodTable;
  /** Checked before a method runs (throw to refuse it). */
  methodGuard?: (name: string) => void;
  /** Extra fields for the interval's metrics telemetry, or undefined when there is nothing to add. */
  metricsExtra?: () => Record<string, unknown> | undefined;
}

export interface ModuleFrame {
  readonly client: EdgeModuleClient;
  readonly log: Logger;
  readonly moduleId: string;
  readonly metrics: EdgeMetrics;
  readonly twin: Twin;
  readonly reported: ReportedBatcher;
  readonly recorder: CallRecorder;
  readonly drops: DropReporter;
  readonly startedAt: number;
  /** True once the module takes messages. */
  readonly ready: boolean;
  /** Send a lifecycle event (`{type, module, …body, at}`) on the telemetry output; failures are logged. */
  emit(type: string, body: Record<string, unknown>): void;
  /** Send the `metrics.invocations` telemetry every `sec` seconds (no-op when unchanged). */
  setMetricsInterval(sec: number): void;
  readonly metricsIntervalSec: number;
  serve(opts: ServeOptions): Promise<void>;
  /** Flush metrics and reported properties, then close the connection. */
  stop(beforeClose?: () => Promise<void>): Promise<void>;
}

const DEFAULT_METRICS_INTERVAL_SEC = 60;
/** Messages held while the module gets ready (edgeHub's store is the place for more). */
const MAX_EARLY = 10_000;

export async function openModuleFrame(opts: FrameOptions): Promise<ModuleFrame> {
  const { client, log, moduleId, metrics, telemetryOutput } = opts;
  const startedAt = Date.now();
  const openedMs = Math.round(performance.now());
  const stats = new IntervalStats();
  const recorder = new CallRecorder(metrics, stats);
  let serveOpts: ServeOptions | undefined;
  let ready = false;

  client.on('error', (err) => log.error({ err: err?.message }, 'module client error'));
  client.on('disconnect', (err) => log.warn({ err: err?.message }, 'disconnected from edgeHub'));
  const emit = (type: string, body: Record<string, unknown>): void => {
    void sendTelemetry(client, telemetryOutput, type, { module: moduleId, ...body }).catch((err: Error) =>
      log.warn({ type, err: err.message }, 'could not send event'),
    );
  };
  const drops = new DropReporter(metrics, emit);
  const journal = opts.journal ? new InputJournal(opts.journal.dir) : undefined;
  const covers = opts.journal?.covers;
  let journalFault = false;
  const reportJournalFault = (input: string | undefined, err: Error): void => {
    // Handled all the same; only a crash before it is finished would lose it. Said once per fault.
    if (!journalFault) log.error({ ...(input !== undefined ? { input } : {}), err: err.message }, 'could not write the input journal: messages are handled but not kept through a crash');
    journalFault = true;
  };
  // Group commit where the sockets allow it: a turn's PUBACKs wait for one fdatasync of all its messages.
  let unhold: (() => void) | undefined;
  if (journal && writesCoalesced()) {
    const barrier = journal.groupCommits();
    unhold = holdWritesUntilDurable({
      durable: barrier.durable,
      sync: (cb) => barrier.sync((err) => {
        if (err) reportJournalFault(undefined, err);
        else journalFault = false;
        cb(err);
      }),
    });
  }
  // Listening before open: messages of a resumed session arrive right after the connect.
  // What the previous instance took and did not finish comes first, in its order.
  let early: Array<[string, Message, number | undefined]> | undefined = (journal?.recovered() ?? []).map((j) => [j.input, j.msg, j.key]);
  if (early.length > 0) log.info({ messages: early.length }, 'input messages the previous instance took and did not finish are handled again');
  let deliver: ((input: string, msg: Message, key: number | undefined) => void) | undefined;
  client.on('inputMessage', (input, msg) => {
    metrics.messages.inc({ input, output: '' });
    let key: number | undefined;
    if (journal && covers!(input)) {
      try {
        key = journal.take(input, msg);
        if (key === undefined) {
          log.info({ input, messageId: String(msg.messageId) }, 'input message already taken (re-sent after a restart): not run again');
          return;
        }
        if (!unhold) journalFault = false;
      } catch (err) {
        reportJournalFault(input, err as Error);
      }
    }
    if (deliver) return deliver(input, msg, key);
    if (early!.length < MAX_EARLY) early!.push([input, msg, key]);
    else {
      drops.drop(`input:${input}`, 'BUSY', `${MAX_EARLY} messages already wait for ${moduleId} to be ready`);
      if (key !== undefined) journal!.done(key);
    }
  });
  await client.open();
  const connectedMs = Math.round(performance.now());
  const twin = await client.getTwin();
  const twinMs = Math.round(performance.now());
  const reported = new ReportedBatcher(twin, 50, (err) => log.warn({ err: err.message }, 'reported properties update failed'));

  const flushMetrics = async (): Promise<void> => {
    const { from, to, stats: rows } = stats.drain();
    const extra = serveOpts?.metricsExtra?.();
    if (rows.length === 0 && extra === undefined) return;
    await sendTelemetry(client, telemetryOutput, 'metrics.invocations', { module: moduleId, intervalSec: timer.seconds, from, to, stats: rows, ...extra })
      .catch((err: Error) => log.warn({ err: err.message }, 'could not send metrics telemetry'));
  };
  const timer = new IntervalTimer(() => void flushMetrics());
  timer.set(DEFAULT_METRICS_INTERVAL_SEC);

  const frame: ModuleFrame = {
    client, log, moduleId, metrics, twin, reported, recorder, drops, startedAt,
    get ready() {
      return ready;
    },
    emit,
    setMetricsInterval: (sec) => timer.set(sec),
    get metricsIntervalSec() {
      return timer.seconds;
    },
    async serve(s) {
      if (serveOpts) throw new EnclaveEdgeError('CONFLICT', 'the module frame is already serving');
      serveOpts = s;
      // Methods answer from the start: 503 with a retry hint until ready, rather than IoT Hub's
      // "not connected" (404103) for a module that is connected and only getting ready.
      for (const name of s.methods.keys()) {
        client.onMethod(name, (req, res) => {
          const answer = ready
            ? dispatchMethod(s.methods, name, req.payload, s.methodGuard)
            : Promise.resolve(methodError(new EnclaveEdgeError('UNAVAILABLE', `${moduleId} is starting (applying its desired properties); retry shortly`, { detail: { retryAfterMs: 1000 } })));
          void answer
            .then((r) => res.send(r.status, r.payload))
            .catch((err: Error) => log.warn({ method: name, err: err.message }, 'could not send the method response'));
        });
      }
      const desired = () => twin.properties.desired as Record<string, unknown>;
      // Changes that arrive while the first apply runs are applied after it, in order.
      let applying = Promise.resolve(s.applyDesired(desired()));
      twin.on('properties.desired', (patch: unknown) => {
        applying = applying.catch(() => undefined).then(() => s.applyDesired(desired(), patch));
      });
      await applying;
      const handle = (input: string, msg: Message, key: number | undefined, held = false): void => {
        const handler = s.inputs.get(input);
        let result: unknown;
        try {
          if (handler) result = handler(msg, held);
          else if (s.onOtherInput) result = s.onOtherInput(input, msg);
          else drops.drop(`input:${input}`, 'NO_HANDLER', `${moduleId} has no input "${input}"`);
        } catch (err) {
          drops.drop(`input:${input}`, 'INTERNAL', `the handler of input "${input}" threw: ${(err as Error).message}`);
        }
        if (key === undefined) return;
        if (result instanceof Promise) void result.catch(() => undefined).finally(() => journal!.done(key));
        else journal!.done(key);
      };
      const held = early!;
      early = undefined;
      deliver = handle;
      if (held.length > 0) log.info({ messages: held.length }, 'handing over the messages that arrived before ready');
      for (const [input, msg, key] of held) handle(input, msg, key, true);
      // A method this module does not have is answered at once, naming the ones it has.
      client.onUnknownMethod?.((name, respond) => {
        const r = methodError(new EnclaveEdgeError('ITEM_NOT_FOUND', `${moduleId} has no method "${name}"; its methods: ${[...s.methods.keys()].join(', ')}`));
        respond(r.status, r.payload);
      });
      ready = true;
      // Start-up trace, in ms since the process started (flat fields: log readers pick them out).
      log.info({
        methods: [...s.methods.keys()], inputs: [...s.inputs.keys()], startMs: Date.now() - startedAt,
        processStartedAt: Math.round(performance.timeOrigin), frameOpenedMs: openedMs, connectedMs, twinMs, readyMs: Math.round(performance.now()),
      }, `${moduleId} ready`);
    },
    async stop(beforeClose) {
      timer.stop();
      await flushMetrics();
      drops.flush();
      await beforeClose?.();
      await reported.flush();
      await client.close().catch(() => undefined);
      unhold?.();
      journal?.close();
    },
  };
  return frame;
}
