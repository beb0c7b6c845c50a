/**
 * An emulated enclave: one TA, its instances (one shared, or one per session), its sessions,
 * and the policy that restarts crashed instances and marks crash-looping TAs failed.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import type { Value } from '@enclave-edge/ta-sdk';
import type { BatchItemOutcome, Enclave, EnclaveCreateOptions, EnclaveEvent, EnclaveStats, InvokeOptions, TAIdentity } from '../../contract.js';
import type { WireError, WorkerInit } from '../wire/protocol.cjs';
import { copyValue, isProblem } from '../wire/values.cjs';
import { BATCH_REPORT_BYTES } from '../wire/protocol.cjs';
import { wasmMaxPagesFor } from '../wire/wasm-memory.cjs';
import { Instance, type DeathReason, type QueuedCall } from './instance.js';
import { StackMapper } from '../source-map.js';
import { TrustBridge } from '../trust-bridge.js';
import { CONFIDENTIAL_COMMAND } from '@enclave-edge/confidential/names';
import { CrashTracker, type RestartPolicy } from '../restart-policy.js';
import { rememberSesCache } from './ses-source.js';
import type { StandbyPool } from './standby-pool.js';
import { shapeOf } from './worker-shape.js';
import type { WorkerHost } from './enclave-worker.js';
import { RemoteWorker, TaProcess, type ProcessIsolation } from '../process/ta-process.js';
import { invokeEach } from '../../batch.js';

/** The envelope codec, loaded with the first confidential call (the HPKE library comes with it). */
let envelopeCodec: Promise<typeof import('@enclave-edge/confidential/envelope')> | undefined;

export interface EmulatedEnclaveConfig {
  kind: string;
  restart: RestartPolicy;
  /** Extra time an instance gets to start, on top of the manifest's callTimeoutMs. */
  startAllowanceMs: number;
  /** Prepared workers to start instances on (absent or empty: spawn fresh). */
  pool?: StandbyPool;
  /** Present: the TA's instances run in an OS process of its own (its fault domain). */
  processes?: ProcessIsolation;
  /** Instances of one TA at once when neither manifest nor operator says less. */
  defaultMaxInstances: number;
  /** Instances of every enclave of the backend together. */
  total: InstanceBudget;
}

/** The backend-wide cap on live enclave instances, shared by its enclaves. */
export class InstanceBudget {
  readonly live = new Set<object>();
  constructor(readonly max: number) {}
}

/**
 * How the latest instance started (ms). Fresh worker: spawn → runtime code (boot), SES + lockdown,
 * then load, onCreate, ready message. Standby worker: boot and lockdown happened ahead of time
 * (0 here); `assignMs` is adoption → the worker picking up its TA (longer if it was still preparing).
 */
export interface StartupSteps {
  origin: 'fresh' | 'standby' | 'standby-booting';
  threadId: number;
  bootMs: number;
  lockdownMs: number;
  assignMs: number;
  loadMs: number;
  createMs: number;
  readyMs: number;
  totalMs: number;
}

interface SessionEntry {
  instance: Instance;
  lastUsed: number;
  busy: number;
}

const DEFAULT_IDLE_MS = 10 * 60_000;
const DEAD_SESSION_MEMORY = 1024;

export class EmulatedEnclave implements Enclave {
  readonly id = randomUUID();
  readonly identity: TAIdentity;
  readonly backend: string;
  /** How the latest instance started, by step (see StartupSteps). */
  lastStartup: StartupSteps | undefined;
  /** Debug TAs with options.inspect: the DevTools WebSocket of the current instance (docs/debugging.md). */
  inspectorUrl: string | undefined;

  private readonly events = new EventEmitter();
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly deadSessions = new Map<string, string>();
  private readonly instances = new Set<Instance>();
  private readonly crashes: CrashTracker;
  private readonly mapper: StackMapper;
  private readonly bridge: TrustBridge;
  private readonly maxPayloadBytes: number;
  private readonly idleMs: number;
  private main: Instance | undefined;
  /** The TA's own process (process isolation), while it lives. */
  private proc: TaProcess | undefined;
  private procCrashed = false;
  private mainStarting: Promise<Instance> | undefined;
  private spare: Instance | undefined;
  private state: EnclaveStats['state'] = 'ready';
  private failedReason = '';
  private sweeper: NodeJS.Timeout | undefined;
  private waitingForStart = 0;
  private opening = 0;
  private counters = { calls: 0, errors: 0, restarts: 0 };
  private readonly maxInstances: number;
  private readonly maxInstancesWhy: string;
  private failures = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Implicit-session calls of an instance-per-session TA running now, and those waiting (maxConcurrency). */
  private implicitRunning = 0;
  private readonly implicitWaiting: (() => void)[] = [];

