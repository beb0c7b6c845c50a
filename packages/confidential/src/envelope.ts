/**
 * The confidential-call envelope, one codec for both ends (docs/confidential-calls.md).
 *
 * Request (the params of an ordinary invoke of CONFIDENTIAL_COMMAND):
 *   { v: 1, h: b64u(header JSON), enc: b64u(HPKE enc), ct: b64u(HPKE seal(body, aad = header bytes)) }
 *   header = { v, kem, kdf, aead, ta, m (measurement), rid (request id), exp (ms since epoch) }
 *   body   = JSON { c: command, p: params (protocol wire form) }
 * Response (the result of that invoke):
 *   { v: 1, n: b64u(12-byte nonce), ct: b64u(AES-256-GCM(body)) } under a key exported from the
 *   request's HPKE context, aad = RESPONSE_LABEL || header bytes;
 *   body = JSON { ok: true, r: result } | { ok: false, e: { code, message } }.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EnclaveEdgeError, isErrorCode, type ErrorCode } from '@enclave-edge/errors';
import type { SenderContext } from '@hpke/core';
import { SUITE_IDS, hpkeSuite, type HpkeKey, type SuiteHeader } from './suite.js';

export const ENVELOPE_VERSION = 1;
export const DEFAULT_ENVELOPE_LIFETIME_MS = 60_000;
/** The enclave refuses envelopes valid for longer: its replay memory must cover the whole lifetime. */
export const MAX_ENVELOPE_LIFETIME_MS = 5 * 60_000;
/** Clock difference tolerated between caller and device on `exp`. */
export const CLOCK_TOLERANCE_MS = 30_000;

const INFO = new TextEncoder().encode('enclave-edge/confidential/v1');
const RESPONSE_EXPORT = new TextEncoder().encode('enclave-edge/confidential/v1/response-key');
const RESPONSE_LABEL = new TextEncoder().encode('enclave-edge/confidential/v1/response\0');
const RID = /^[A-Za-z0-9_-]{16,64}$/;
const B64U = /^[A-Za-z0-9_-]*$/;
const MAX_HEADER_CHARS = 1024;

export interface EnvelopeHeader extends SuiteHeader {
  rid: string;
  exp: number;
}

export interface RequestEnvelope {
  v: 1;
  h: string;
  enc: string;
  ct: string;
}

export interface ResponseEnvelope {
  v: 1;
  n: string;
  ct: string;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type InnerResult = { ok: true; result: JsonValue } | { ok: false; error: { code: ErrorCode; message: string } };

export type EnvelopeRefusal = 'malformed' | 'suite' | 'ta' | 'measurement' | 'expired' | 'lifetime' | 'replay' | 'replay-cache-full' | 'integrity';

const REFUSAL_CODES: Record<EnvelopeRefusal, ErrorCode> = {
  malformed: 'BAD_FORMAT',
  suite: 'NOT_SUPPORTED',
  ta: 'ACCESS_DENIED',
  measurement: 'MEASUREMENT_MISMATCH',
  expired: 'ACCESS_DENIED',
  lifetime: 'BAD_PARAMETERS',
  replay: 'CONFLICT',
  'replay-cache-full': 'UNAVAILABLE',
  integrity: 'SEAL_INTEGRITY',
};

/** A refused envelope: the code says what kind, the message starts with the reason. Never carries plaintext. */
export class EnvelopeError extends EnclaveEdgeError {
  constructor(readonly reason: EnvelopeRefusal, message: string) {
    super(REFUSAL_CODES[reason], `confidential envelope refused (${reason}): ${message}`, { detail: { reason } });
  }
}

const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
function unb64u(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string' || !B64U.test(s)) throw new EnvelopeError('malformed', `${what} is not base64url`);
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function aesGcm(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const out = Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function aesGcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, data: Uint8Array): Uint8Array | undefined {
  if (data.length < 16) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(aad);
    d.setAuthTag(data.subarray(data.length - 16));
    return new Uint8Array(Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]));
  } catch {
    return undefined;
  }
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new EnvelopeError('malformed', `${what} is not UTF-8 JSON`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function exactKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(o);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(o, k));
}

