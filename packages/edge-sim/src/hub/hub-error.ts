/** Errors shaped like IoT Hub's service API errors (numeric errorCode + HTTP status). */
import { EnclaveEdgeError, type ErrorCode } from '@enclave-edge/errors';

export class HubError extends EnclaveEdgeError {
  constructor(
    readonly httpStatus: number,
    readonly hubErrorCode: number,
    message: string,
    code: ErrorCode,
  ) {
    super(code, message, { detail: { httpStatus, errorCode: hubErrorCode } });
  }

  /** The JSON body IoT Hub returns for this error. */
  body(): Record<string, unknown> {
    return {
      errorCode: this.hubErrorCode,
      trackingId: Math.random().toString(16).slice(2),
      message: this.message,
      info: {},
      timestampUtc: new Date().toISOString(),
    };
  }
}

export const deviceNotOnline = (target: string): HubError =>
  new HubError(404, 404103, `Timed out waiting for device to connect (${target} is not connected or has not subscribed to methods).`, 'ITEM_NOT_FOUND');
export const gatewayTimeout = (target: string, secs: number): HubError =>
  new HubError(504, 504101, `Timed out waiting for the response from device (${target}, ${secs} s).`, 'TIMEOUT');
export const moduleNotFound = (target: string): HubError => new HubError(404, 404010, `Module ${target} not found.`, 'ITEM_NOT_FOUND');