  constructor(
    private readonly bundle: VerifiedBundle,
    private readonly options: EnclaveCreateOptions,
    private readonly config: EmulatedEnclaveConfig,
  ) {
    const m = bundle.manifest;
    this.backend = config.kind;
    this.identity = Object.freeze({
      name: m.name,
      uuid: m.uuid,
      version: m.version,
      measurement: bundle.measurement,
      signerId: bundle.signerId,
      productId: m.productId,
      securityVersion: m.securityVersion,
      debug: m.debug,
    });
    this.maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
    this.idleMs = options.sessionIdleTimeoutMs ?? DEFAULT_IDLE_MS;
    this.crashes = new CrashTracker(config.restart);
    this.mapper = new StackMapper(m.debug ? bundle.sourceMap : undefined, 1);
    this.bridge = new TrustBridge(this.identity, config.kind, m.hostCalls, options, this.maxPayloadBytes);
    const own = m.limits.maxInstances ?? config.defaultMaxInstances;
    const cap = options.maxInstances;
    if (cap !== undefined && !(Number.isInteger(cap) && cap >= 1)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'maxInstances must be a positive integer');
    this.maxInstances = cap !== undefined ? Math.min(own, cap) : own;
    this.maxInstancesWhy =
      cap !== undefined && cap < own
        ? `the operator's cap of ${cap} instances per TA (maxLimits.maxInstances)`
        : m.limits.maxInstances !== undefined
          ? `its limits.maxInstances of ${own}`
          : `the default of ${own} instances per TA`;
  }

  /** Spawn the first instance: proves the code loads before create() returns. */
  async start(): Promise<void> {
    const started = this.bundle.manifest.session.singleInstance
      ? this.getMain().then(() => undefined)
      : (async () => {
          const inst = this.spawn();
          await this.awaitReady(inst);
          this.spare = inst;
        })();
    if (!(this.options.inspect === 'wait' && this.identity.debug)) return started;
    // Its debugger decides when the TA's code runs: return once the inspector listens; calls wait for the instance.
    started.catch(() => undefined);
    await Promise.race([started, new Promise<void>((r) => this.inspectorListeners.push(r))]);
  }

  private readonly inspectorListeners: (() => void)[] = [];

  private onInspector(url: string, waiting: boolean): void {
    this.inspectorUrl = url;
    const tell = this.options.onInspector;
    // A caller that listens says it in its own words; otherwise the log says it.
    if (!tell) this.log('warn', `debugger listening for TA "${this.identity.name}" at ${url} (debug TA, inspect enabled${waiting ? '; waiting for the debugger before its first line' : ''})`);
    else {
      try {
        tell(url, { waiting });
      } catch {
        // the caller's listener: its failure is not the enclave's
      }
    }
    for (const r of this.inspectorListeners.splice(0)) r();
  }

  // ---------------- public API ----------------

  async openSession(params?: Value): Promise<string> {
    this.assertServing();
    const p = this.checkParams(params, 'session parameters');
    const s = this.bundle.manifest.session;
    if (s.singleInstance && !s.multiSession && this.sessions.size + this.opening >= 1) {
      throw new EnclaveEdgeError('BUSY', `TA "${this.identity.name}" takes one session at a time and one is open`);
    }
    this.opening++; // counted from here, so concurrent opens cannot both pass the one-session rule
    let inst: Instance;
    try {
      if (s.singleInstance) inst = await this.getMain();
      else {
        inst = this.spare ?? this.spawn();
        this.spare = undefined;
        await this.awaitReady(inst);
      }
    } finally {
      this.opening--;
    }
    const sid = randomUUID();
    const entry: SessionEntry = { instance: inst, lastUsed: Date.now(), busy: 1 };
    this.sessions.set(sid, entry);
    try {
      await inst.call('open', sid, '', p);
    } catch (err) {
      this.sessions.delete(sid);
      if (!s.singleInstance) void this.retire(inst);
      throw err;
    }
    entry.busy--;
    entry.lastUsed = Date.now();
    this.armSweeper();
    return sid;
  }