const HEADER_KEYS = ['v', 'kem', 'kdf', 'aead', 'ta', 'm', 'rid', 'exp'] as const;

function parseHeader(bytes: Uint8Array): EnvelopeHeader {
  const h = parseJson(bytes, 'the header');
  if (!isPlainObject(h) || !exactKeys(h, HEADER_KEYS)) throw new EnvelopeError('malformed', `the header must have exactly ${HEADER_KEYS.join(', ')}`);
  if (h.v !== ENVELOPE_VERSION) throw new EnvelopeError('suite', `envelope version ${String(h.v)} is not supported (this side speaks ${ENVELOPE_VERSION})`);
  if (h.kem !== SUITE_IDS.kem || h.kdf !== SUITE_IDS.kdf || h.aead !== SUITE_IDS.aead) {
    throw new EnvelopeError('suite', `HPKE suite kem=${String(h.kem)} kdf=${String(h.kdf)} aead=${String(h.aead)} is not supported (only kem=0x0020 kdf=0x0001 aead=0x0002)`);
  }
  if (typeof h.ta !== 'string' || typeof h.m !== 'string' || !/^[0-9a-f]{64}$/.test(h.m)) throw new EnvelopeError('malformed', 'the header needs a TA name and a 64-hex measurement');
  if (typeof h.rid !== 'string' || !RID.test(h.rid)) throw new EnvelopeError('malformed', 'the request id must be 16..64 base64url characters');
  if (!Number.isSafeInteger(h.exp)) throw new EnvelopeError('malformed', 'exp must be an integer (ms since the epoch)');
  return h as unknown as EnvelopeHeader;
}

// ---------------------------------------------------------------- caller side

/**
 * An HPKE sender context made ahead of the request it will seal (encapsulation does not depend
 * on the message): a fresh ephemeral key, used for exactly one envelope.
 */
export interface PreparedSender {
  readonly recipient: HpkeKey;
  /** The context and the key its answer will come under (both fixed by the encapsulation). */
  take(): Promise<{ sender: SenderContext; responseKey: Uint8Array }>;
}

/** `inBackground`: start after the current I/O (setImmediate), off the path of the call in hand. */
export function prepareSender(recipient: HpkeKey, inBackground = false): PreparedSender {
  let ready: Promise<{ sender: SenderContext; responseKey: Uint8Array }> | undefined;
  const start = () => {
    if (!ready) {
      ready = (async () => {
        const sender = await hpkeSuite().createSenderContext({ recipientPublicKey: recipient, info: INFO });
        return { sender, responseKey: new Uint8Array(await sender.export(RESPONSE_EXPORT, 32)) };
      })();
      ready.catch(() => undefined); // seen by the one request that takes it
    }
    return ready;
  };
  if (inBackground) setImmediate(start).unref();
  let taken = false;
  return {
    recipient,
    take() {
      if (taken) throw new EnclaveEdgeError('INTERNAL', 'a prepared HPKE sender context seals one envelope');
      taken = true;
      return start();
    },
  };
}

export interface SealRequestInput {
  /** The TA's attested HPKE public key. */
  recipient: HpkeKey;
  /** A context prepared for `recipient` (prepareSender); made here when absent. */
  prepared?: PreparedSender;
  ta: string;
  measurement: string;
  command: string;
  /** Protocol wire form (encodeValue). */
  params: JsonValue;
  lifetimeMs?: number;
  now?: number;
}

export interface SealedRequest {
  envelope: RequestEnvelope;
  header: EnvelopeHeader;
  /** Open the TA's answer to this request (once). */
  openResponse(response: unknown): Promise<InnerResult>;
}

