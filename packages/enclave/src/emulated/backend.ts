/** The emulated backend: each enclave instance is a worker thread (own V8 isolate) with SES inside. */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import type { EnclaveBackend, EnclaveCreateOptions } from '../backend.js';
import { EmulatedEnclave } from './enclave.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './restart-policy.js';

export interface EmulatedBackendOptions {
  /** The shared-memory fast path for fastInvoke (default true). */
  fastPath?: boolean;
  /** Crash-loop handling (default: 5 crashes per 60 s, backoff from 50 ms doubling to 5 s). */
  restart?: Partial<RestartPolicy>;
  /** Time an instance may take to start beyond the TA's callTimeoutMs (default 5000 ms): load + onCreate past it → TIMEOUT. */
  startAllowanceMs?: number;
}

export class EmulatedBackend implements EnclaveBackend {
  readonly kind = 'emulated';

  constructor(private readonly opts: EmulatedBackendOptions = {}) {}

  async create(bundle: VerifiedBundle, options: EnclaveCreateOptions = {}): Promise<EmulatedEnclave> {
    const m = bundle?.manifest;
    if (!m || !(bundle.code instanceof Uint8Array)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'create() needs a verified bundle with a manifest and code');
    if (m.runtime !== 'js' && m.runtime !== 'wasm') throw new EnclaveEdgeError('NOT_SUPPORTED', `TA runtime "${String(m.runtime)}" is not supported by the emulated backend`);
    if (m.debug && options.allowDebug !== true) {
      throw new EnclaveEdgeError('POLICY_VIOLATION', `TA "${m.name}" is a debug build and this runtime refuses debug TAs (allowDebug is off, the production default)`);
    }
    if (options.inspect && !m.debug) {
      options.log?.('warn', m.name, 'inspect ignored: only debug TAs can be inspected');
    }
    const enclave = new EmulatedEnclave(bundle, options, {
      kind: this.kind,
      fastPath: this.opts.fastPath ?? true,
      restart: { ...DEFAULT_RESTART_POLICY, ...this.opts.restart },
      startAllowanceMs: this.opts.startAllowanceMs ?? 5000,
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