  async invoke(sessionId: string | undefined, command: string, params?: Value, opts?: InvokeOptions): Promise<Value> {
    const p = this.admitCall(sessionId, command, params).value;
    const waitMs = this.callerWaitOf(opts);
    const run = command === CONFIDENTIAL_COMMAND ? this.runEnvelope(sessionId, p) : this.run(sessionId, command, p);
    if (waitMs === undefined) return run;
    return new Promise<Value>((resolve, reject) => {
      const t = setTimeout(() => reject(this.callerTimeout(command, waitMs)), waitMs);
      run.then(
        (v) => (clearTimeout(t), resolve(v)),
        (e: unknown) => (clearTimeout(t), reject(e)),
      );
    });
  }

  /**
   * Session-less invokes of one command, each answered as invoke() would answer it (its own
   * error per item). A shared-instance TA gets them in one message per batch (Instance.callBatch);
   * confidential envelopes (their request ids are reserved one by one) and instance-per-session
   * TAs (an instance per call) go through invoke() item by item.
   */
  async invokeBatch(command: string, params: Array<Value | undefined>, opts?: InvokeOptions): Promise<BatchItemOutcome[]> {
    const waitMs = this.callerWaitOf(opts);
    if (command === CONFIDENTIAL_COMMAND || !this.bundle.manifest.session.singleInstance) {
      return invokeEach(this, command, params, opts);
    }
    const out: Array<BatchItemOutcome | undefined> = params.map(() => undefined);
    // Items refused here never reach the TA; the rest go in batches of bounded size, in order.
    const batches: Array<{ at: number[]; items: Value[] }> = [];
    let bytes = 0;
    params.forEach((raw, i) => {
      let c: { value: Value; bytes: number };
      try {
        c = this.admitCall(undefined, command, raw);
      } catch (error) {
        out[i] = { ok: false, error: error as Error };
        return;
      }
      if (batches.length === 0 || bytes + c.bytes > BATCH_REPORT_BYTES) {
        batches.push({ at: [], items: [] });
        bytes = 0;
      }
      bytes += c.bytes;
      batches.at(-1)!.at.push(i);
      batches.at(-1)!.items.push(c.value);
    });
    let answered = out;
    const run = Promise.all(batches.map((b) => this.runBatch(command, b.items, (k, item) => (answered[b.at[k]!] = item))));
    if (waitMs !== undefined) {
      let t: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((r) => (t = setTimeout(r, waitMs)));
      await Promise.race([run, waited]);
      clearTimeout(t);
      // Items still running go on in the TA; this caller stops waiting for them (later answers land in a copy nobody reads).
      answered = [...out];
    } else await run;
    return out.map((o) => o ?? { ok: false, error: this.callerTimeout(command, waitMs ?? 0) });
  }

  /**
   * A confidential envelope: its request id is reserved here, as it enters the enclave, so a
   * replay (or a second copy in flight) is refused before any instance sees it, with no round
   * trip from the instance. The header is not authenticated yet: the id is freed again only when
   * the instance says the envelope did not open; timeouts and crashes keep it spent.
   */
  private async runEnvelope(sessionId: string | undefined, p: Value): Promise<Value> {
    const env = await (envelopeCodec ??= import('@enclave-edge/confidential/envelope'));
    let rid: string | undefined;
    try {
      const { header } = env.parseRequestEnvelope(p, { ta: this.identity.name, measurement: this.identity.measurement });
      rid = header.rid;
      const seen = this.bridge.reserveRequestId(rid, header.exp + env.CLOCK_TOLERANCE_MS);
      if (seen === 'replay') throw new env.EnvelopeError('replay', 'this request id was presented before (single-use envelopes)');
      if (seen === 'full') throw new env.EnvelopeError('replay-cache-full', 'too many unexpired requests to rule out a replay; retry later');
    } catch (err) {
      if (err instanceof env.EnvelopeError && (err.reason === 'replay' || err.reason === 'replay-cache-full')) {
        this.counters.calls++;
        this.counters.errors++;
        throw err;
      }
      rid = undefined; // malformed here: the instance refuses it with its reason
    }
    try {
      return await this.run(sessionId, CONFIDENTIAL_COMMAND, p);
    } catch (err) {
      if (rid !== undefined && env.refusedBeforeOpening(err)) this.bridge.releaseRequestId(rid);
      throw err;
    }
  }

