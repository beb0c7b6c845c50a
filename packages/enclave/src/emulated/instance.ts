/**
 * One enclave instance: a worker (its own isolate) running one TA. Owns the calls in flight,
 * the bounded wait queue (maxConcurrency, then queueLimit, then BUSY), per-call deadlines and
 * the fast-path ring. It reports its death; the enclave decides about restarting.
 */
import type { Worker } from 'node:worker_threads';
import { EventEmitter } from 'node:events';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { ErrorCode } from '@enclave-edge/errors';
import type { Value } from '@enclave-edge/ta-sdk';
import type { CallKind, FromWorker, StartupTimings, SvcOp, ToWorker, WireError, WorkerInit } from '../protocol.cjs';
import type { StandbyWorker } from './standby-pool.js';
import { prepFor, spawnEnclaveWorker, type WorkerShape } from './worker-shape.js';
import { RingView, createRing, FREE, REQ, RESP, SUBMIT, DONE, HOST_WAITING, WORKER_WAITING } from '../fast-ring.cjs';

export interface InstanceHooks {
  service(op: SvcOp, args: Value[]): Promise<Value | undefined>;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, Value>): void;
  /** Turn a wire error from the TA into the error the caller gets (maps debug stacks). */
  error(w: WireError): EnclaveEdgeError;
}

export interface InstanceOptions {
  init: WorkerInit;
  heapMb: number;
  stackKb: number;
  maxConcurrency: number;
  queueLimit: number;
  callTimeoutMs: number;
  hooks: InstanceHooks;
  fastPath: boolean;
  /** Load + onCreate must finish within this, or the instance is killed (TIMEOUT). */
  startTimeoutMs: number;
  /** Fixed at spawn: resource limits and lockdown flavour. */
  shape: WorkerShape;
  /** A prepared worker from the standby pool to adopt instead of spawning one. */
  standby?: StandbyWorker;
}

interface Pending {
  resolve: (v: Value) => void;
  reject: (e: Error) => void;
  deadline: number;
  cmd: string;
  timeoutMs: number;
}

/** A call waiting for a free slot. It has not reached the TA yet, so it can be re-run elsewhere. */
export interface QueuedCall {
  kind: CallKind;
  sid: string | undefined;
  cmd: string;
  params: Value;
  timeoutMs: number;
  resolve: (v: Value) => void;
  reject: (e: Error) => void;
}

export interface DeathReason {
  code: ErrorCode;
  reason: string;
}

export { RUNTIME_HEAP_FLOOR_MB } from './worker-shape.js';

export class Instance extends EventEmitter {
  readonly worker: Worker;
  readonly ready: Promise<{ inspectorUrl?: string; sesCache?: Uint8Array; startup: StartupTimings }>;
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
  private readyResolve!: (r: { inspectorUrl?: string; sesCache?: Uint8Array; startup: StartupTimings }) => void;
  private readyReject!: (e: Error) => void;
  // fast path
  private readonly ring: RingView | undefined;
  private readonly freeSlots: number[] = [];
  private readonly slotPending = new Map<number, Pending>();
  private waitingDone = false;
  private sweep: NodeJS.Timeout | undefined;
  private doneSeen = 0;

