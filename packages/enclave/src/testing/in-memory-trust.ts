/**
 * InMemoryTrustServicesForTests: a test double of TrustServices. It keeps a random root key in
 * memory and "evidence" is an unsigned JSON string. Never use it in a runtime: production wires
 * TrustServices to @enclave-edge/trust.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { JsonWebKeyPublic, SealPolicy, Value } from '@enclave-edge/ta-sdk';
import type { SealedStore, TAIdentity, TrustServices } from '../contract.js';

export class InMemoryTrustServicesForTests implements TrustServices {
  private readonly root = randomBytes(32);
  private readonly stores = new Map<string, Map<string, Uint8Array>>();
  readonly attestCalls: { id: TAIdentity; nonce: Uint8Array; tee: string; claims?: Record<string, Value>; publicKey?: JsonWebKeyPublic }[] = [];

  private key(id: TAIdentity, policy: SealPolicy): Buffer {
    const binding = policy === 'unique' ? `unique:${id.measurement}` : `product:${id.signerId}:${id.productId}`;
    return createHmac('sha256', this.root).update(binding).digest();
  }

  async seal(id: TAIdentity, data: Uint8Array, opts: { policy: SealPolicy; context?: Uint8Array }): Promise<Uint8Array> {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key(id, opts.policy), iv);
    if (opts.context) c.setAAD(opts.context);
    const body = Buffer.concat([c.update(data), c.final()]);
    return new Uint8Array(Buffer.concat([Buffer.from([opts.policy === 'unique' ? 1 : 2]), iv, c.getAuthTag(), body]));
  }

  async unseal(id: TAIdentity, blob: Uint8Array, opts: { context?: Uint8Array }): Promise<Uint8Array> {
    const b = Buffer.from(blob);
    if (b.length < 29 || (b[0] !== 1 && b[0] !== 2)) throw new EnclaveEdgeError('SEAL_INTEGRITY', 'sealed blob is malformed');
    try {
      const d = createDecipheriv('aes-256-gcm', this.key(id, b[0] === 1 ? 'unique' : 'product'), b.subarray(1, 13));
      d.setAuthTag(b.subarray(13, 29));
      if (opts.context) d.setAAD(opts.context);
      return new Uint8Array(Buffer.concat([d.update(b.subarray(29)), d.final()]));
    } catch {
      throw new EnclaveEdgeError('SEAL_INTEGRITY', 'sealed blob failed its integrity check (tampered, wrong TA or wrong context)');
    }
  }

  storage(id: TAIdentity): SealedStore {
    const k = `${id.signerId}:${id.productId}`;
    let m = this.stores.get(k);
    if (!m) this.stores.set(k, (m = new Map()));
    const map = m;
    return {
      async get(key) {
        const v = map.get(key);
        return v && new Uint8Array(v);
      },
      async put(key, value) {
        map.set(key, new Uint8Array(value));
      },
      async delete(key) {
        return map.delete(key);
      },
      async list(prefix) {
        return [...map.keys()].filter((x) => !prefix || x.startsWith(prefix)).sort();
      },
    };
  }

  async attest(id: TAIdentity, opts: { nonce: Uint8Array; claims?: Record<string, Value>; publicKey?: JsonWebKeyPublic; tee: string }): Promise<string> {
    this.attestCalls.push({ id, ...opts });
    return JSON.stringify({ unsigned_test_evidence: true, tee: opts.tee, unique_id: id.measurement, signer_id: id.signerId, eat_nonce: Buffer.from(opts.nonce).toString('base64url'), claims: opts.claims ?? null });
  }
}
