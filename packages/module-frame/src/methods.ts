/**
 * Direct-method dispatch, the same for every module: look the handler up by name (a Map: a
 * method name is outside data), check the payload and the result against the method size
 * limit, and turn every error into `{error:{code,message}}` with the taxonomy's status.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { LIMITS, checkPayloadSize, methodError, methodOk, type MethodResult } from '@enclave-edge/protocol';

export type MethodHandler = (payload: unknown) => Promise<unknown>;
export type MethodTable = Map<string, MethodHandler>;

/** Room left in a method response for its envelope. */
const RESULT_LIMIT = LIMITS.maxMethodPayloadBytes - 64;

export async function dispatchMethod(methods: MethodTable, name: string, payload: unknown, guard?: (name: string) => void): Promise<MethodResult> {
  try {
    const handler = methods.get(name);
    if (!handler) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no method "${name}"`);
    guard?.(name);
    checkPayloadSize(payload, `${name} payload`);
    const result = await handler(payload);
    checkPayloadSize(result, `${name} result`, RESULT_LIMIT);
    return methodOk(result);
  } catch (err) {
    return methodError(err);
  }
}
