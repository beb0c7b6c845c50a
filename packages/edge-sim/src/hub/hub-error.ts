/** Errors shaped like IoT Hub's service API errors (numeric errorCode + HTTP status). */
import { randomUUID } from 'node:crypto';
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

  /**
   * The JSON body IoT Hub returns for this error. Both of its shapes at once: `errorCode`/`message`
   * (methods, newer APIs) and `Message: "ErrorCode:<Name>;<text>"` + `ExceptionMessage` (registry
   * and twins), which is what azure-iothub parses into the error it throws.
   */
  body(): Record<string, unknown> {
    const trackingId = randomUUID().replace(/-/g, '');
    const timestampUtc = new Date().toISOString();
    return {
      Message: `ErrorCode:${hubErrorName(this.hubErrorCode)};${this.message.replace(/;/g, ',')}`,
      ExceptionMessage: `Tracking ID:${trackingId}-TimeStamp:${timestampUtc}`,
      errorCode: this.hubErrorCode,
      trackingId,
      message: this.message,
      info: {},
      timestampUtc,
    };
  }
}

/** IoT Hub's error names for the numeric codes the simulator answers with. */
const ERROR_NAMES = new Map<number, string>([
  [400004, 'ArgumentInvalid'],
  [400027, 'ConnectionForcefullyClosedOnNewConnection'],
  [401002, 'IotHubUnauthorizedAccess'],
  [404000, 'NotFound'],
  [404001, 'DeviceNotFound'],
  [404010, 'ModuleNotFound'],
  [404103, 'DeviceNotOnline'],
  [409001, 'DeviceAlreadyExists'],
  [409301, 'ConfigurationAlreadyExists'],
  [412002, 'PreconditionFailed'],
  [413001, 'MessageTooLarge'],
  [504101, 'GatewayTimeout'],
]);

export function hubErrorName(code: number): string {
  return ERROR_NAMES.get(code) ?? (code >= 500000 ? 'ServerError' : code >= 404000 && code < 405000 ? 'NotFound' : 'ArgumentInvalid');
}

export const deviceNotOnline = (target: string): HubError =>
  new HubError(404, 404103, `Timed out waiting for device to connect (${target} is not connected or has not subscribed to methods).`, 'ITEM_NOT_FOUND');
export const gatewayTimeout = (target: string, secs: number): HubError =>
  new HubError(504, 504101, `Timed out waiting for the response from device (${target}, ${secs} s).`, 'TIMEOUT');
export const moduleNotFound = (target: string): HubError => new HubError(404, 404010, `Module ${target} not found.`, 'ITEM_NOT_FOUND');
/**
 * A method call whose module disconnected before it answered: ended at once rather than at
 * the response timeout. (IoT Hub documents no code for this case; 503 says "retry".)
 */
export const moduleDisconnected = (target: string): HubError =>
  new HubError(503, 503101, `${target} disconnected before it answered the method call.`, 'UNAVAILABLE');
