/**
 * taRequest (host → ta-runtime over edgeHub) and taResponse (back). The message's
 * `messageId` is the request id; the response's `correlationId` is that same id.
 * Bodies are JSON, `params`/`result` use the Value codec.
 */
import { z } from 'zod';
import { ERROR_CODES, EnclaveEdgeError, type ErrorBody } from '@enclave-edge/errors';
import { commandName, requestId, sessionId, taName } from './names.js';
import type { JsonValue } from './value-codec.js';
import { LIMITS } from './limits.js';
import { parseJsonBounded, parseWith } from './validate.js';

export const TA_REQUEST_INPUT = 'taRequest';
export const TA_RESPONSE_OUTPUT = 'taResponse';
/**
 * `type` of the notice ta-runtime sends on its taResponse output when an instance becomes
 * ready: callers' requests still waiting went to an instance that is gone.
 */
export const RUNTIME_READY_TYPE = 'runtime.ready';
export const PROTOCOL_VERSION = 1;

/**
 * `params`, `result` and `claims` values. They reach these schemas out of JSON.parse (JSON by
 * construction) or out of encodeValue (which refuses anything else), and the receiver decodes
 * them with decodeValue, which checks their content (depth, finite numbers, $binary) in the
 * same walk that builds the value it uses. These schemas check the envelope only, so no value
 * is walked twice on its way through one process.
 */
const wireValue = z.custom<JsonValue>((x) => x !== undefined, 'must be a JSON value');

const base = {
  v: z.literal(PROTOCOL_VERSION).optional(),
  id: requestId,
  /** Absolute deadline, epoch milliseconds; the runtime does not start work past it. */
  deadline: z.number().int().positive(),
};

export const taRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ ...base, op: z.literal('invoke'), ta: taName, command: commandName, params: wireValue.optional(), sessionId: sessionId.optional() }),
  /**
   * Several invocations of one command in one message (pipelines batch the readings already
   * waiting). Answered by one taResponse with `items`: one result or error per item, in order.
   */
  z.strictObject({
    ...base, op: z.literal('invokeBatch'), ta: taName, command: commandName,
    items: z.array(z.strictObject({ params: wireValue.optional() })).min(1).max(LIMITS.maxBatchItems),
  }),
  z.strictObject({ ...base, op: z.literal('openSession'), ta: taName, params: wireValue.optional() }),
  z.strictObject({ ...base, op: z.literal('closeSession'), ta: taName, sessionId }),
  z.strictObject({ ...base, op: z.literal('listTAs') }),
  z.strictObject({ ...base, op: z.literal('attest'), ta: taName, nonce: z.string().min(8).max(128), claims: z.record(z.string(), wireValue).optional() }),
]);
export type TARequest = z.output<typeof taRequestSchema>;
export type TARequestOp = TARequest['op'];

export const errorBodySchema = z.object({
  code: z.enum(ERROR_CODES as [string, ...string[]]),
  message: z.string().max(4096),
  detail: z.record(z.string(), z.unknown()).optional(),
});

/** One item's outcome in the answer to an invokeBatch request. */
export const batchItemResultSchema = z.union([
  z.strictObject({ ok: z.literal(true), result: wireValue.optional() }),
  z.strictObject({ ok: z.literal(false), error: errorBodySchema }),
]);
export type BatchItemResult = z.output<typeof batchItemResultSchema>;

export const taResponseSchema = z.union([
  z.strictObject({ v: base.v, id: requestId, ok: z.literal(true), result: wireValue.optional() }),
  z.strictObject({ v: base.v, id: requestId, ok: z.literal(false), error: errorBodySchema }),
  /** The answer to invokeBatch: the request ran; each item succeeded or failed on its own. */
  z.strictObject({ v: base.v, id: requestId, ok: z.literal(true), items: z.array(batchItemResultSchema).min(1).max(LIMITS.maxBatchItems) }),
]);
export type TAResponse = z.output<typeof taResponseSchema>;

/** Parse a message body arriving on input taRequest (bytes or text). Throws EnclaveEdgeError. */
export function parseTARequest(body: string | Uint8Array): TARequest {
  return checkTARequest(parseJsonBounded(body, LIMITS.maxMessageBytes, 'taRequest message'));
}

export function parseTAResponse(body: string | Uint8Array): TAResponse {
  return parseWith(taResponseSchema, parseJsonBounded(body, LIMITS.maxMessageBytes, 'taResponse message'), 'taResponse', 'BAD_FORMAT');
}

/** taRequestSchema's verdict on a parsed body or a request about to be sent. */
export function checkTARequest(input: unknown, what = 'taRequest'): TARequest {
  return parseWith(taRequestSchema, input, what);
}

/** Serialise a message body, refusing anything over the edgeHub message limit. */
export function serializeMessage(body: TARequest | TAResponse): string {
  const text = JSON.stringify({ v: PROTOCOL_VERSION, ...body });
  if (Buffer.byteLength(text) > LIMITS.maxMessageBytes) {
    throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `message is ${Buffer.byteLength(text)} bytes; the limit is ${LIMITS.maxMessageBytes}`);
  }
  return text;
}

export function okResponse(id: string, result: JsonValue | undefined): TAResponse {
  return result === undefined ? { id, ok: true } : { id, ok: true, result };
}

export function batchResponse(id: string, items: BatchItemResult[]): TAResponse {
  return { id, ok: true, items };
}

export function errorResponse(id: string, err: EnclaveEdgeError): TAResponse {
  return { id, ok: false, error: err.toJSON() as ErrorBody & { code: string } };
}

/** Best-effort id of a body that failed validation, so the sender still gets an answer. */
export function salvageRequestId(body: string | Uint8Array): string | undefined {
  try {
    const parsed = parseJsonBounded(body, LIMITS.maxMessageBytes, 'message') as { id?: unknown };
    const r = requestId.safeParse(parsed?.id);
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
