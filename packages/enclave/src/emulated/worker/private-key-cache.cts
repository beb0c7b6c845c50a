/**
 * Parsed signing keys, kept in the worker. Parsing PKCS#8 DER (createPrivateKey) costs ~0.5 ms
 * under OpenSSL 3, ~15× the ES256 signature itself; a TA that signs every reading with the same
 * key would spend nearly all its time there. Keys are looked up by the SHA-256 of their bytes, so
 * only a caller that already holds the exact key bytes gets the parsed key back. Bounded LRU.
 */
import type * as NodeCrypto from 'node:crypto';

export class PrivateKeyCache {
  private readonly keys = new Map<string, NodeCrypto.KeyObject>();

  constructor(private readonly crypto: () => typeof NodeCrypto, private readonly max = 16) {}

  /** The parsed key for these PKCS#8 DER bytes; throws as createPrivateKey does for bad bytes. */
  get(der: Uint8Array): NodeCrypto.KeyObject {
    const nc = this.crypto();
    const digest = nc.createHash('sha256').update(der).digest('base64');
    const hit = this.keys.get(digest);
    if (hit) {
      this.keys.delete(digest); // most recently used goes last
      this.keys.set(digest, hit);
      return hit;
    }
    const key = nc.createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
    this.keys.set(digest, key);
    if (this.keys.size > this.max) this.keys.delete(this.keys.keys().next().value as string);
    return key;
  }

  get size(): number {
    return this.keys.size;
  }
}
