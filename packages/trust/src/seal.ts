/**
 * Sealing: AES-256-GCM under a key derived from the root seal secret and the policy.
 *
 * Blob format v1 (all integers big-endian):
 *   0  4  magic "EESB"
 *   4  1  version = 1
 *   5  1  policy: 1 = unique (measurement), 2 = product (signer_id + product_id)
 *   6  2  reserved = 0
 *   8  4  security version the blob was sealed at
 *  12 12  GCM IV (random)
 *  24  n  ciphertext
 * 24+n 16 GCM tag
 * AAD = the 24-byte header || caller context. The header is authenticated, so the recorded SVN
 * cannot be lowered; a TA at SVN n opens blobs sealed at SVN <= n only.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomFillSync, type KeyObject } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { SealPolicy } from '@enclave-edge/ta-sdk';
import type { TAIdentity } from './identity.js';
import type { RootOfTrust } from './rot/types.js';

export const SEAL_MAGIC = Buffer.from('EESB', 'ascii');
export const SEAL_VERSION = 1;
export const SEAL_HEADER_BYTES = 24;
export const SEAL_TAG_BYTES = 16;
export const SEAL_OVERHEAD = SEAL_HEADER_BYTES + SEAL_TAG_BYTES;
const POLICY_CODE: Record<SealPolicy, number> = { unique: 1, product: 2 };
// Seal writes header || ciphertext || tag into one buffer, so each update() output is copied once;
// 64 KiB chunks keep that copy cache-hot while staying under glibc's mmap threshold (no fresh pages per chunk).
const CHUNK = 64 * 1024;
const EMPTY = new Uint8Array(0);

const HEX64 = /^[0-9a-f]{64}$/;

export type SealIdentity = Pick<TAIdentity, 'measurement' | 'signerId' | 'productId' | 'securityVersion' | 'debug'>;

function checkIdentity(id: SealIdentity): void {
  if (!HEX64.test(id.measurement) || !HEX64.test(id.signerId)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'TA identity needs lowercase hex measurement and signerId');
  if (!Number.isSafeInteger(id.productId) || id.productId < 0) throw new EnclaveEdgeError('BAD_PARAMETERS', 'TA identity productId must be a non-negative integer');
  if (typeof id.debug !== 'boolean') throw new EnclaveEdgeError('BAD_PARAMETERS', 'TA identity debug must be a boolean');
  if (!Number.isInteger(id.securityVersion) || id.securityVersion < 0 || id.securityVersion > 0xffffffff) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'TA identity securityVersion must be 0..2^32-1');
  }
}

/**
 * The HKDF info string: what the key is bound to. Documented in docs/sealing-and-attestation.md.
 * Debug builds get their own product keys (as SGX mixes the DEBUG attribute into its seal keys):
 * a debug TA is inspectable, so it must never open what a release build of the product sealed.
 * `unique` needs no suffix: the measurement covers the manifest, debug flag included.
 */
export function sealKeyInfo(policy: SealPolicy, id: SealIdentity): string {
  return policy === 'unique'
    ? `enclave-edge/v1/seal/unique/${id.measurement}`
    : `enclave-edge/v1/seal/product/${id.signerId}/${id.productId}${id.debug ? '/debug' : ''}`;
}

/** Context may be bytes or text (UTF-8), as the TA SDK allows; anything else is refused, never coerced. */
function contextBytes(context: unknown): Uint8Array {
  if (context === undefined || context === null) return EMPTY;
  if (context instanceof Uint8Array) return context;
  if (typeof context === 'string') return Buffer.from(context, 'utf8');
  throw new EnclaveEdgeError('BAD_PARAMETERS', 'seal context must be bytes or a string');
}

function aad(header: Uint8Array, context: Uint8Array): Uint8Array {
  if (context.length === 0) return header;
  const a = new Uint8Array(header.length + context.length);
  a.set(header, 0);
  a.set(context, header.length);
  return a;
}

export class Sealer {
  private readonly keys = new Map<string, Promise<KeyObject>>();

  constructor(private readonly root: RootOfTrust) {}

  /** Derive once per (policy, identity) and cache (the pkcs11 derivation is a token round trip). */
  private key(policy: SealPolicy, id: SealIdentity): Promise<KeyObject> {
    const info = sealKeyInfo(policy, id);
    let k = this.keys.get(info);
    if (!k) {
      k = this.root.deriveKey(Buffer.from(info, 'utf8')).then((raw) => {
        const ko = createSecretKey(raw);
        raw.fill(0);
        return ko;
      });
      k.catch(() => this.keys.delete(info));
      this.keys.set(info, k);
    }
    return k;
  }