export async function sealRequest(input: SealRequestInput): Promise<SealedRequest> {
  const lifetime = input.lifetimeMs ?? DEFAULT_ENVELOPE_LIFETIME_MS;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > MAX_ENVELOPE_LIFETIME_MS) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `envelope lifetime must be 1..${MAX_ENVELOPE_LIFETIME_MS} ms`);
  }
  const header: EnvelopeHeader = {
    v: ENVELOPE_VERSION, ...SUITE_IDS, ta: input.ta, m: input.measurement,
    rid: randomBytes(16).toString('base64url'), exp: (input.now ?? Date.now()) + lifetime,
  };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  if (input.prepared && input.prepared.recipient !== input.recipient) throw new EnclaveEdgeError('INTERNAL', 'the prepared HPKE context is for another key');
  const { sender, responseKey: key } = await (input.prepared ?? prepareSender(input.recipient)).take();
  const body = new TextEncoder().encode(JSON.stringify({ c: input.command, p: input.params }));
  const ct = new Uint8Array(await sender.seal(body, headerBytes));
  let used = false;
  return {
    header,
    envelope: { v: ENVELOPE_VERSION, h: b64u(headerBytes), enc: b64u(new Uint8Array(sender.enc)), ct: b64u(ct) },
    async openResponse(response) {
      if (used) throw new EnclaveEdgeError('CONFLICT', 'this response was already opened');
      used = true;
      if (!isPlainObject(response) || !exactKeys(response, ['v', 'n', 'ct']) || response.v !== ENVELOPE_VERSION) {
        throw new EnvelopeError('malformed', 'the answer is not a confidential response envelope');
      }
      const nonce = unb64u(response.n, 'the response nonce');
      if (nonce.length !== 12) throw new EnvelopeError('malformed', 'the response nonce must be 12 bytes');
      const pt = aesGcmOpen(key, nonce, concat(RESPONSE_LABEL, headerBytes), unb64u(response.ct, 'the response ciphertext'));
      key.fill(0);
      if (!pt) throw new EnvelopeError('integrity', 'the response does not decrypt under this request\'s key (tampered, truncated or not for this request)');
      return parseInner(parseJson(pt, 'the response body'));
    },
  };
}

function parseInner(body: unknown): InnerResult {
  if (isPlainObject(body) && body.ok === true && exactKeys(body, ['ok', 'r'])) return { ok: true, result: body.r as JsonValue };
  if (isPlainObject(body) && body.ok === false && exactKeys(body, ['ok', 'e']) && isPlainObject(body.e)) {
    const e = body.e;
    return { ok: false, error: { code: isErrorCode(e.code) ? e.code : 'INTERNAL', message: typeof e.message === 'string' ? e.message : 'the TA reported an error' } };
  }
  throw new EnvelopeError('malformed', 'the response body is not { ok, r } or { ok, e }');
}

// ---------------------------------------------------------------- enclave side

export interface ParsedRequest {
  header: EnvelopeHeader;
  headerBytes: Uint8Array;
  enc: Uint8Array;
  ct: Uint8Array;
}

/**
 * Shape, suite, addressee and time, before any crypto. The header is authenticated only by
 * openRequest (it is the AAD), so nothing is remembered from it before then.
 */
