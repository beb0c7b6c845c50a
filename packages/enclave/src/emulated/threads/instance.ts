/**
 * One enclave instance: a worker (its own isolate) running one TA. Owns the calls in flight,
 * the bounded wait queue (maxConcurrency, then queueLimit, then BUSY) and per-call deadlines.
 * It reports its death; the enclave decides about restarting.
 */
import { EventEmitter } from 'node:events';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { ErrorCode } from '@enclave-edge/errors';
import type { Value } from '@enclave-edge/ta-sdk';
import type { BatchItemOutcome } from '../../contract.js';
import type { BatchOutcome, CallKind, FromWorker, StartupTimings, SvcOp, ToWorker, WireError, WorkerInit } from '../wire/protocol.cjs';
import type { StandbyWorker } from './standby-pool.js';
import { prepFor, THREAD_HOST, type WorkerShape } from './worker-shape.js';
import { WORKER_OUT_OF_MEMORY, type EnclaveWorker, type WorkerHost } from './enclave-worker.js';
import { SvcBudget, wireBytes } from '../wire/service-quota.cjs';
import { BINARY_MEMORY_EXIT_CODE, binaryLimitBytes } from '../wire/binary-memory.cjs';
import { HOST_LOG_LIMITS, LOG_LEVELS, LOG_MAX_FIELDS_BYTES, LOG_MAX_MESSAGE, LogGate, droppedSummary } from '../wire/log-limiter.cjs';
import { TA_PASSABLE_CODES, batchReportMs } from '../wire/protocol.cjs';
import { copyValue, isProblem } from '../wire/values.cjs';
import { INSPECTOR_URL } from '../../inspect.js';

const SVC_OPS: ReadonlySet<string> = new Set(['seal', 'unseal', 'storage.get', 'storage.put', 'storage.delete', 'storage.list', 'attest', 'host', 'hpkeKey.get', 'hpkeKey.swap']);

/** A message no honest worker sends: the instance is terminated (see docs/threat-model.md O1–O3). */
class ProtocolViolation extends Error {}

function violation(what: string): never {
  throw new ProtocolViolation(what);
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/**
 * An error as the worker sends it: only codes a TA may pass out (toWire in the worker), or a code
 * this host itself refused one of the instance's service calls with (the TA rethrowing it).
 */
function checkWireError(e: unknown, wasm: boolean, hostCodes: ReadonlySet<string>): WireError {
  if (!e || typeof e !== 'object') violation('an error that is not an object');
  const w = e as Record<string, unknown>;
  if (typeof w.code !== 'string' || typeof w.message !== 'string') violation('an error without a string code and message');
  if (!(TA_PASSABLE_CODES.has(w.code) || hostCodes.has(w.code) || (wasm && w.code === 'OUT_OF_MEMORY'))) violation(`an error code the TA may not pass out (${w.code.slice(0, 40)})`);
  if (w.stack !== undefined && typeof w.stack !== 'string') violation('an error stack that is not a string');
  return { code: w.code as WireError['code'], message: w.message.slice(0, 4096), ...(typeof w.stack === 'string' ? { stack: w.stack.slice(0, 16384) } : {}) };
}

export interface InstanceHooks {
  service(op: SvcOp, args: Value[]): Promise<Value | undefined>;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, Value>): void;
  /** Turn a wire error from the TA into the error the caller gets (maps debug stacks). */
  error(w: WireError): EnclaveEdgeError;
  /** Inspected instances: the inspector listens at this URL (loopback, checked here). */
  inspector?(url: string): void;
}

export interface InstanceOptions {
  init: WorkerInit;
  heapMb: number;
  stackKb: number;
  maxConcurrency: number;
  queueLimit: number;
  callTimeoutMs: number;
  hooks: InstanceHooks;
  /** Load + onCreate must finish within this, or the instance is killed (TIMEOUT); undefined: no bound (inspected). */
  startTimeoutMs: number | undefined;
  /** Fixed at spawn: resource limits and lockdown flavour. */
  shape: WorkerShape;
  /** A prepared worker from the standby pool to adopt instead of spawning one. */
  standby?: StandbyWorker;
  /** Where a fresh worker is spawned (default: a thread of this process). */
  host?: WorkerHost;
}

