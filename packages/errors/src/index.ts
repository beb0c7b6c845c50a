/**
 * The one error taxonomy shared by runtime, wire protocol and CLI
 * (in the spirit of TEEC_ERROR_* and oe_result_t). Every failure that crosses a
 * package boundary is an EnclaveEdgeError with one of these codes.
 */
export const ErrorCodes = {
  BAD_PARAMETERS: { status: 400, summary: 'the request or its parameters are invalid' },
  BAD_FORMAT: { status: 400, summary: 'the input is not in the expected format' },
  ITEM_NOT_FOUND: { status: 404, summary: 'the named item does not exist' },
  ACCESS_DENIED: { status: 403, summary: 'the caller may not do this' },
  CONFLICT: { status: 409, summary: 'the item exists or is in a state that forbids this' },
  BUSY: { status: 503, summary: 'too many calls are waiting; try again later' },
  UNAVAILABLE: { status: 503, summary: 'the service is not reachable right now' },
  TIMEOUT: { status: 504, summary: 'the call did not finish before its deadline' },
  TA_ERROR: { status: 500, summary: 'the trusted application threw an error' },
  TA_CRASHED: { status: 500, summary: 'the trusted application crashed' },
  TA_FAILED: { status: 503, summary: 'the trusted application is marked failed after repeated crashes' },
  OUT_OF_MEMORY: { status: 500, summary: 'the enclave ran out of memory' },
  PAYLOAD_TOO_LARGE: { status: 413, summary: 'the payload exceeds the size limit' },
  QUOTA_EXCEEDED: { status: 413, summary: 'the storage quota is exhausted' },
  /** The device's storage itself failed (disk full, read-only, I/O error), not the caller's quota: retry later. */
  STORAGE_UNAVAILABLE: { status: 503, summary: 'the storage cannot be written right now (disk full, read-only or failing)' },
  MEASUREMENT_MISMATCH: { status: 400, summary: 'the measurement does not match' },
  SIGNATURE_INVALID: { status: 400, summary: 'the signature does not verify' },
  POLICY_VIOLATION: { status: 403, summary: 'the policy forbids this' },
  SEAL_INTEGRITY: { status: 400, summary: 'sealed data failed its integrity check' },
  ROLLBACK_DETECTED: { status: 409, summary: 'sealed state is older than the device\'s monotonic counter records (an older copy was restored)' },
  ATTESTATION_INVALID: { status: 400, summary: 'the attestation evidence is not acceptable' },
  NOT_SUPPORTED: { status: 501, summary: 'this operation is not supported here' },
  CONFIG_INVALID: { status: 400, summary: 'the configuration is invalid' },
  INTERNAL: { status: 500, summary: 'an internal error occurred' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export const ERROR_CODES = Object.keys(ErrorCodes) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ErrorCodes, value);
}

/** The JSON shape of an error on the wire: `{ error: { code, message } }`. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** Optional structured detail (e.g. the field that failed). Never secrets. */
  detail?: Record<string, unknown>;
}

export class EnclaveEdgeError extends Error {
  readonly code: ErrorCode;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super(message ?? ErrorCodes[code].summary, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EnclaveEdgeError';
    this.code = code;
    this.detail = options?.detail;
  }

  /** HTTP / direct-method status for this error. */
  get status(): number {
    return ErrorCodes[this.code].status;
  }

  toJSON(): ErrorBody {
    return this.detail === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, detail: this.detail };
  }

  /** Rebuild an error received on the wire; unknown codes become INTERNAL. */
  static fromJSON(body: unknown): EnclaveEdgeError {
    if (body && typeof body === 'object') {
      const b = body as Partial<ErrorBody>;
      const code = isErrorCode(b.code) ? b.code : 'INTERNAL';
      const message = typeof b.message === 'string' ? b.message : ErrorCodes[code].summary;
      const detail = b.detail && typeof b.detail === 'object' ? b.detail : undefined;
      return new EnclaveEdgeError(code, message, detail ? { detail } : undefined);
    }
    return new EnclaveEdgeError('INTERNAL', 'malformed error body');
  }
}

export function isEnclaveEdgeError(err: unknown, code?: ErrorCode): err is EnclaveEdgeError {
  return err instanceof EnclaveEdgeError && (code === undefined || err.code === code);
}

/**
 * Convert anything thrown into an EnclaveEdgeError without leaking stack traces.
 * Structural check too, so errors from another copy of this package still count.
 */
export function toEnclaveEdgeError(err: unknown, fallback: ErrorCode = 'INTERNAL'): EnclaveEdgeError {
  if (err instanceof EnclaveEdgeError) return err;
  if (err && typeof err === 'object' && isErrorCode((err as { code?: unknown }).code)) {
    return EnclaveEdgeError.fromJSON(err);
  }
  const message = err instanceof Error ? err.message : typeof err === 'string' ? err : ErrorCodes[fallback].summary;
  return new EnclaveEdgeError(fallback, message, { cause: err });
}

export function statusOf(code: ErrorCode): number {
  return ErrorCodes[code].status;
}

/** File-system error codes that mean the device's storage failed, and how to say it. */
const STORAGE_FAULTS: ReadonlyMap<string, string> = new Map([
  ['ENOSPC', 'the disk is full'],
  ['EDQUOT', 'the disk quota is exhausted'],
  ['EROFS', 'the file system is read-only'],
  ['EACCES', 'the storage folder is not writable'],
  ['EPERM', 'the storage folder is not writable'],
  ['EIO', 'the disk reported an I/O error'],
]);

/**
 * A file-system failure of `what` (e.g. `storage of TA "x"`) as STORAGE_UNAVAILABLE, named by
 * its cause and without the host path the raw error carries; anything else is returned as is.
 */
export function storageFault(err: unknown, what: string): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const cause = typeof code === 'string' ? STORAGE_FAULTS.get(code) : undefined;
  if (cause === undefined || err instanceof EnclaveEdgeError) return err;
  return new EnclaveEdgeError('STORAGE_UNAVAILABLE', `${what} is unavailable: ${cause} (${code})`, { detail: { errno: code } });
}