  /** A batch on the shared instance (singleInstance TAs), counted per item as run() counts calls. */
  private async runBatch(command: string, items: Value[], put: (k: number, item: BatchItemOutcome) => void): Promise<void> {
    const timeout = this.bundle.manifest.limits.callTimeoutMs;
    this.counters.calls += items.length;
    const answered = new Set<number>();
    const take = (k: number, item: BatchItemOutcome) => {
      if (answered.has(k)) return;
      answered.add(k);
      if (!item.ok) this.counters.errors++;
      put(k, item);
    };
    try {
      const inst = this.main && !this.main.isDead ? this.main : await this.getMain();
      try {
        await inst.callBatch(command, items, take, timeout);
      } finally {
        this.maybeStopMain();
      }
    } catch (err) {
      // It never started (or could not be re-run after a crash): every item fails as one call would.
      for (let k = 0; k < items.length; k++) take(k, { ok: false, error: err as Error });
    }
  }

  /** One call, bounded only by the TA's own callTimeoutMs (which ends the instance). */
  private async run(sessionId: string | undefined, command: string, p: Value): Promise<Value> {
    const timeout = this.bundle.manifest.limits.callTimeoutMs;
    this.counters.calls++;
    try {
      if (sessionId !== undefined) {
        const entry = this.session(sessionId);
        entry.busy++;
        entry.lastUsed = Date.now();
        try {
          return await entry.instance.call('invoke', sessionId, command, p, timeout);
        } finally {
          entry.busy--;
          entry.lastUsed = Date.now();
        }
      }
      if (this.bundle.manifest.session.singleInstance) {
        const inst = this.main && !this.main.isDead ? this.main : await this.getMain();
        try {
          return await inst.call('invoke', undefined, command, p, timeout);
        } finally {
          this.maybeStopMain();
        }
      }
      // One instance per session: an implicit session gets its own short-lived instance, at most
      // maxConcurrency of them at once (the rest wait in the bounded queue, then BUSY).
      await this.implicitSlot();
      try {
        const inst = this.spare ?? this.spawn();
        this.spare = undefined;
        try {
          await this.awaitReady(inst);
          return await inst.call('invoke', undefined, command, p, timeout);
        } finally {
          void this.retire(inst);
        }
      } finally {
        this.implicitRunning--;
        this.implicitWaiting.shift()?.();
      }
    } catch (err) {
      this.counters.errors++;
      throw err;
    }
  }