interface Pending {
  resolve: (v: Value) => void;
  reject: (e: Error) => void;
  deadline: number;
  cmd: string;
  timeoutMs: number;
  /** A batch: where its answers go, and the first item not answered yet. */
  batch?: { put: BatchPut; size: number; next: number };
}

/** Receives batch item `index`'s outcome (as the call's caller would have it), each exactly once. */
export type BatchPut = (index: number, item: BatchItemOutcome) => void;

/** A call (or batch) waiting for a free slot. It has not reached the TA yet, so it can be re-run elsewhere. */
export interface QueuedCall {
  kind: CallKind;
  sid: string | undefined;
  cmd: string;
  params: Value;
  timeoutMs: number;
  /** A batch of session-less invokes of `cmd` (params unused); it resolves once every item has its outcome. */
  batch?: { items: Value[]; put: BatchPut };
  resolve: (v: Value) => void;
  reject: (e: Error) => void;
}

export interface DeathReason {
  code: ErrorCode;
  reason: string;
}

export { RUNTIME_HEAP_FLOOR_MB } from './worker-shape.js';

export class Instance extends EventEmitter {
  readonly worker: EnclaveWorker;
  readonly ready: Promise<{ sesCache?: Uint8Array; startup: StartupTimings }>;
  /** When the worker was spawned, or adopted from the standby pool (ms since the epoch). */
  readonly spawnedAt = performance.timeOrigin + performance.now();
  /** Where the worker came from: spawned for this instance, or a standby that was prepared / still preparing. */
  readonly origin: 'fresh' | 'standby' | 'standby-booting';
  inFlight = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: QueuedCall[] = [];
  private nextId = 1;
  private dead: DeathReason | undefined;
  private exiting = false;
  private destroyedResolve: (() => void) | undefined;
  private started = false;
  private startTimer: NodeJS.Timeout | undefined;
  private readyResolve!: (r: { sesCache?: Uint8Array; startup: StartupTimings }) => void;
  private inspectorSeen = false;
  private readyReject!: (e: Error) => void;
  private sweep: NodeJS.Timeout | undefined;
  // Counted here, not trusted from the worker (threat model O1, O2).
  private readonly svc = new SvcBudget();
  private readonly svcPending = new Map<number, number>();
  /** Codes this host refused the instance's service calls with: a TA may rethrow those (checkWireError). */
  private readonly hostCodes = new Set<string>();
  private readonly logGate = new LogGate(HOST_LOG_LIMITS, (n, b, l) => this.o.hooks.log('warn', droppedSummary(n, b, l)));

