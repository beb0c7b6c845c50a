/**
 * node:crypto under @hpke/core's primitive interfaces (HKDF-SHA256 and AES-256-GCM; X25519 in
 * node-x25519.ts), so the HPKE
 * protocol (labels, key schedule, nonces, export) stays the library's while each HMAC and AEAD
 * step is one synchronous OpenSSL call instead of a WebCrypto thread-pool round trip. The RFC
 * vectors and the independent sender in the tests check the result byte for byte.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { AeadId, HkdfSha256, OpenError } from '@hpke/core';
import type { AeadEncryptionContext, AeadInterface } from '@hpke/core';

type Bytes = ArrayBufferLike | ArrayBufferView;
const u8 = (b: Bytes): Uint8Array => (ArrayBuffer.isView(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b));
const ab = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

export class NodeHkdfSha256 extends HkdfSha256 {
  override async extract(salt: ArrayBuffer, ikm: ArrayBuffer): Promise<ArrayBuffer> {
    const s = salt.byteLength === 0 ? Buffer.alloc(32) : Buffer.from(salt);
    return ab(createHmac('sha256', s).update(Buffer.from(ikm)).digest());
  }

  override async expand(prk: ArrayBuffer, info: ArrayBuffer, len: number): Promise<ArrayBuffer> {
    if (len > 255 * 32) throw new Error('Entropy limit reached');
    const out = Buffer.alloc(len);
    let prev = Buffer.alloc(0);
    for (let i = 1, off = 0; off < len; i++) {
      prev = createHmac('sha256', Buffer.from(prk)).update(prev).update(Buffer.from(info)).update(Buffer.from([i])).digest();
      off += prev.copy(out, off);
    }
    return ab(out);
  }

  override async extractAndExpand(salt: ArrayBuffer, ikm: ArrayBuffer, info: ArrayBuffer, len: number): Promise<ArrayBuffer> {
    return this.expand(await this.extract(salt, ikm), info, len);
  }
}

class NodeAesGcmContext implements AeadEncryptionContext {
  constructor(private readonly key: Buffer) {}

  async seal(iv: Bytes, data: Bytes, aad: Bytes): Promise<ArrayBuffer> {
    const c = createCipheriv('aes-256-gcm', this.key, u8(iv));
    c.setAAD(u8(aad));
    return ab(Buffer.concat([c.update(u8(data)), c.final(), c.getAuthTag()]));
  }

  async open(iv: Bytes, data: Bytes, aad: Bytes): Promise<ArrayBuffer> {
    const d = Buffer.from(u8(data));
    if (d.length < 16) throw new OpenError('ciphertext shorter than its tag');
    try {
      const c = createDecipheriv('aes-256-gcm', this.key, u8(iv));
      c.setAAD(u8(aad));
      c.setAuthTag(d.subarray(d.length - 16));
      return ab(Buffer.concat([c.update(d.subarray(0, d.length - 16)), c.final()]));
    } catch (e) {
      throw new OpenError(e);
    }
  }
}

export class NodeAes256Gcm implements AeadInterface {
  readonly id = AeadId.Aes256Gcm;
  readonly keySize = 32;
  readonly nonceSize = 12;
  readonly tagSize = 16;

  createEncryptionContext(key: Bytes): AeadEncryptionContext {
    return new NodeAesGcmContext(Buffer.from(u8(key)));
  }
}
