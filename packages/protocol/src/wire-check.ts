/**
 * Hand-written checks for taRequest / taResponse on the hot path. zod's recursive JSON schema
 * costs tens of µs per message; these checks only ever ACCEPT what the zod schemas accept
 * (they are equal or stricter, property-tested against them). Anything they do not accept goes
 * to zod, which decides and words the error, so strictness and messages are unchanged.
 */
import { LIMITS } from './limits.js';
import { COMMAND_NAME, TA_NAME, WIRE_ID } from './names.js';
import type { TARequest, TAResponse } from './ta-messages.js';

const hasOwn = Object.prototype.hasOwnProperty;

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** A JSON value (finite numbers, plain objects, arrays), nested no deeper than the wire limit. */
export function isJsonValue(x: unknown, depth = 0): boolean {
  if (depth > LIMITS.maxValueDepth) return false;
  switch (typeof x) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(x);
    case 'object': {
      if (x === null) return true;
      if (Array.isArray(x)) {
        for (let i = 0; i < x.length; i++) if (!(i in x) || !isJsonValue(x[i], depth + 1)) return false;
        return true;
      }
      if (!isPlainObject(x)) return false;
      for (const k in x) if (hasOwn.call(x, k) && !isJsonValue(x[k], depth + 1)) return false;
      // Symbol or non-enumerable keys: let zod judge.
      return Object.getOwnPropertySymbols(x).length === 0 && Object.getOwnPropertyNames(x).length === Object.keys(x).length;
    }
    default:
      return false;
  }
}

/** Every own key of `o` is in `allowed` (strictObject), and `v`, when present, is the protocol version. */
function onlyKeys(o: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  for (const k of Object.keys(o)) if (!allowed.has(k)) return false;
  return !hasOwn.call(o, 'v') || o.v === 1;
}

const str = (x: unknown, re: RegExp): boolean => typeof x === 'string' && re.test(x);
const optional = (o: Record<string, unknown>, k: string, ok: (x: unknown) => boolean): boolean => !hasOwn.call(o, k) || ok(o[k]);

const REQUEST_KEYS: Record<string, ReadonlySet<string>> = {
  invoke: new Set(['v', 'id', 'deadline', 'op', 'ta', 'command', 'params', 'sessionId']),
  invokeBatch: new Set(['v', 'id', 'deadline', 'op', 'ta', 'command', 'items']),
  openSession: new Set(['v', 'id', 'deadline', 'op', 'ta', 'params']),
  closeSession: new Set(['v', 'id', 'deadline', 'op', 'ta', 'sessionId']),
  listTAs: new Set(['v', 'id', 'deadline', 'op']),
  attest: new Set(['v', 'id', 'deadline', 'op', 'ta', 'nonce', 'claims']),
};

/** A dense array of 1..maxBatchItems entries, each accepted by `item`. */
function isBatchItems(x: unknown, item: (i: unknown) => boolean): boolean {
  if (!Array.isArray(x) || x.length < 1 || x.length > LIMITS.maxBatchItems) return false;
  for (let i = 0; i < x.length; i++) if (!(i in x) || !item(x[i])) return false;
  return true;
}

const REQUEST_ITEM_KEYS: ReadonlySet<string> = new Set(['params']);
const OK_ITEM_KEYS: ReadonlySet<string> = new Set(['ok', 'result']);

function exactlyKeys(o: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  for (const k of Object.keys(o)) if (!allowed.has(k)) return false;
  return Object.getOwnPropertySymbols(o).length === 0;
}

/** An invokeBatch item: `{params?}` and nothing else. */
function isRequestItem(i: unknown): boolean {
  return isPlainObject(i) && exactlyKeys(i, REQUEST_ITEM_KEYS) && optional(i, 'params', (v) => isJsonValue(v));
}

/** A successful item of a batch answer (items that failed go through zod). */
function isOkItem(i: unknown): boolean {
  return isPlainObject(i) && i.ok === true && exactlyKeys(i, OK_ITEM_KEYS) && optional(i, 'result', (r) => isJsonValue(r));
}

/** True only if taRequestSchema accepts `x` unchanged. */
export function isWireTARequest(x: unknown): x is TARequest {
  if (!isPlainObject(x)) return false;
  const op = x.op;
  if (typeof op !== 'string' || !hasOwn.call(REQUEST_KEYS, op)) return false;
  if (!onlyKeys(x, REQUEST_KEYS[op]!)) return false;
  if (!str(x.id, WIRE_ID) || !Number.isSafeInteger(x.deadline) || (x.deadline as number) <= 0) return false;
  const json = (v: unknown) => isJsonValue(v);
  switch (op) {
    case 'invoke':
      return str(x.ta, TA_NAME) && str(x.command, COMMAND_NAME) && optional(x, 'params', json) && optional(x, 'sessionId', (s) => str(s, WIRE_ID));
    case 'invokeBatch':
      return str(x.ta, TA_NAME) && str(x.command, COMMAND_NAME) && isBatchItems(x.items, isRequestItem);
    case 'openSession':
      return str(x.ta, TA_NAME) && optional(x, 'params', json);
    case 'closeSession':
      return str(x.ta, TA_NAME) && str(x.sessionId, WIRE_ID);
    case 'listTAs':
      return true;
    case 'attest':
      return str(x.ta, TA_NAME) && typeof x.nonce === 'string' && x.nonce.length >= 8 && x.nonce.length <= 128
        && optional(x, 'claims', (c) => isPlainObject(c) && isJsonValue(c));
    default:
      return false;
  }
}

const OK_KEYS: ReadonlySet<string> = new Set(['v', 'id', 'ok', 'result']);
const BATCH_OK_KEYS: ReadonlySet<string> = new Set(['v', 'id', 'ok', 'items']);

/**
 * True only if taResponseSchema accepts `x` unchanged: successful answers, including batch
 * answers whose every item succeeded (errors, and batches with a failed item, go through zod).
 */
export function isWireOkResponse(x: unknown): x is TAResponse {
  if (!isPlainObject(x) || x.ok !== true || !str(x.id, WIRE_ID)) return false;
  if (hasOwn.call(x, 'items')) return onlyKeys(x, BATCH_OK_KEYS) && isBatchItems(x.items, isOkItem);
  return onlyKeys(x, OK_KEYS) && optional(x, 'result', (r) => isJsonValue(r));
}
