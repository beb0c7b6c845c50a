/** HTTP failures of IoT Hub (or the simulator) → EnclaveEdgeError with the hub's errorCode kept. */
import { EnclaveEdgeError, type ErrorCode } from '@enclave-edge/errors';

export function codeForStatus(status: number): ErrorCode {
  if (status === 400) return 'BAD_PARAMETERS';
  if (status === 401 || status === 403) return 'ACCESS_DENIED';
  if (status === 404) return 'ITEM_NOT_FOUND';
  if (status === 409 || status === 412) return 'CONFLICT';
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  if (status === 429) return 'BUSY';
  if (status === 504) return 'TIMEOUT';
  if (status >= 500) return 'UNAVAILABLE';
  return 'INTERNAL';
}

/** IoT Hub error bodies come flat (`{errorCode, message}`) or wrapped (`{Message: "<json>"}`). */
export function hubErrorFromResponse(status: number, bodyText: string, what: string): EnclaveEdgeError {
  let errorCode: unknown;
  let message: string | undefined;
  try {
    let body = JSON.parse(bodyText) as Record<string, unknown>;
    if (typeof body.Message === 'string' && !body.message) {
      try {
        body = JSON.parse(body.Message.replace(/^ErrorCode:[^;]*;/, '')) as Record<string, unknown>;
      } catch {
        body = { message: body.Message };
      }
    }
    errorCode = body.errorCode ?? body.ErrorCode;
    message = typeof body.message === 'string' ? body.message : typeof body.Message === 'string' ? body.Message : undefined;
  } catch {
    message = bodyText.slice(0, 200) || undefined;
  }
  return new EnclaveEdgeError(codeForStatus(status), `${what}: HTTP ${status}${errorCode !== undefined ? ` (${String(errorCode)})` : ''}${message ? `: ${message}` : ''}`, {
    detail: { httpStatus: status, ...(errorCode !== undefined ? { errorCode } : {}) },
  });
}
