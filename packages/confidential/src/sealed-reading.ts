/**
 * Sealed readings: a signed sensor reading HPKE-sealed (base mode, the suite of suite.ts) inside
 * the enclave to a recipient key from a host-module pipeline, so `$upstream` carries only
 * ciphertext (docs/confidential-calls.md, "Sealed readings"). The TA builds them with
 * `ctx.crypto.hpkeSeal` (sensor-signer `signSealed`); this is the one codec for everyone else:
 * host-module's check before it sends one on, and the consumer's open + signature check.
 *
 *   { v: 1, h: b64u(header JSON), enc: b64u(32-byte enc), ct: b64u(HPKE ciphertext) }
 *   header = { v, kem, kdf, aead, ta, m (measurement), pipeline, stream, seq, rcpt, kid }
 *   info = "enclave-edge/sealed-reading/v1", aad = the header bytes
 *   plaintext = JSON { reading, signature, keyId, alg: "ES256" },
 *   signature = ES256 over canonicalJson({ h, reading }), so the signer vouches for the binding too.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { canonicalJson } from '@enclave-edge/ta-sdk';
import { SUITE_IDS, type SuiteHeader } from './suite.js';
import { hpkeOpen } from './ta-crypto.js';

export const SEALED_READING_VERSION = 1;
export const SEALED_READING_INFO = 'enclave-edge/sealed-reading/v1';

/** ta and m: the TA name and measurement (unique_id) that sealed it. */
export interface SealedReadingHeader extends SuiteHeader {
  /** host-module pipeline the reading came through. */
  pipeline: string;
  /** Random per TA instance; `seq` counts from 0 within it (a gap: a reading missing; a repeat: a replay). */
  stream: string;
  seq: number;
  /** RFC 7638 thumbprint of the recipient key. */
  rcpt: string;
  /** Key id (thumbprint) of the TA's signing key. */
  kid: string;
}

export interface SealedReading {
  v: 1;
  h: string;
  enc: string;
  ct: string;
}

export type SealedReadingRefusal = 'malformed' | 'suite' | 'binding' | 'integrity' | 'signature';

export class SealedReadingError extends EnclaveEdgeError {
  constructor(readonly reason: SealedReadingRefusal, message: string) {
    super(reason === 'integrity' || reason === 'signature' ? 'SEAL_INTEGRITY' : reason === 'suite' ? 'NOT_SUPPORTED' : 'BAD_FORMAT', `sealed reading refused (${reason}): ${message}`, { detail: { reason } });
  }
}

/** RFC 7638 thumbprint of an X25519 public key (raw 32 bytes). */
export function recipientThumbprint(raw: Uint8Array): string {
  const x = Buffer.from(raw).toString('base64url');
  return createHash('sha256').update(`{"crv":"X25519","kty":"OKP","x":"${x}"}`).digest('base64url');
}

const HEADER_KEYS = ['v', 'kem', 'kdf', 'aead', 'ta', 'm', 'pipeline', 'stream', 'seq', 'rcpt', 'kid'] as const;
const B64U = /^[A-Za-z0-9_-]+$/;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const exactKeys = (o: Record<string, unknown>, keys: readonly string[]) => Object.keys(o).length === keys.length && keys.every((k) => Object.hasOwn(o, k));

export interface ParsedSealedReading {
  header: SealedReadingHeader;
  headerBytes: Uint8Array;
  enc: Uint8Array;
  ct: Uint8Array;
}

