/**
 * The emulated backend: each TA runs in an OS process of its own (its fault domain, memory
 * bounded by the OS), each enclave instance a worker thread (own V8 isolate) with SES inside.
 * `isolation: 'thread'` keeps the workers in this process (tests, one-shot tools).
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import { admissionOf } from '@enclave-edge/bundle/admission';
import { inspectRefusal } from '../inspect.js';
import type { EnclaveBackend, EnclaveCreateOptions } from '../contract.js';
import { EmulatedEnclave, InstanceBudget } from './threads/enclave.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './restart-policy.js';
import { StandbyPool, type StandbyStats } from './threads/standby-pool.js';
import { shapeOf, THREAD_HOST, type WorkerShape } from './threads/worker-shape.js';
import { limitsForProcess, processIsolation, type TaUidRange } from './process/isolation.js';
import type { ProcessIsolation } from './process/ta-process.js';
import { TaProcess } from './process/ta-process.js';

/** The shape most TAs have (the toolchain's default limits): the pool prepares it from the start. */
export const DEFAULT_STANDBY_SHAPE: WorkerShape = shapeOf({ runtime: 'js', debug: false, limits: { heapMb: 64, stackKb: 1024, maxConcurrency: 4, callTimeoutMs: 5000 } });

export interface EmulatedBackendOptions {
  /** Crash-loop handling (default: 5 crashes per 60 s, backoff from 50 ms doubling to 5 s). */
  restart?: Partial<RestartPolicy>;
  /** Time an instance may take to start beyond the TA's callTimeoutMs (default 5000 ms): load + onCreate past it → TIMEOUT. */
  startAllowanceMs?: number;
  /**
   * Standby workers kept per limits shape, spawned and locked down ahead of time with no TA in
   * them; each serves one instance only (default 1; 0 disables). See docs/enclave-backends.md.
   */
  standby?: number;
  /**
   * `process` (default): each TA in an OS process of its own, bounded by the OS; `thread`: the
   * TA's workers run in this process (a V8 fatal error in one then ends every TA).
   */
  isolation?: 'process' | 'thread';
  /** Process isolation as root: each TA process under its own uid/gid from this range. */
  taUids?: TaUidRange;
  /** Enclave instances of all TAs together (default 64): beyond it, openSession and starts answer BUSY. */
  maxInstancesTotal?: number;
}

/** Instances one TA may have at once when its manifest names no limit. */
export const DEFAULT_MAX_INSTANCES = 16;
/** Instances of all TAs together when the backend is not told otherwise. */
export const DEFAULT_MAX_INSTANCES_TOTAL = 64;

export class EmulatedBackend implements EnclaveBackend {
  readonly kind = 'emulated';

  /** The standby pool (diagnostics and tests; prewarm/standbyStats/destroy are the everyday API). */
  readonly pool: StandbyPool;
  readonly isolation: 'process' | 'thread';
  private readonly processes: ProcessIsolation | undefined;
  private readonly total: InstanceBudget;

  constructor(private readonly opts: EmulatedBackendOptions = {}) {
    const n = opts.standby ?? 1;
    if (!Number.isInteger(n) || n < 0 || n > 16) throw new EnclaveEdgeError('BAD_PARAMETERS', `standby must be an integer from 0 to 16 (got ${String(n)})`);
    const isolation = opts.isolation ?? 'process';
    if (isolation !== 'process' && isolation !== 'thread') throw new EnclaveEdgeError('BAD_PARAMETERS', `isolation must be "process" or "thread" (got ${String(isolation)})`);
    if (isolation === 'process') {
      this.processes = processIsolation({ ...(opts.taUids ? { taUids: opts.taUids } : {}), maxInstancesOf: (m) => m.limits.maxInstances ?? DEFAULT_MAX_INSTANCES });
    } else if (opts.taUids) throw new EnclaveEdgeError('BAD_PARAMETERS', 'taUids needs isolation "process"');
    this.isolation = isolation;
    const total = opts.maxInstancesTotal ?? DEFAULT_MAX_INSTANCES_TOTAL;
    if (!Number.isInteger(total) || total < 1) throw new EnclaveEdgeError('BAD_PARAMETERS', `maxInstancesTotal must be a positive integer (got ${String(total)})`);
    this.total = new InstanceBudget(total);
    // A standby in process isolation is a fresh process of its own, with one prepared worker in it.
    this.pool = new StandbyPool(n, undefined, isolation === 'process' ? (shape) => new TaProcess(limitsForProcess(shape.runtime, shape.heapMb, 2), true) : () => THREAD_HOST);
    // Ahead of time: a create() right after construction then adopts this worker while it prepares.
    if (n > 0) void this.pool.prewarm(DEFAULT_STANDBY_SHAPE);
  }

  /** Fill the standby pool (optionally for TAs with this manifest's limits too) and wait until its workers are prepared. */
  prewarm(limitsOf?: Parameters<typeof shapeOf>[0]): Promise<void> {
    return this.pool.prewarm(limitsOf ? shapeOf(limitsOf) : DEFAULT_STANDBY_SHAPE);
  }

  standbyStats(): StandbyStats & { threadIds: number[] } {
    return { ...this.pool.stats(), threadIds: this.pool.threadIds() };
  }

  close(): Promise<void> {
    return this.destroy();
  }

  /** Terminate the standby workers and stop refilling; enclaves already created are not touched (destroy them yourself). Later creates spawn fresh. */
  destroy(): Promise<void> {
    return this.pool.destroy();
  }

  async create(bundle: VerifiedBundle, options: EnclaveCreateOptions = {}): Promise<EmulatedEnclave> {
    const m = bundle?.manifest;
    if (!m || !(bundle.code instanceof Uint8Array)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'create() needs a verified bundle with a manifest and code');
    if (m.runtime !== 'js' && m.runtime !== 'wasm') throw new EnclaveEdgeError('NOT_SUPPORTED', `TA runtime "${String(m.runtime)}" is not supported by the emulated backend`);
    // Whether it may run is admission's decision, made before: run only what admit() let through for this backend.
    if (admissionOf(bundle) !== this.kind) {
      throw new EnclaveEdgeError('POLICY_VIOLATION', `TA "${m.name}" was not admitted for the ${this.kind} backend: run bundles through admit() (@enclave-edge/bundle) first`);
    }
    const noInspect = options.inspect ? inspectRefusal(m) : undefined;
    if (noInspect) throw new EnclaveEdgeError('POLICY_VIOLATION', `cannot inspect: ${noInspect}`);
    const enclave = new EmulatedEnclave(bundle, options, {
      kind: this.kind,
      restart: { ...DEFAULT_RESTART_POLICY, ...this.opts.restart },
      startAllowanceMs: this.opts.startAllowanceMs ?? 5000,
      pool: this.pool,
      defaultMaxInstances: DEFAULT_MAX_INSTANCES,
      total: this.total,
      ...(this.processes ? { processes: this.processes } : {}),
    });
    try {
      await enclave.start();
    } catch (err) {
      await enclave.destroy().catch(() => undefined);
      throw err;
    }
    return enclave;
  }
}
