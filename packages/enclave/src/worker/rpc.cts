/** The worker's side of service calls to the enclave host (seal, storage, attest, host calls). */
import type { MessagePort } from 'node:worker_threads';
import type { Value } from '@enclave-edge/ta-sdk';
import type { FromWorker, SvcOp, WireError } from '../protocol.cjs';

export function codedError(code: string, message: string): Error {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}

export class ServiceRpc {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: Value | undefined) => void; reject: (e: Error) => void }>();

  constructor(private readonly port: MessagePort) {}

  call(op: SvcOp, args: Value[]): Promise<Value | undefined> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.port.postMessage({ t: 'svc', id, op, args } satisfies FromWorker);
      } catch (err) {
        this.pending.delete(id);
        reject(codedError('BAD_PARAMETERS', `${op}: arguments cannot cross the enclave boundary (${(err as Error).message})`));
      }
    });
  }

  settle(id: number, ok: boolean, value: Value | undefined, error: WireError | undefined): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (ok) p.resolve(value);
    else p.reject(codedError(error?.code ?? 'INTERNAL', error?.message ?? 'service call failed'));
  }
}