/** Shape and suite only (nothing is authenticated before it opens). */
export function parseSealedReading(value: unknown): ParsedSealedReading {
  if (!isObject(value) || !exactKeys(value, ['v', 'h', 'enc', 'ct'])) throw new SealedReadingError('malformed', 'expected exactly { v, h, enc, ct }');
  if (value.v !== SEALED_READING_VERSION) throw new SealedReadingError('suite', `version ${String(value.v)} is not supported`);
  for (const k of ['h', 'enc', 'ct'] as const) {
    if (typeof value[k] !== 'string' || !B64U.test(value[k]) || (value[k] as string).length > (k === 'ct' ? 1_000_000 : 2048)) throw new SealedReadingError('malformed', `${k} is not base64url`);
  }
  const headerBytes = new Uint8Array(Buffer.from(value.h as string, 'base64url'));
  let h: unknown;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    throw new SealedReadingError('malformed', 'the header is not UTF-8 JSON');
  }
  if (!isObject(h) || !exactKeys(h, HEADER_KEYS)) throw new SealedReadingError('malformed', `the header must have exactly ${HEADER_KEYS.join(', ')}`);
  if (h.v !== SEALED_READING_VERSION || h.kem !== SUITE_IDS.kem || h.kdf !== SUITE_IDS.kdf || h.aead !== SUITE_IDS.aead) {
    throw new SealedReadingError('suite', 'only version 1 with HPKE kem=0x0020 kdf=0x0001 aead=0x0002');
  }
  if (typeof h.ta !== 'string' || typeof h.pipeline !== 'string' || typeof h.m !== 'string' || !/^[0-9a-f]{64}$/.test(h.m)) throw new SealedReadingError('malformed', 'the header needs ta, pipeline and a 64-hex measurement');
  if (typeof h.stream !== 'string' || !B64U.test(h.stream) || !Number.isSafeInteger(h.seq) || (h.seq as number) < 0) throw new SealedReadingError('malformed', 'the header needs a stream id and a sequence number');
  if (typeof h.rcpt !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(h.rcpt) || typeof h.kid !== 'string' || !B64U.test(h.kid)) throw new SealedReadingError('malformed', 'the header needs rcpt and kid thumbprints');
  const enc = new Uint8Array(Buffer.from(value.enc as string, 'base64url'));
  const ct = new Uint8Array(Buffer.from(value.ct as string, 'base64url'));
  if (enc.length !== 32 || ct.length < 16) throw new SealedReadingError('malformed', 'enc must be 32 bytes and ct at least its tag');
  return { header: h as unknown as SealedReadingHeader, headerBytes, enc, ct };
}

/**
 * host-module's check before a pipeline with a recipient sends a result on: it must be a sealed
 * reading from this TA for this pipeline and recipient; anything else (a plain result, another
 * recipient) is refused, so such a pipeline never emits plaintext.
 */
export function checkSealedReading(value: unknown, expect: { ta: string; pipeline: string; rcpt: string }): SealedReadingHeader {
  const { header } = parseSealedReading(value);
  if (header.ta !== expect.ta || header.pipeline !== expect.pipeline || header.rcpt !== expect.rcpt) {
    throw new SealedReadingError('binding', 'sealed by another TA, for another pipeline or to another recipient');
  }
  return header;
}

export interface OpenedReading {
  header: SealedReadingHeader;
  reading: unknown;
  signature: string;
  keyId: string;
}

export interface OpenSealedReadingOptions {
  /** The recipient's raw 32-byte X25519 private key. */
  privateKey: Uint8Array;
  /** The TA's signing key (P-256 JWK, e.g. from sensor-signer's verified evidence). */
  signer: { kty: string; crv?: string; x?: string; y?: string };
  /** What the header must say, when the consumer knows it (TA name, measurement, pipeline). */
  expect?: { ta?: string; measurement?: string; pipeline?: string };
}

/** Open a sealed reading and verify the TA's signature over it and its header. */
export async function openSealedReading(value: unknown, o: OpenSealedReadingOptions): Promise<OpenedReading> {
  const { header, headerBytes, enc, ct } = parseSealedReading(value);
  const e = o.expect ?? {};
  if ((e.ta !== undefined && header.ta !== e.ta) || (e.measurement !== undefined && header.m !== e.measurement) || (e.pipeline !== undefined && header.pipeline !== e.pipeline)) {
    throw new SealedReadingError('binding', 'the header names another TA, measurement or pipeline than expected');
  }
  let pt: Uint8Array;
  try {
    pt = await hpkeOpen(o.privateKey, enc, ct, { info: new TextEncoder().encode(SEALED_READING_INFO), aad: headerBytes });
  } catch {
    throw new SealedReadingError('integrity', 'does not open with this key (tampered, header changed, or sealed to another key)');
  }
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(pt));
  } catch {
    throw new SealedReadingError('malformed', 'the plaintext is not UTF-8 JSON');
  }
  if (!isObject(body) || !exactKeys(body, ['reading', 'signature', 'keyId', 'alg']) || body.alg !== 'ES256' || typeof body.signature !== 'string' || typeof body.keyId !== 'string') {
    throw new SealedReadingError('malformed', 'the plaintext must be { reading, signature, keyId, alg: "ES256" }');
  }
  if (body.keyId !== header.kid) throw new SealedReadingError('signature', 'the signing key id differs from the header\'s');
  let ok = false;
  try {
    const key = createPublicKey({ key: { kty: o.signer.kty, crv: o.signer.crv, x: o.signer.x, y: o.signer.y } as never, format: 'jwk' });
    ok = verify('sha256', Buffer.from(canonicalJson({ h: Buffer.from(headerBytes).toString('base64url'), reading: body.reading })), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(body.signature, 'base64url'));
  } catch {
    ok = false;
  }
  if (!ok) throw new SealedReadingError('signature', 'the TA\'s ES256 signature over the reading and header does not verify with the signer key');
  return { header, reading: body.reading, signature: body.signature, keyId: body.keyId };
}
