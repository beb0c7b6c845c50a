/**
 * Standby workers: spawned and prepared (SES lockdown for JS) ahead of time, with no TA code
 * and no identity. Each is handed to exactly one enclave instance and never comes back: a used
 * worker is terminated with its instance, so no state of one TA can reach another. The pool is
 * refilled in the background once no instance start is in flight.
 *
 * resourceLimits are fixed when a worker is spawned, so a standby only fits TAs of its shape
 * (runtime, debug, heap, stack). The pool keeps `size` workers per shape for the few most
 * recently used shapes (default shape first); other TAs spawn fresh.
 */
import type { FromWorker } from '../wire/protocol.cjs';
import { rememberSesCache } from './ses-source.js';
import { prepFor, shapeKey, THREAD_HOST, type WorkerShape } from './worker-shape.js';
import type { EnclaveWorker, WorkerHost } from './enclave-worker.js';

export type StandbyState = 'booting' | 'ready' | 'dead';

const STANDBY_PREPARE_TIMEOUT_MS = 30_000;

export class StandbyWorker {
  state: StandbyState = 'booting';
  private readonly onMessage = (m: FromWorker) => {
    if (m.t === 'standby') {
      this.state = 'ready';
      this.worker.unref();
      if (m.sesCache) rememberSesCache(m.sesCache);
      this.gone('ready', this);
    } else if (m.t === 'initError') this.discard();
  };
  private readonly onError = () => this.discard();
  private readonly onExit = () => this.discard();

  constructor(
    readonly shape: WorkerShape,
    readonly worker: EnclaveWorker,
    private readonly gone: (why: 'ready' | 'dead', w: StandbyWorker) => void,
  ) {
    worker.on('message', this.onMessage);
    worker.on('error', this.onError);
    worker.on('exit', this.onExit);
    // Standbys never keep the process alive (prewarm() holds the ones it waits for). Unref
    // after the listeners: Node refs the worker's port again when its first 'message' listener is added.
    worker.unref();
    // A standby that never finishes preparing would hold prewarm() forever: give up on it.
    setTimeout(() => {
      if (this.state === 'booting' && this.attached) this.discard();
    }, STANDBY_PREPARE_TIMEOUT_MS).unref();
  }

  private attached = true;

  /** Hand the worker to its one instance: the pool lets go of it for good. */
  adopt(): EnclaveWorker {
    this.detach();
    this.worker.ref();
    return this.worker;
  }

  discard(): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    this.detach();
    // Keep swallowing errors of the dying worker (an unhandled 'error' would throw in the host).
    this.worker.on('error', () => undefined);
    void this.worker.terminate().catch(() => undefined);
    this.gone('dead', this);
  }

  private detach(): void {
    this.attached = false;
    this.worker.off('message', this.onMessage);
    this.worker.off('error', this.onError);
    this.worker.off('exit', this.onExit);
  }
}

export interface StandbyStats {
  /** Workers kept per shape. */
  size: number;
  /** Shapes kept, most recently used last. */
  shapes: string[];
  ready: number;
  booting: number;
  spawned: number;
  /** Instances that got a prepared worker / one still preparing / none (spawned fresh). */
  hits: number;
  warmHits: number;
  misses: number;
  /** Standby workers that died or failed to prepare, thrown away. */
  discarded: number;
}

export const MAX_STANDBY_SHAPES = 3;

export class StandbyPool {
  private readonly byShape = new Map<string, StandbyWorker[]>();
  /** Insertion order = least recently used first. */
  private readonly shapes = new Map<string, WorkerShape>();
  private starting = 0;
  private refillQueued = false;
  private closed = false;
  private waiters: (() => void)[] = [];
  private readonly counters = { spawned: 0, hits: 0, warmHits: 0, misses: 0, discarded: 0 };

  constructor(
    readonly size: number,
    private readonly maxShapes = MAX_STANDBY_SHAPES,
    /** Where a standby is spawned: a thread here, or (process isolation) a fresh TA process of its own. */
    private readonly hostFor: (shape: WorkerShape) => WorkerHost = () => THREAD_HOST,
  ) {}

  get enabled(): boolean {
    return this.size > 0 && !this.closed;
  }

