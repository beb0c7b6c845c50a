/** The direct-method answer: a status code and a JSON payload; errors as `{error:{code,message}}`. */
import { toEnclaveEdgeError, type ErrorBody } from '@enclave-edge/errors';

export interface MethodResult {
  status: number;
  payload: unknown;
}

export function methodOk(payload: unknown): MethodResult {
  return { status: 200, payload: payload ?? {} };
}

export function methodError(err: unknown): MethodResult {
  const e = toEnclaveEdgeError(err);
  const body: ErrorBody = { code: e.code, message: e.message.slice(0, 1024) };
  return { status: e.status, payload: { error: body } };
}