  async closeSession(sessionId: string): Promise<void> {
    const entry = this.sessions.get(sessionId);
    if (!entry) {
      if (this.deadSessions.delete(sessionId)) return;
      throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no open session ${sessionId}`);
    }
    this.sessions.delete(sessionId);
    try {
      if (!entry.instance.isDead) await entry.instance.call('close', sessionId, '', null);
    } catch {
      /* the session is gone either way */
    } finally {
      if (!this.bundle.manifest.session.singleInstance) await this.retire(entry.instance);
      else this.maybeStopMain();
    }
  }

  async destroy(): Promise<void> {
    if (this.state === 'destroyed') return;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const [sid, entry] of [...this.sessions]) {
      this.sessions.delete(sid);
      if (!entry.instance.isDead) await entry.instance.call('close', sid, '', null).catch(() => undefined);
    }
    this.state = 'destroyed';
    clearTimeout(this.retryTimer);
    await Promise.all([...this.instances].map((i) => i.destroy()));
    for (const i of this.instances) this.config.total.live.delete(i);
    this.instances.clear();
    this.proc?.close();
    this.proc = undefined;
    this.main = undefined;
    this.spare = undefined;
  }

  stats(): EnclaveStats {
    let inFlight = 0;
    let queued = 0;
    for (const i of this.instances) {
      inFlight += i.inFlight;
      queued += i.queued;
    }
    return {
      state: this.state,
      instances: [...this.instances].filter((i) => !i.isDead).length,
      sessions: this.sessions.size,
      inFlight,
      queued,
      ...this.counters,
      ...(this.state === 'failed' ? { retryInMs: Math.max(0, this.retryAt - Date.now()) } : {}),
      ...(this.failures ? { failures: this.failures } : {}),
    };
  }

  /** Operator reset: a failed TA serves again now, with a fresh crash window. */
  async reset(): Promise<void> {
    this.recover('reset');
  }

  /** The TA's own process (process isolation): its pid and the uid it runs under. */
  processInfo(): { pid: number; uid: number | undefined } | undefined {
    const p = this.proc;
    if (!p || p.isGone || p.pid === undefined) return undefined;
    return { pid: p.pid, uid: p.uid };
  }

  on(_event: 'event', listener: (e: EnclaveEvent) => void): this {
    this.events.on('event', listener);
    return this;
  }

  off(_event: 'event', listener: (e: EnclaveEvent) => void): this {
    this.events.off('event', listener);
    return this;
  }

  // ---------------- internals ----------------

  private emitEvent(e: EnclaveEvent): void {
    this.events.emit('event', e);
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
    try {
      this.options.log?.(level, this.identity.name, message, fields);
    } catch {
      /* a broken logger must not break the enclave */
    }
  }

  private assertServing(): void {
    if (this.state === 'destroyed') throw new EnclaveEdgeError('UNAVAILABLE', `enclave for TA "${this.identity.name}" was destroyed`);
    if (this.state === 'failed') throw new EnclaveEdgeError('TA_FAILED', `TA "${this.identity.name}" is marked failed: ${this.failedReason}`);
  }

  private checkParams(params: Value | undefined, label: string): Value {
    return this.copyParams(params, label).value;
  }

  private copyParams(params: Value | undefined, label: string): { value: Value; bytes: number } {
    const c = copyValue(params === undefined ? null : params, this.maxPayloadBytes, label);
    if (isProblem(c)) throw new EnclaveEdgeError(c.code, c.message);
    return c;
  }

  /** What every invoke, alone or in a batch, must pass before it is run: the params as the TA gets them. */
  private admitCall(sessionId: string | undefined, command: string, params: Value | undefined): { value: Value; bytes: number } {
    this.assertServing();
    if (typeof command !== 'string' || command.length === 0 || command.length > 256) throw new EnclaveEdgeError('BAD_PARAMETERS', 'command must be a non-empty string of at most 256 characters');
    if (sessionId !== undefined && typeof sessionId !== 'string') throw new EnclaveEdgeError('BAD_PARAMETERS', 'session id must be a string');
    return this.copyParams(params, 'params');
  }

  private callerTimeout(command: string, waitMs: number): EnclaveEdgeError {
    return new EnclaveEdgeError('TIMEOUT', `TA "${this.identity.name}" command "${command}" did not answer within the caller's ${waitMs} ms; the call goes on in the TA, bounded by its callTimeoutMs`);
  }

  /** How long this caller waits, when shorter than the TA's own call timeout (which then applies alone). */
  private callerWaitOf(opts: InvokeOptions | undefined): number | undefined {
    const t = opts?.timeoutMs;
    if (t === undefined) return undefined;
    if (typeof t !== 'number' || !(t > 0)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'timeoutMs must be a positive number');
    return t < this.bundle.manifest.limits.callTimeoutMs ? t : undefined;
  }

  private implicitSlot(): Promise<void> {
    const limit = this.bundle.manifest.limits.maxConcurrency;
    if (this.implicitRunning < limit) {
      this.implicitRunning++;
      return Promise.resolve();
    }
    if (this.implicitWaiting.length >= (this.options.queueLimit ?? 64)) {
      return Promise.reject(new EnclaveEdgeError('BUSY', `TA "${this.identity.name}" is busy: ${this.implicitRunning} calls running (maxConcurrency ${limit}) and ${this.implicitWaiting.length} waiting`));
    }
    return new Promise<void>((r) => this.implicitWaiting.push(() => (this.implicitRunning++, r())));
  }

  /** Live instances of this TA and of the backend, against their caps: BUSY naming the cap. */
  private admitInstance(): void {
    if (this.instances.size >= this.maxInstances) {
      throw new EnclaveEdgeError('BUSY', `TA "${this.identity.name}" already runs ${this.instances.size} instances, ${this.maxInstancesWhy}`);
    }
    const total = this.config.total;
    if (total.live.size >= total.max) {
      throw new EnclaveEdgeError('BUSY', `the runtime already runs ${total.live.size} enclave instances, its cap in total (maxInstancesTotal ${total.max})`);
    }
  }

  private forget(inst: Instance): void {
    this.instances.delete(inst);
    this.config.total.live.delete(inst);
  }

  private session(sid: string): SessionEntry {
    const e = this.sessions.get(sid);
    if (e) return e;
    const dead = this.deadSessions.get(sid);
    if (dead) throw new EnclaveEdgeError('TA_CRASHED', `session ${sid} ended: ${dead}`);
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no open session ${sid}`);
  }

  private workerInit(): WorkerInit {
    const m = this.bundle.manifest;
    // The backend refused inspect for a release TA before this enclave existed (inspectRefusal).
    const inspect = !!(this.options.inspect && m.debug);
    return {
      manifest: m,
      ta: { ...this.identity },
      code: this.bundle.code,
      maxPayloadBytes: this.maxPayloadBytes,
      inspect,
      ...(inspect && this.options.inspect === 'wait' ? { inspectWait: true } : {}),
      ...(inspect && this.bundle.sourceMap ? { sourceMap: this.bundle.sourceMap } : {}),
      ...(m.runtime === 'wasm' ? { wasmMaxPages: wasmMaxPagesFor(m.limits.heapMb) } : {}),
    };
  }

  private spawn(): Instance {
    this.admitInstance();
    const m = this.bundle.manifest;
    const init = this.workerInit();
    const shape = shapeOf(m);
    const pool = this.config.pool;
    // An inspected TA opens its inspector before anything else runs: never a standby.
    let standby: ReturnType<StandbyPool['take']>;
    let host: WorkerHost | undefined;
    const procs = this.config.processes;
    if (!procs) standby = init.inspect ? undefined : pool?.take(shape);
    else {
      // One process per TA: every instance of this TA runs in it. After an instance crashed, the
      // next one starts in a fresh process (a prepared standby when there is one) and the old one
      // ends after its last worker.
      if (!this.proc || this.proc.isGone || this.procCrashed) {
        this.proc?.closeWhenIdle();
        this.procCrashed = false;
        const s = init.inspect ? undefined : pool?.take(shape);
        const limits = procs.limitsFor(m);
        this.proc = s && s.worker instanceof RemoteWorker ? s.worker.proc : procs.create(limits);
        this.proc.assign(m.name, limits, procs.runAsFor(m.name));
        standby = s;
      }
      if (!standby) host = this.proc;
    }
    const inst = new Instance({
      init,
      shape,
      ...(standby ? { standby } : {}),
      ...(host ? { host } : {}),
      heapMb: m.limits.heapMb,
      stackKb: m.limits.stackKb,
      maxConcurrency: m.limits.maxConcurrency,
      queueLimit: this.options.queueLimit ?? 64,
      // Inspected: a paused debugger must not look like a runaway TA (a caller's own timeoutMs still applies).
      callTimeoutMs: init.inspect ? Infinity : m.limits.callTimeoutMs,
      startTimeoutMs: init.inspect ? undefined : m.limits.callTimeoutMs + this.config.startAllowanceMs,
      hooks: {
        service: (op, args) => this.bridge.handle(op, args),
        log: (level, message, fields) => this.log(level, message, fields),
        error: (w) => this.wireError(w),
        inspector: (url) => this.onInspector(url, init.inspectWait === true),
      },
    });
    this.instances.add(inst);
    this.config.total.live.add(inst);
    inst.on('death', (d: DeathReason) => this.onDeath(inst, d));
    pool?.track(inst.ready);
    return inst;
  }

  private async awaitReady(inst: Instance): Promise<Instance> {
    let r: Awaited<Instance['ready']>;
    try {
      r = await inst.ready;
    } catch (err) {
      this.forget(inst);
      throw err;
    }
    if (r.sesCache) rememberSesCache(r.sesCache);
    const t = r.startup;
    const end = performance.timeOrigin + performance.now();
    const ms = (x: number) => Math.round(x * 10) / 10;
    const fresh = inst.origin === 'fresh';
    this.lastStartup = {
      origin: inst.origin,
      threadId: inst.worker.threadId,
      bootMs: fresh ? ms(t.entered - inst.spawnedAt) : 0,
      lockdownMs: fresh ? ms(t.lockedDown - t.entered) : 0,
      assignMs: ms(t.assigned - (fresh ? t.lockedDown : inst.spawnedAt)),
      loadMs: ms(t.loaded - t.assigned),
      createMs: ms(t.created - t.loaded),
      readyMs: ms(end - t.created),
      totalMs: ms(end - inst.spawnedAt),
    };
    return inst;
  }

  /** The shared instance (singleInstance TAs), started on demand; callers wait while it (re)starts. */
  private getMain(): Promise<Instance> {
    if (this.main && !this.main.isDead) return Promise.resolve(this.main);
    if (!this.mainStarting) {
      const inst = this.spawn();
      this.mainStarting = this.awaitReady(inst).then(
        (i) => {
          this.main = i;
          this.mainStarting = undefined;
          return i;
        },
        (err) => {
          this.mainStarting = undefined;
          this.forget(inst);
          throw err;
        },
      );
    }
    if (this.waitingForStart >= (this.options.queueLimit ?? 64)) {
      return Promise.reject(new EnclaveEdgeError('BUSY', `TA "${this.identity.name}" is starting and ${this.waitingForStart} calls already wait`));
    }
    this.waitingForStart++;
    return this.mainStarting.finally(() => this.waitingForStart--);
  }

  /** keepAlive: false — a shared instance with no sessions and no calls is stopped (state does not survive). */
  private maybeStopMain(): void {
    const s = this.bundle.manifest.session;
    const inst = this.main;
    if (s.keepAlive || !inst || this.sessions.size > 0 || this.opening > 0 || inst.inFlight > 0 || inst.queued > 0) return;
    this.main = undefined;
    void this.retire(inst);
  }

  private async retire(inst: Instance): Promise<void> {
    this.forget(inst);
    await inst.destroy().catch(() => undefined);
  }

  private onDeath(inst: Instance, d: DeathReason): void {
    this.forget(inst);
    this.procCrashed = true;
    if (this.state === 'destroyed') return;
    for (const [sid, e] of this.sessions) {
      if (e.instance !== inst) continue;
      this.sessions.delete(sid);
      this.deadSessions.set(sid, `the TA instance was restarted after ${d.code}: ${d.reason}`);
      if (this.deadSessions.size > DEAD_SESSION_MEMORY) this.deadSessions.delete(this.deadSessions.keys().next().value!);
    }
    if (this.main === inst) this.main = undefined;
    if (this.spare === inst) this.spare = undefined;
    this.log('error', `TA instance crashed (${d.code}): ${d.reason}`);
    this.emitEvent({ type: 'crashed', code: d.code, reason: d.reason });
    const orphans = inst.takeOrphans();
    this.afterCrash(d);
    for (const o of orphans) this.rerun(o, d);
  }

  /** A call that was waiting on a crashed instance: session-less ones run on the next instance. */
  private rerun(o: QueuedCall, d: DeathReason): void {
    if (o.sid !== undefined || !this.bundle.manifest.session.singleInstance || this.state === 'failed' || this.state === 'destroyed') {
      const code = this.state === 'failed' ? 'TA_FAILED' : 'TA_CRASHED';
      o.reject(new EnclaveEdgeError(code, `TA "${this.identity.name}" instance ended before the call ran: ${d.reason}`));
      return;
    }
    this.getMain()
      .then((inst) => (o.batch ? inst.callBatch(o.cmd, o.batch.items, o.batch.put, o.timeoutMs).then(() => null) : inst.call(o.kind, undefined, o.cmd, o.params, o.timeoutMs)))
      .then(o.resolve, o.reject);
  }

  /** Back off and restart (shared keepAlive instances eagerly, others on demand), or mark the TA failed. */
  private afterCrash(d: DeathReason): void {
    const delay = this.crashes.record();
    if (delay === undefined) {
      this.state = 'failed';
      this.failures++;
      const retryInMs = this.crashes.retryDelay(this.failures);
      this.retryAt = Date.now() + retryInMs;
      this.failedReason = `${this.crashes.recent} crashes within ${Math.round(this.config.restart.windowMs / 1000)} s; last: ${d.code}: ${d.reason}; retried in ${retryInMs} ms (failure ${this.failures} in a row)`;
      this.log('error', `TA marked failed: ${this.failedReason}`);
      this.emitEvent({ type: 'failed', reason: this.failedReason, retryInMs });
      void Promise.all([...this.instances].map((i) => this.retire(i)));
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.recover('back-off'), retryInMs);
      this.retryTimer.unref();
      return;
    }
    const s = this.bundle.manifest.session;
    if (!(s.singleInstance && s.keepAlive)) return; // others start again on demand
    this.state = 'restarting';
    const attempt = this.crashes.recent;
    // Calls arriving during the backoff wait for this start instead of spawning their own.
    this.mainStarting = new Promise<void>((r) => setTimeout(r, delay))
      .then(() => {
        if (this.state !== 'restarting') throw new EnclaveEdgeError('UNAVAILABLE', `TA "${this.identity.name}" is no longer serving`);
        const next = this.spawn();
        return this.awaitReady(next);
      })
      .then(
        (i) => {
          this.main = i;
          this.mainStarting = undefined;
          this.counters.restarts++;
          if (this.state === 'restarting') this.state = 'ready';
          this.log('info', `TA instance restarted (attempt ${attempt})`);
          this.emitEvent({ type: 'restarted', attempt });
          return i;
        },
        (err: unknown) => {
          this.mainStarting = undefined;
          if (this.state === 'restarting') {
            const e = err instanceof EnclaveEdgeError ? err : new EnclaveEdgeError('TA_CRASHED', String(err));
            this.log('error', `TA instance failed to restart (${e.code}): ${e.message}`);
            this.afterCrash({ code: e.code, reason: `restart failed: ${e.message}` });
          }
          throw err;
        },
      );
    this.mainStarting.catch(() => undefined);
  }

  /** Leave `failed`: a fresh crash window; keepAlive TAs start their shared instance again at once. */
  private recover(after: 'back-off' | 'reset'): void {
    if (this.state !== 'failed') return;
    clearTimeout(this.retryTimer);
    if (after === 'reset') this.failures = 0;
    this.crashes.clear();
    this.state = 'ready';
    this.failedReason = '';
    this.log('info', `TA serving again after ${after === 'reset' ? "an operator's reset" : 'its back-off'}`);
    this.emitEvent({ type: 'recovering', after, failures: this.failures });
    const s = this.bundle.manifest.session;
    if (s.singleInstance && s.keepAlive) {
      this.getMain().catch((err: unknown) => {
        const e = err instanceof EnclaveEdgeError ? err : new EnclaveEdgeError('TA_CRASHED', String(err));
        this.afterCrash({ code: e.code, reason: `start after ${after} failed: ${e.message}` });
      });
    }
  }

  private wireError(w: WireError): EnclaveEdgeError {
    if (w.stack && this.identity.debug) {
      return new EnclaveEdgeError(w.code, w.message, { detail: { stack: this.mapper.map(w.stack) } });
    }
    return new EnclaveEdgeError(w.code, w.message);
  }

  private armSweeper(): void {
    if (this.sweeper) return;
    const every = Math.max(10, Math.min(30_000, Math.floor(this.idleMs / 2)));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [sid, e] of this.sessions) {
      if (e.busy === 0 && now - e.lastUsed > this.idleMs) {
        // Logged once it is closed (and its instance, for instance-per-session TAs, retired).
        void this.closeSession(sid)
          .catch(() => undefined)
          .then(() => this.log('info', `session ${sid} expired after ${this.idleMs} ms idle`));
      }
    }
    if (this.sessions.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