  constructor(private readonly o: InstanceOptions) {
    super();
    const init: WorkerInit = o.init;
    if (o.standby) {
      this.origin = o.standby.state === 'ready' ? 'standby' : 'standby-booting';
      this.worker = o.standby.adopt();
      // The worker's one TA; it queues in the worker's port if the standby is still preparing.
      this.worker.postMessage({ t: 'init', init } satisfies ToWorker);
    } else {
      this.origin = 'fresh';
      this.worker = (o.host ?? THREAD_HOST).spawn(o.shape, { prep: prepFor(o.shape), init }, `enclave:${o.init.ta.name}`);
    }
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => undefined);
    // A TA whose top level or onCreate never finishes must not leave create() pending forever.
    if (o.startTimeoutMs !== undefined) {
      this.startTimer = setTimeout(() => {
        if (!this.started) this.kill({ code: 'TIMEOUT', reason: `the TA did not finish loading and onCreate within ${o.startTimeoutMs} ms` });
      }, o.startTimeoutMs);
    }
    this.worker.on('message', (m: FromWorker) => this.guarded(() => this.onMessage(m)));
    this.worker.on('error', (err: Error & { code?: string; taProcess?: boolean }) => {
      // A TA process's own end (out of memory, or a crash) names its cause itself.
      if (err.code === WORKER_OUT_OF_MEMORY) this.die({ code: 'OUT_OF_MEMORY', reason: err.taProcess ? err.message : `the TA exceeded its heap limit (${o.heapMb} MB)` });
      else this.die({ code: 'TA_CRASHED', reason: err.taProcess ? err.message : `the enclave worker crashed: ${err.message}` });
    });
    this.worker.on('exit', (code: number) => {
      this.destroyedResolve?.();
      if (this.exiting) return;
      if (code === BINARY_MEMORY_EXIT_CODE) {
        this.die({ code: 'OUT_OF_MEMORY', reason: `the TA held more than ${binaryLimitBytes(o.heapMb) >> 20} MB of binary data (ArrayBuffers: heapMb + 16)` });
      } else this.die({ code: 'TA_CRASHED', reason: `the enclave worker exited (code ${code})` });
    });
  }

  /** After a crash: the calls that were waiting (see die). The enclave takes them. */
  orphans: QueuedCall[] = [];

  takeOrphans(): QueuedCall[] {
    return this.orphans.splice(0);
  }

  get isDead(): boolean {
    return this.dead !== undefined;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Host-side counters: most service calls seen in flight at once, and TA log lines this side dropped. */
  get limits(): { svcInFlight: number; svcPeak: number; svcBytes: number; logsDropped: number } {
    return { svcInFlight: this.svc.inFlight, svcPeak: this.svc.peak, svcBytes: this.svc.bytes, logsDropped: this.logGate.totalDropped };
  }

  /** Run a handler of worker input; anything it throws ends this instance, never the process. */
  private guarded(f: () => void): void {
    try {
      f();
    } catch (err) {
      const what = err instanceof ProtocolViolation ? err.message : `reading its message failed (${(err as Error)?.message ?? String(err)})`;
      this.kill({ code: 'TA_CRASHED', reason: `the enclave worker broke the host protocol: ${what}; it was terminated` });
    }
  }

  /** Run a call when a slot frees up (maxConcurrency), waiting in a bounded queue, else BUSY. */
  call(kind: CallKind, sid: string | undefined, cmd: string, params: Value, timeoutMs = this.o.callTimeoutMs): Promise<Value> {
    return this.enter({ kind, sid, cmd, params, timeoutMs });
  }

  /**
   * Session-less invokes of one command in one message: the worker runs them in order, each as
   * a `call` would run, and answers them together. The batch holds one of the maxConcurrency
   * slots (the TA sees one call at a time of it) and waits in the queue as one call. Time: the
   * first item must be answered within timeoutMs of sending, each later one within timeoutMs of
   * answers sent between items reaching this side (the worker sends those that waited
   * batchReportMs before the next item starts). On a timeout or crash every item not answered
   * yet fails as a call in flight would; the promise rejects only when the batch never started.
   */
  callBatch(cmd: string, items: Value[], put: BatchPut, timeoutMs = this.o.callTimeoutMs): Promise<void> {
    return this.enter({ kind: 'invoke', sid: undefined, cmd, params: null, timeoutMs, batch: { items, put } }).then(() => undefined);
  }

  /** The one admission of calls and batches: a free slot (maxConcurrency), else the bounded queue, else BUSY. */
  private enter(c: Omit<QueuedCall, 'resolve' | 'reject'>): Promise<Value> {
    if (this.dead) return Promise.reject(new EnclaveEdgeError(this.dead.code === 'TIMEOUT' ? 'TA_CRASHED' : this.dead.code, `the TA instance is gone: ${this.dead.reason}`));
    if (this.inFlight < this.o.maxConcurrency) return this.start(c);
    if (this.queue.length >= this.o.queueLimit) {
      return Promise.reject(new EnclaveEdgeError('BUSY', `TA "${this.o.init.ta.name}" is busy: ${this.inFlight} calls running and ${this.queue.length} waiting`));
    }
    return new Promise((resolve, reject) => this.queue.push({ ...c, resolve, reject }));
  }

  private start(c: Omit<QueuedCall, 'resolve' | 'reject'>): Promise<Value> {
    return c.batch ? this.sendBatch(c.cmd, c.batch.items, c.batch.put, c.timeoutMs) : this.send(c.kind, c.sid, c.cmd, c.params, c.timeoutMs);
  }

  private next(): void {
    while (this.inFlight < this.o.maxConcurrency && this.queue.length && !this.dead) {
      const q = this.queue.shift()!;
      this.start(q).then(q.resolve, q.reject);
    }
  }

  /**
   * Deadlines: one sweep timer per instance while calls are pending, rather than a timer per
   * call; a call is failed within ~10% of its timeout.
   */
  private armSweep(): void {
    if (this.sweep) return;
    const every = Math.max(5, Math.min(100, Math.floor(this.o.callTimeoutMs / 10)));
    this.sweep = setInterval(() => {
      if (this.dead || this.pending.size === 0) {
        clearInterval(this.sweep);
        this.sweep = undefined;
        return;
      }
      const now = performance.now();
      for (const [id, p] of this.pending) if (now >= p.deadline) return this.timedOut(id, p);
    }, every);
  }

  private send(kind: CallKind, sid: string | undefined, cmd: string, params: Value, timeoutMs: number): Promise<Value> {
    const id = this.nextId++;
    this.inFlight++;
    return new Promise<Value>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: performance.now() + timeoutMs, cmd, timeoutMs });
      this.armSweep();
      this.worker.postMessage({ t: 'call', id, kind, sid, cmd, params } satisfies ToWorker);
    });
  }

  private sendBatch(cmd: string, items: Value[], put: BatchPut, timeoutMs: number): Promise<Value> {
    const id = this.nextId++;
    this.inFlight++;
    return new Promise<Value>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: performance.now() + timeoutMs, cmd, timeoutMs, batch: { put, size: items.length, next: 0 } });
      this.armSweep();
      this.worker.postMessage({ t: 'batch', id, cmd, items, reportMs: batchReportMs(timeoutMs) } satisfies ToWorker);
    });
  }

  /** A pending call ends without its answer: a batch gives every item not answered yet that error. */
  private fail(p: Pending, err: (item?: { index: number; size: number }) => Error): void {
    const b = p.batch;
    if (!b) return p.reject(err());
    for (let i = b.next; i < b.size; i++) b.put(i, { ok: false, error: err({ index: i, size: b.size }) });
    b.next = b.size;
    p.resolve(null);
  }

  private onBatchPart(m: Extract<FromWorker, { t: 'batchPart' }>): void {
    if (!isId(m.id) || !isId(m.from) || !Array.isArray(m.outcomes) || typeof m.last !== 'boolean' || typeof m.restart !== 'boolean') violation('a batch answer without an integer id and start, outcomes, and last and restart flags');
    const outcomes = (m.outcomes as unknown[]).map((o) => this.checkOutcome(o));
    const p = this.pending.get(m.id);
    if (!p) return;
    const b = p.batch ?? violation('a batch answer to a call that is not a batch');
    const end = m.from + outcomes.length;
    if (m.from !== b.next || outcomes.length === 0 || end > b.size || m.last !== (end === b.size)) violation('batch answers out of order, or not one per item');
    b.next = end;
    outcomes.forEach((o, k) => b.put(m.from + k, o.ok ? { ok: true, value: o.value } : { ok: false, error: this.o.hooks.error(o.error) }));
    if (!m.last) {
      // Between items: the next one starts after this left the worker. Mid-item: its time runs on.
      if (m.restart) p.deadline = performance.now() + p.timeoutMs;
      return;
    }
    this.pending.delete(m.id);
    this.settle(p, true, null, undefined);
  }

  private checkOutcome(o: unknown): BatchOutcome {
    if (!o || typeof o !== 'object' || typeof (o as { ok?: unknown }).ok !== 'boolean') violation('a batch outcome without an ok flag');
    const x = o as BatchOutcome;
    return x.ok ? { ok: true, value: this.checkValue(x.value) } : { ok: false, error: checkWireError(x.error, this.wasm, this.hostCodes) };
  }

  private settle(p: Pending, ok: boolean, value: Value | undefined, error: WireError | undefined): void {
    this.inFlight--;
    if (ok) p.resolve(value as Value);
    else p.reject(this.o.hooks.error(error!));
    if (this.queue.length) this.next();
    if (this.inFlight === 0) this.emit('idle');
  }

  private get wasm(): boolean {
    return this.o.init.manifest.runtime === 'wasm';
  }

  /** A result value from the worker: JSON and Uint8Array within the payload limit, as the worker itself checked. */
  private checkValue(v: unknown): Value {
    const c = copyValue(v, this.o.init.maxPayloadBytes, 'result', false);
    if (isProblem(c)) violation(`a result that is not a valid value (${c.message.slice(0, 200)})`);
    return c.value;
  }

  private onMessage(raw: unknown): void {
    if (!raw || typeof raw !== 'object' || typeof (raw as { t?: unknown }).t !== 'string') violation('a message that is not an object with a type');
    const m = raw as FromWorker;
    switch (m.t) {
      case 'ready':
        if (!m.startup || typeof m.startup !== 'object') violation('a ready message without start-up timings');
        if (m.sesCache !== undefined && !(m.sesCache instanceof Uint8Array)) violation('a ready message whose SES cache is not bytes');
        this.started = true;
        clearTimeout(this.startTimer);
        this.readyResolve(m);
        return;
      case 'inspector':
        // Only asked-for, once, before ready, and only a loopback URL: a worker cannot make the host print anything else.
        if (!this.o.init.inspect || this.inspectorSeen || this.started) violation('an inspector message it was not asked for');
        if (typeof m.url !== 'string' || !INSPECTOR_URL.test(m.url)) violation('an inspector URL that is not ws://127.0.0.1:<port>/<id>');
        this.inspectorSeen = true;
        this.o.hooks.inspector?.(m.url);
        return;
      case 'initError': {
        const e = checkWireError(m.error, this.wasm, this.hostCodes);
        this.kill({ code: e.code, reason: e.message });
        return;
      }
      case 'done': {
        if (!isId(m.id) || typeof m.ok !== 'boolean') violation('a done message without an integer id and ok flag');
        const value = m.ok ? this.checkValue(m.value) : undefined;
        const error = m.ok ? undefined : checkWireError(m.error, this.wasm, this.hostCodes);
        const p = this.pending.get(m.id);
        if (!p) return;
        if (p.batch) violation('a single answer to a batch');
        this.pending.delete(m.id);
        this.settle(p, m.ok, value, error);
        return;
      }
      case 'batchPart':
        this.onBatchPart(m);
        return;
      case 'svc':
        this.onService(m.id, m.op, m.args);
        return;
      case 'log': {
        if (typeof m.level !== 'string' || !LOG_LEVELS.has(m.level)) violation('a log line whose level is not debug, info, warn or error');
        if (typeof m.message !== 'string' || m.message.length > LOG_MAX_MESSAGE) violation(`a log message that is not a string of at most ${LOG_MAX_MESSAGE} characters`);
        let bytes = m.message.length;
        if (m.fields !== undefined) {
          const c = copyValue(m.fields, LOG_MAX_FIELDS_BYTES, 'log fields', false);
          if (isProblem(c) || !c.value || typeof c.value !== 'object' || Array.isArray(c.value) || c.value instanceof Uint8Array) violation('log fields that are not a plain object of values within 64 KiB');
          bytes += c.bytes;
        }
        if (this.logGate.pass(bytes)) this.o.hooks.log(m.level, m.message, m.fields);
        return;
      }
      case 'destroyed':
      case 'standby': // a standby adopted while still preparing announces itself once
        return;
      default:
        violation(`an unknown message type "${String((m as { t: string }).t).slice(0, 40)}"`);
    }
  }

  /** A service call from the TA: counted here, so a worker over the bound is ended, whatever it claims. */
  private onService(id: unknown, op: unknown, args: unknown): void {
    if (!isId(id) || this.svcPending.has(id)) violation('a service call without a fresh integer id');
    if (typeof op !== 'string' || !SVC_OPS.has(op)) violation(`an unknown service "${String(op).slice(0, 40)}"`);
    if (!Array.isArray(args)) violation('service call arguments that are not an array');
    const bytes = wireBytes(args);
    if (!this.svc.admits(bytes)) violation(`service calls beyond the bound (${this.svc.inFlight} in flight, ${this.svc.bytes + bytes} bytes)`);
    this.svc.take(bytes);
    this.svcPending.set(id, bytes);
    const reply = (m: ToWorker) => {
      if (this.svcPending.delete(id)) this.svc.release(bytes);
      this.post(m);
    };
    this.o.hooks.service(op as SvcOp, args as Value[]).then(
      (value) => reply({ t: 'svcReply', id, ok: true, value: value ?? null }),
      (err: unknown) => {
        const e = err instanceof EnclaveEdgeError ? err : new EnclaveEdgeError('INTERNAL', 'service call failed');
        this.hostCodes.add(e.code);
        reply({ t: 'svcReply', id, ok: false, error: { code: e.code, message: e.message } });
      },
    );
  }

  private post(m: ToWorker): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  private timedOut(id: number, p: Pending): void {
    const { cmd, timeoutMs } = p;
    if (this.dead) return;
    this.pending.delete(id);
    this.inFlight--;
    const name = this.o.init.ta.name;
    this.fail(p, (item) =>
      item
        ? new EnclaveEdgeError('TIMEOUT', `TA "${name}" command "${cmd}" (item ${item.index + 1} of a batch of ${item.size}, run in order) was not answered within ${timeoutMs} ms: it, or an earlier unanswered item, did not finish; the instance was terminated`)
        : new EnclaveEdgeError('TIMEOUT', `TA "${name}" command "${cmd}" did not finish within ${timeoutMs} ms; the instance was terminated`),
    );
    // A runaway call cannot be interrupted inside the isolate: end the whole instance.
    this.kill({ code: 'TIMEOUT', reason: `command "${cmd}" exceeded ${timeoutMs} ms` });
  }

  /** Terminate the worker and fail everything still pending with the reason. */
  kill(reason: DeathReason): void {
    this.die(reason);
    if (this.exiting) return; // one terminate per worker, however many violations arrive
    this.exiting = true;
    void this.worker.terminate();
  }

  private die(reason: DeathReason, announce = true): void {
    if (this.dead) return;
    this.dead = reason;
    this.logGate.flush();
    const code: ErrorCode = reason.code === 'OUT_OF_MEMORY' ? 'OUT_OF_MEMORY' : 'TA_CRASHED';
    const err = () => new EnclaveEdgeError(code, `TA "${this.o.init.ta.name}" instance ended: ${reason.reason}`);
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = undefined;
    for (const p of this.pending.values()) this.fail(p, err);
    this.pending.clear();
    // Calls still waiting never reached the TA: a crash hands them to the enclave to re-run on
    // the next instance; an orderly end fails them.
    const waiting = this.queue.splice(0);
    this.orphans = announce && this.started ? waiting : [];
    if (!(announce && this.started)) for (const q of waiting) q.reject(err());
    this.inFlight = 0;
    clearTimeout(this.startTimer);
    if (!this.started) {
      // Failing to start is reported through `ready`, not as a crash of a serving instance.
      this.readyReject(new EnclaveEdgeError(reason.code, reason.reason));
      return;
    }
    if (announce) this.emit('death', reason);
  }

  /** Orderly end: onDestroy (bounded by the call timeout), then terminate. */
  async destroy(): Promise<void> {
    this.removeAllListeners('death');
    if (this.dead) {
      if (!this.exiting) {
        this.exiting = true;
        await this.worker.terminate();
      }
      return;
    }
    const exited = new Promise<void>((r) => (this.destroyedResolve = r));
    const bye = new Promise<void>((resolve) => {
      const onMsg = (m: FromWorker) => {
        if (m.t === 'destroyed') resolve();
      };
      this.worker.on('message', onMsg);
      setTimeout(resolve, Math.min(this.o.callTimeoutMs, 5000)).unref();
    });
    this.worker.postMessage({ t: 'destroy' } satisfies ToWorker);
    await bye;
    this.exiting = true;
    this.die({ code: 'TA_CRASHED', reason: 'the enclave was destroyed' }, false);
    await this.worker.terminate();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 100).unref())]);
  }
}