  constructor(private readonly o: InstanceOptions) {
    super();
    const sab = o.fastPath ? createRing() : undefined;
    if (sab) {
      this.ring = new RingView(sab);
      for (let i = this.ring.layout.slots - 1; i >= 0; i--) this.freeSlots.push(i);
    }
    const init: WorkerInit = sab ? { ...o.init, ring: sab } : o.init;
    if (o.standby) {
      this.origin = o.standby.state === 'ready' ? 'standby' : 'standby-booting';
      this.worker = o.standby.adopt();
      // The worker's one TA; it queues in the worker's port if the standby is still preparing.
      this.worker.postMessage({ t: 'init', init } satisfies ToWorker);
    } else {
      this.origin = 'fresh';
      this.worker = spawnEnclaveWorker(o.shape, { prep: prepFor(o.shape), init }, `enclave:${o.init.ta.name}`);
    }
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => undefined);
    // A TA whose top level or onCreate never finishes must not leave create() pending forever.
    this.startTimer = setTimeout(() => {
      if (!this.started) this.kill({ code: 'TIMEOUT', reason: `the TA did not finish loading and onCreate within ${o.startTimeoutMs} ms` });
    }, o.startTimeoutMs);
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') this.die({ code: 'OUT_OF_MEMORY', reason: `the TA exceeded its heap limit (${o.heapMb} MB)` });
      else this.die({ code: 'TA_CRASHED', reason: `the enclave worker crashed: ${err.message}` });
    });
    this.worker.on('exit', (code) => {
      this.destroyedResolve?.();
      if (!this.exiting) this.die({ code: 'TA_CRASHED', reason: `the enclave worker exited (code ${code})` });
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

  /** Run a call when a slot frees up (maxConcurrency), waiting in a bounded queue, else BUSY. */
  call(kind: CallKind, sid: string | undefined, cmd: string, params: Value, timeoutMs = this.o.callTimeoutMs): Promise<Value> {
    if (this.dead) return Promise.reject(new EnclaveEdgeError(this.dead.code === 'TIMEOUT' ? 'TA_CRASHED' : this.dead.code, `the TA instance is gone: ${this.dead.reason}`));
    if (this.inFlight < this.o.maxConcurrency) return this.send(kind, sid, cmd, params, timeoutMs);
    if (this.queue.length >= this.o.queueLimit) {
      return Promise.reject(new EnclaveEdgeError('BUSY', `TA "${this.o.init.ta.name}" is busy: ${this.inFlight} calls running and ${this.queue.length} waiting`));
    }
    return new Promise((resolve, reject) => this.queue.push({ kind, sid, cmd, params, timeoutMs, resolve, reject }));
  }

  private next(): void {
    while (this.inFlight < this.o.maxConcurrency && this.queue.length && !this.dead) {
      const q = this.queue.shift()!;
      this.send(q.kind, q.sid, q.cmd, q.params, q.timeoutMs).then(q.resolve, q.reject);
    }
  }

  /**
   * Deadlines: one sweep timer per instance while calls are pending, rather than a timer per
   * call (cheaper at fast-path rates); a call is failed within ~10% of its timeout.
   */
  private armSweep(): void {
    if (this.sweep) return;
    const every = Math.max(5, Math.min(100, Math.floor(this.o.callTimeoutMs / 10)));
    this.sweep = setInterval(() => {
      if (this.dead || (this.pending.size === 0 && this.slotPending.size === 0)) {
        clearInterval(this.sweep);
        this.sweep = undefined;
        return;
      }
      const now = performance.now();
      for (const [id, p] of this.pending) if (now >= p.deadline) return this.timedOut(id, p);
      for (const [slot, p] of this.slotPending) if (now >= p.deadline) return this.timedOut(-(slot + 1), p);
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

  /** The fast path: one implicit-session invoke through the shared ring; undefined when it cannot take it (full, busy, too big). */
  fastCall(cmd: string, json: string, timeoutMs = this.o.callTimeoutMs): Promise<Value> | undefined {
    const ring = this.ring;
    if (!ring || this.dead || this.inFlight >= this.o.maxConcurrency || this.freeSlots.length === 0) return undefined;
    const slot = this.freeSlots.pop()!;
    if (!ring.writeRequest(slot, cmd, json)) {
      this.freeSlots.push(slot);
      return undefined;
    }
    this.inFlight++;
    const p = new Promise<Value>((resolve, reject) => {
      this.slotPending.set(slot, { resolve, reject, deadline: performance.now() + timeoutMs, cmd, timeoutMs });
    });
    this.armSweep();
    ring.setState(slot, REQ);
    // One SUBMIT bump per burst (calls issued in the same tick share a wake-up), and early every
    // few calls so the worker starts while this side is still submitting.
    if (++this.unsubmitted >= 8) this.flushSubmit();
    else if (!this.submitQueued) {
      this.submitQueued = true;
      queueMicrotask(this.flushSubmit);
    }
    return p;
  }

  private submitQueued = false;
  private unsubmitted = 0;
  private readonly flushSubmit = (): void => {
    this.submitQueued = false;
    if (!this.ring || this.dead || this.unsubmitted === 0) return;
    this.unsubmitted = 0;
    this.ring.bump(SUBMIT, WORKER_WAITING);
    this.watchRing();
  };

  private watchRing(): void {
    if (this.waitingDone || !this.ring || this.slotPending.size === 0) return;
    this.waitingDone = true;
    this.ring.park(DONE, this.doneSeen, HOST_WAITING, () => {
      this.waitingDone = false;
      this.collectRing();
      this.watchRing();
    });
  }

  private collectRing(): void {
    const ring = this.ring!;
    this.doneSeen = Atomics.load(ring.i32, DONE);
    for (const [slot, p] of this.slotPending) {
      if (ring.state(slot) !== RESP) continue;
      const { ok, json } = ring.readResponse(slot);
      ring.setState(slot, FREE);
      this.slotPending.delete(slot);
      this.freeSlots.push(slot);
      this.settle(p, ok, ok ? (JSON.parse(json) as Value) : undefined, ok ? undefined : (JSON.parse(json) as WireError));
    }
  }

  private settle(p: Pending, ok: boolean, value: Value | undefined, error: WireError | undefined): void {
    this.inFlight--;
    if (ok) p.resolve(value as Value);
    else p.reject(this.o.hooks.error(error!));
    if (this.queue.length) this.next();
    if (this.inFlight === 0) this.emit('idle');
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'ready':
        this.started = true;
        clearTimeout(this.startTimer);
        this.readyResolve(m);
        return;
      case 'initError':
        this.kill({ code: m.error.code, reason: m.error.message });
        return;
      case 'done': {
        if (m.id < 0) {
          const slot = -m.id - 1;
          const p = this.slotPending.get(slot);
          if (!p) return;
          this.slotPending.delete(slot);
          this.ring!.setState(slot, FREE);
          this.freeSlots.push(slot);
          this.settle(p, m.ok, m.ok ? m.value : undefined, m.ok ? undefined : m.error);
          return;
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        this.settle(p, m.ok, m.ok ? m.value : undefined, m.ok ? undefined : m.error);
        return;
      }
      case 'svc':
        this.o.hooks.service(m.op, m.args).then(
          (value) => this.post({ t: 'svcReply', id: m.id, ok: true, value: value ?? null }),
          (err: unknown) => {
            const e = err instanceof EnclaveEdgeError ? err : new EnclaveEdgeError('INTERNAL', 'service call failed');
            this.post({ t: 'svcReply', id: m.id, ok: false, error: { code: e.code, message: e.message } });
          },
        );
        return;
      case 'log':
        this.o.hooks.log(m.level, m.message, m.fields);
        return;
      case 'destroyed':
        return;
      default:
        return;
    }
  }

  private post(m: ToWorker): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  private timedOut(id: number, p: Pending): void {
    const { cmd, timeoutMs } = p;
    if (this.dead) return;
    if (id < 0) this.slotPending.delete(-id - 1);
    else this.pending.delete(id);
    this.inFlight--;
    p.reject(new EnclaveEdgeError('TIMEOUT', `TA "${this.o.init.ta.name}" command "${cmd}" did not finish within ${timeoutMs} ms; the instance was terminated`));
    // A runaway call cannot be interrupted inside the isolate: end the whole instance.
    this.kill({ code: 'TIMEOUT', reason: `command "${cmd}" exceeded ${timeoutMs} ms` });
  }

  /** Terminate the worker and fail everything still pending with the reason. */
  kill(reason: DeathReason): void {
    this.die(reason);
    this.exiting = true;
    void this.worker.terminate();
  }

  private die(reason: DeathReason, announce = true): void {
    if (this.dead) return;
    this.dead = reason;
    const code: ErrorCode = reason.code === 'OUT_OF_MEMORY' ? 'OUT_OF_MEMORY' : 'TA_CRASHED';
    const err = () => new EnclaveEdgeError(code, `TA "${this.o.init.ta.name}" instance ended: ${reason.reason}`);
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = undefined;
    for (const p of [...this.pending.values(), ...this.slotPending.values()]) p.reject(err());
    this.pending.clear();
    this.slotPending.clear();
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