export function parseRequestEnvelope(value: unknown, expect: { ta: string; measurement: string; now?: number }): ParsedRequest {
  if (!isPlainObject(value) || !exactKeys(value, ['v', 'h', 'enc', 'ct'])) throw new EnvelopeError('malformed', 'expected { v, h, enc, ct }');
  if (value.v !== ENVELOPE_VERSION) throw new EnvelopeError('suite', `envelope version ${String(value.v)} is not supported`);
  if (typeof value.h !== 'string' || value.h.length > MAX_HEADER_CHARS) throw new EnvelopeError('malformed', 'the header is missing or too long');
  const headerBytes = unb64u(value.h, 'the header');
  const header = parseHeader(headerBytes);
  if (header.ta !== expect.ta) throw new EnvelopeError('ta', 'the envelope is addressed to another TA');
  if (header.m !== expect.measurement) throw new EnvelopeError('measurement', 'the envelope was sealed for another measurement of this TA (fetch fresh evidence)');
  const now = expect.now ?? Date.now();
  if (header.exp + CLOCK_TOLERANCE_MS < now) throw new EnvelopeError('expired', 'the envelope expired');
  if (header.exp - now > MAX_ENVELOPE_LIFETIME_MS + CLOCK_TOLERANCE_MS) throw new EnvelopeError('lifetime', `the envelope is valid for longer than ${MAX_ENVELOPE_LIFETIME_MS} ms`);
  const enc = unb64u(value.enc, 'enc');
  if (enc.length !== 32) throw new EnvelopeError('malformed', 'enc must be a 32-byte X25519 public key');
  const ct = unb64u(value.ct, 'the ciphertext');
  if (ct.length < 16) throw new EnvelopeError('malformed', 'the ciphertext is truncated');
  return { header, headerBytes, enc, ct };
}

/** Refusals that mean the envelope never opened, so nothing ran and its request id was not spent. */
const UNOPENED: ReadonlySet<string> = new Set<EnvelopeRefusal>(['malformed', 'suite', 'ta', 'measurement', 'expired', 'lifetime', 'integrity']);
const REFUSED = /^confidential envelope refused \(([a-z-]+)\)/;

/**
 * True for an error (as it crossed from the enclave: code and message only) that refused the
 * envelope before it opened. The enclave host frees a reserved request id only then; a timeout,
 * a crash or anything after opening keeps it spent (fail closed).
 */
export function refusedBeforeOpening(err: unknown): boolean {
  const m = typeof (err as { message?: unknown })?.message === 'string' ? REFUSED.exec((err as { message: string }).message) : null;
  return m !== null && UNOPENED.has(m[1]!);
}

export interface OpenedRequest {
  header: EnvelopeHeader;
  command: string;
  /** Protocol wire form. */
  params: JsonValue;
  /** Encrypt the answer for this caller only. */
  sealResponse(inner: InnerResult): ResponseEnvelope;
}

/** `key`: the TA's private key, or its pair (saves deriving the public half for kem_context). */
export async function openRequest(parsed: ParsedRequest, key: HpkeKey | { privateKey: HpkeKey; publicKey: HpkeKey }): Promise<OpenedRequest> {
  let pt: Uint8Array;
  let responseKey: Uint8Array;
  try {
    const r = await hpkeSuite().createRecipientContext({ recipientKey: key, enc: new Uint8Array(parsed.enc).buffer, info: INFO });
    pt = new Uint8Array(await r.open(new Uint8Array(parsed.ct).buffer, new Uint8Array(parsed.headerBytes).buffer));
    responseKey = new Uint8Array(await r.export(RESPONSE_EXPORT, 32));
  } catch {
    throw new EnvelopeError('integrity', 'the envelope does not open with this TA\'s key (tampered, truncated, re-ordered or sealed to another key)');
  }
  const body = parseJson(pt, 'the request body');
  if (!isPlainObject(body) || !exactKeys(body, ['c', 'p']) || typeof body.c !== 'string') {
    throw new EnvelopeError('malformed', 'the request body must be { c: command, p: params }');
  }
  const aad = concat(RESPONSE_LABEL, parsed.headerBytes);
  let used = false;
  return {
    header: parsed.header,
    command: body.c,
    params: body.p as JsonValue,
    sealResponse(inner) {
      if (used) throw new EnclaveEdgeError('INTERNAL', 'a confidential request is answered once');
      used = true;
      const nonce = new Uint8Array(randomBytes(12));
      const json = inner.ok ? { ok: true, r: inner.result } : { ok: false, e: { code: inner.error.code, message: inner.error.message } };
      const ct = aesGcm(responseKey, nonce, aad, new TextEncoder().encode(JSON.stringify(json)));
      responseKey.fill(0);
      return { v: ENVELOPE_VERSION, n: b64u(nonce), ct: b64u(ct) };
    },
  };
}