  /** A worker for one instance of this shape (prepared if possible, else one still preparing), or undefined: spawn fresh. */
  take(shape: WorkerShape): StandbyWorker | undefined {
    if (!this.enabled) return undefined;
    const key = this.use(shape);
    const list = this.byShape.get(key) ?? [];
    let i = list.findIndex((w) => w.state === 'ready');
    if (i < 0) i = list.findIndex((w) => w.state === 'booting');
    if (i < 0) {
      this.counters.misses++;
      return undefined;
    }
    const [w] = list.splice(i, 1);
    if (w!.state === 'ready') this.counters.hits++;
    else this.counters.warmHits++;
    this.wake();
    return w;
  }

  /** An instance start (hit or not) is in flight; the pool refills only after every start has settled. */
  track(start: Promise<unknown>): void {
    if (!this.enabled) return;
    this.starting++;
    const done = () => {
      if (--this.starting === 0) this.scheduleRefill();
    };
    start.then(done, done);
  }

  /** Fill the pool (adding `shape` to the kept shapes) and resolve once no standby is still preparing. */
  prewarm(shape?: WorkerShape): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    if (shape) this.use(shape);
    this.fill();
    // Awaiting the pool holds the process open until the workers are prepared (they unref then).
    for (const w of this.standing()) if (w.state === 'booting') w.worker.ref();
    return this.settled();
  }

  stats(): StandbyStats {
    let ready = 0;
    let booting = 0;
    for (const list of this.byShape.values()) {
      for (const w of list) {
        if (w.state === 'ready') ready++;
        else if (w.state === 'booting') booting++;
      }
    }
    return { size: this.closed ? 0 : this.size, shapes: [...this.shapes.keys()], ready, booting, ...this.counters };
  }

  /** The workers standing by (diagnostics and tests). */
  standing(): readonly StandbyWorker[] {
    return [...this.byShape.values()].flat();
  }

  /** Thread ids of the workers standing by (diagnostics and tests). */
  threadIds(): number[] {
    return [...this.byShape.values()].flat().map((w) => w.worker.threadId);
  }

  /** Terminate every standby worker and stop refilling. */
  async destroy(): Promise<void> {
    this.closed = true;
    const all = [...this.byShape.values()].flat();
    this.byShape.clear();
    this.shapes.clear();
    await Promise.all(
      all.map(async (w) => {
        const exited = new Promise<void>((r) => (w.state === 'dead' ? r() : w.worker.once('exit', () => r())));
        w.discard();
        await exited;
      }),
    );
    this.wake();
  }

  // ---- internals ----

  private use(shape: WorkerShape): string {
    const key = shapeKey(shape);
    this.shapes.delete(key);
    this.shapes.set(key, shape);
    while (this.shapes.size > this.maxShapes) {
      const oldest = this.shapes.keys().next().value!;
      this.shapes.delete(oldest);
      for (const w of this.byShape.get(oldest) ?? []) w.discard();
      this.byShape.delete(oldest);
    }
    return key;
  }

  private scheduleRefill(): void {
    if (this.refillQueued || !this.enabled) return;
    this.refillQueued = true;
    // After the start's own continuation (create() resolving to its caller) has run.
    setImmediate(() => {
      this.refillQueued = false;
      if (this.starting === 0) this.fill();
    });
  }

  private fill(): void {
    if (!this.enabled) return;
    for (const [key, shape] of this.shapes) {
      let list = this.byShape.get(key);
      if (!list) this.byShape.set(key, (list = []));
      while (list.length < this.size) list.push(this.spawn(shape));
    }
  }

  private spawn(shape: WorkerShape): StandbyWorker {
    this.counters.spawned++;
    const worker = this.hostFor(shape).spawn(shape, { prep: prepFor(shape) }, 'enclave:standby');
    return new StandbyWorker(shape, worker, (why, w) => {
      if (why === 'dead') {
        this.counters.discarded++;
        const list = this.byShape.get(shapeKey(w.shape));
        const i = list?.indexOf(w) ?? -1;
        if (i >= 0) list!.splice(i, 1);
      }
      this.wake();
    });
  }

  private settled(): Promise<void> {
    if (this.stats().booting === 0) return Promise.resolve();
    return new Promise<void>((r) => this.waiters.push(r)).then(() => this.settled());
  }

  private wake(): void {
    const w = this.waiters.splice(0);
    for (const r of w) r();
  }
}
