/** The emulated backend: each enclave instance is a worker thread (own V8 isolate) with SES inside. */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import { admissionOf } from '@enclave-edge/bundle/admission';
import type { EnclaveBackend, EnclaveCreateOptions } from '../contract.js';
import { EmulatedEnclave } from './threads/enclave.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './restart-policy.js';
import { StandbyPool, type StandbyStats } from './threads/standby-pool.js';
import { shapeOf, type WorkerShape } from './threads/worker-shape.js';

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
}

export class EmulatedBackend implements EnclaveBackend {
  readonly kind = 'emulated';

  /** The standby pool (diagnostics and tests; prewarm/standbyStats/destroy are the everyday API). */
  readonly pool: StandbyPool;

  constructor(private readonly opts: EmulatedBackendOptions = {}) {
    const n = opts.standby ?? 1;
    if (!Number.isInteger(n) || n < 0 || n > 16) throw new EnclaveEdgeError('BAD_PARAMETERS', `standby must be an integer from 0 to 16 (got ${String(n)})`);
    this.pool = new StandbyPool(n);
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
    if (options.inspect && !m.debug) {
      options.log?.('warn', m.name, 'inspect ignored: only debug TAs can be inspected');
    }
    const enclave = new EmulatedEnclave(bundle, options, {
      kind: this.kind,
      restart: { ...DEFAULT_RESTART_POLICY, ...this.opts.restart },
      startAllowanceMs: this.opts.startAllowanceMs ?? 5000,
      pool: this.pool,
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