  /**
   * Seal `data`. With `output` (at least data.length + SEAL_OVERHEAD bytes) the blob is written
   * there and a view of it returned: callers that consume the blob at once (sealed storage writes
   * it to a file) reuse one buffer instead of page-faulting a fresh one per call.
   */
  async seal(id: SealIdentity, data: Uint8Array, opts: { policy?: SealPolicy; context?: Uint8Array | string; output?: Uint8Array } = {}): Promise<Uint8Array> {
    checkIdentity(id);
    if (!(data instanceof Uint8Array)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'sealed data must be bytes (Uint8Array)');
    const context = contextBytes(opts.context);
    const policy = opts.policy ?? 'product';
    if (!(policy in POLICY_CODE)) throw new EnclaveEdgeError('BAD_PARAMETERS', `unknown seal policy "${String(policy)}"`);
    const key = await this.key(policy, id);
    const size = SEAL_OVERHEAD + data.length;
    let out: Buffer;
    if (opts.output) {
      if (opts.output.length < size) throw new EnclaveEdgeError('BAD_PARAMETERS', `seal output buffer too small (${opts.output.length} < ${size})`);
      out = Buffer.from(opts.output.buffer, opts.output.byteOffset, size);
    } else {
      out = Buffer.allocUnsafe(size);
    }
    SEAL_MAGIC.copy(out, 0);
    out[4] = SEAL_VERSION;
    out[5] = POLICY_CODE[policy];
    out.writeUInt16BE(0, 6);
    out.writeUInt32BE(id.securityVersion, 8);
    randomFillSync(out, 12, 12);
    const header = out.subarray(0, SEAL_HEADER_BYTES);
    const c = createCipheriv('aes-256-gcm', key, header.subarray(12, 24));
    c.setAAD(aad(header, context));
    let off = SEAL_HEADER_BYTES;
    for (let i = 0; i < data.length; i += CHUNK) {
      off += c.update(data.subarray(i, Math.min(i + CHUNK, data.length))).copy(out, off);
    }
    off += c.final().copy(out, off);
    c.getAuthTag().copy(out, off);
    return out;
  }

  async unseal(id: SealIdentity, blob: Uint8Array, opts: { context?: Uint8Array | string } = {}): Promise<Uint8Array> {
    checkIdentity(id);
    if (!(blob instanceof Uint8Array)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'a sealed blob is bytes (Uint8Array)');
    const context = contextBytes(opts.context);
    const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    // Every malformed or altered blob is SEAL_INTEGRITY: a flipped header byte must not read as anything else.
    if (b.length < SEAL_OVERHEAD || !b.subarray(0, 4).equals(SEAL_MAGIC)) throw new EnclaveEdgeError('SEAL_INTEGRITY', 'not a sealed blob (bad magic or truncated)');
    if (b[4] !== SEAL_VERSION || b.readUInt16BE(6) !== 0) throw new EnclaveEdgeError('SEAL_INTEGRITY', `unsupported sealed blob version ${b[4]}`);
    const policy: SealPolicy | undefined = b[5] === 1 ? 'unique' : b[5] === 2 ? 'product' : undefined;
    if (!policy) throw new EnclaveEdgeError('SEAL_INTEGRITY', 'sealed blob names an unknown policy');
    const sealedSvn = b.readUInt32BE(8);
    const key = await this.key(policy, id);
    const header = b.subarray(0, SEAL_HEADER_BYTES);
    const body = b.subarray(SEAL_HEADER_BYTES, b.length - SEAL_TAG_BYTES);
    const d = createDecipheriv('aes-256-gcm', key, header.subarray(12, 24));
    d.setAAD(aad(header, context));
    d.setAuthTag(b.subarray(b.length - SEAL_TAG_BYTES));
    // One update: its output is exactly the plaintext, so no copy is needed (unlike seal).
    const out = d.update(body);
    try {
      d.final();
    } catch {
      out.fill(0);
      throw new EnclaveEdgeError(
        'SEAL_INTEGRITY',
        `sealed data failed its integrity check: altered, or sealed for another ${policy === 'unique' ? 'build (measurement)' : 'signer/product'} or with another context`,
      );
    }
    if (sealedSvn > id.securityVersion) {
      out.fill(0);
      throw new EnclaveEdgeError('POLICY_VIOLATION', `blob was sealed at security version ${sealedSvn}; this TA is at ${id.securityVersion} and may not open it (no rollback of SVN)`);
    }
    return out;
  }

  /** Drop cached keys (on shutdown). */
  clear(): void {
    this.keys.clear();
  }
}

/** Parse a blob's header without opening it (for tools and docs). */
export function inspectSealedBlob(blob: Uint8Array): { version: number; policy: SealPolicy; securityVersion: number; ciphertextBytes: number } {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (b.length < SEAL_OVERHEAD || !b.subarray(0, 4).equals(SEAL_MAGIC)) throw new EnclaveEdgeError('BAD_FORMAT', 'not a sealed blob');
  const policy: SealPolicy = b[5] === 1 ? 'unique' : 'product';
  return { version: b[4]!, policy, securityVersion: b.readUInt32BE(8), ciphertextBytes: b.length - SEAL_OVERHEAD };
}
