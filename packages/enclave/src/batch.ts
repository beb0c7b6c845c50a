import type { Value } from '@enclave-edge/ta-sdk';
import type { BatchItemOutcome, Enclave, InvokeOptions } from './contract.js';

/** A batch as separate invoke() calls, all started at once: for enclaves (or calls) without a batch path of their own. */
export function invokeEach(e: Pick<Enclave, 'invoke'>, command: string, params: Array<Value | undefined>, opts?: InvokeOptions): Promise<BatchItemOutcome[]> {
  return Promise.all(
    params.map((p) =>
      e.invoke(undefined, command, p, opts).then(
        (value): BatchItemOutcome => ({ ok: true, value }),
        (error: unknown): BatchItemOutcome => ({ ok: false, error: error instanceof Error ? error : new Error(String(error)) }),
      ),
    ),
  );
}

/** The enclave's own batch path when it has one, else one invoke per item: each item answered as invoke() answers it. */
export function invokeBatchOf(e: Enclave, command: string, params: Array<Value | undefined>, opts?: InvokeOptions): Promise<BatchItemOutcome[]> {
  return e.invokeBatch ? e.invokeBatch(command, params, opts) : invokeEach(e, command, params, opts);
}
