/** The worker's side of service calls to the enclave host (seal, storage, attest, host calls). */
import type { Value } from '@enclave-edge/ta-sdk';
import type { FromWorker, HostPort, SvcOp, WireError } from '../wire/protocol.cjs';
import { checkBinaryMemory } from './memory-watch.cjs';
import { SVC_MAX_BYTES_IN_FLIGHT, SVC_MAX_IN_FLIGHT, SvcBudget, wireBytes } from '../wire/service-quota.cjs';

export function codedError(code: string, message: string): Error {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}

/** Refusals the host answered a service call with (e.g. the SVN rule of sealed data), with the code the host gave. */
const hostRefusals = new WeakMap<object, string>();

/** The host's code of a refusal a TA rethrew (the TA did not choose it, so it forges nothing; changing `code` changes nothing). */
export function hostRefusalCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? hostRefusals.get(err) : undefined;
}

export class ServiceRpc {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: Value | undefined) => void; reject: (e: Error) => void; bytes: number }>();
  private readonly budget = new SvcBudget();

  /** Run before each service call goes out (batches send the answers they hold: the call may take long). */
  readonly beforeCall = new Set<() => void>();

  constructor(private readonly port: HostPort) {}

  call(op: SvcOp, args: Value[]): Promise<Value | undefined> {
    checkBinaryMemory();
    for (const f of this.beforeCall) f();
    const bytes = wireBytes(args);
    if (!this.budget.admits(bytes)) {
      return Promise.reject(
        codedError('BUSY', `${op}: too many service calls in flight (at most ${SVC_MAX_IN_FLIGHT} and ${SVC_MAX_BYTES_IN_FLIGHT >> 20} MiB of arguments per TA instance); await earlier calls before issuing more`),
      );
    }
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, bytes });
      this.budget.take(bytes);
      try {
        this.port.postMessage({ t: 'svc', id, op, args } satisfies FromWorker);
      } catch (err) {
        this.pending.delete(id);
        this.budget.release(bytes);
        reject(codedError('BAD_PARAMETERS', `${op}: arguments cannot cross the enclave boundary (${(err as Error).message})`));
      }
    });
  }

  settle(id: number, ok: boolean, value: Value | undefined, error: WireError | undefined): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.budget.release(p.bytes);
    if (ok) p.resolve(value);
    else {
      const e = codedError(error?.code ?? 'INTERNAL', error?.message ?? 'service call failed');
      hostRefusals.set(e, error?.code ?? 'INTERNAL');
      p.reject(e);
    }
  }
}
