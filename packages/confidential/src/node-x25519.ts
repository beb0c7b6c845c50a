/**
 * DHKEM(X25519, HKDF-SHA256) as @hpke/core's Dhkem (from @hpke/common: the labels, kem_context
 * and shared-secret derivation stay the library's) over node:crypto X25519 and HKDF. WebCrypto's
 * X25519 and HKDF are asynchronous thread-pool jobs (about eight per request on each side); these
 * are synchronous OpenSSL calls. Keys are node KeyObjects wrapped in the CryptoKey shape the
 * library passes around; their raw halves are kept for serialisation.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject, type webcrypto } from 'node:crypto';
import { DeserializeError, Dhkem, KemId, SerializeError } from '@hpke/common';
import type { DhkemPrimitives } from '@hpke/common';
import { NodeHkdfSha256 } from './native-primitives.js';

type Bytes = ArrayBufferLike | ArrayBufferView;
const u8 = (b: Bytes): Uint8Array => (ArrayBuffer.isView(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b));
const ab = (b: Uint8Array): ArrayBuffer => new Uint8Array(b).buffer;
/** PKCS#8 prefix of a raw X25519 private key (RFC 8410). */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A node KeyObject in the CryptoKey shape @hpke/core hands between its steps. */
class NodeX25519Key {
  readonly algorithm = { name: 'X25519' };
  readonly extractable = true;
  readonly usages: webcrypto.KeyUsage[];
  constructor(readonly type: 'public' | 'private', readonly keyObject: KeyObject, readonly raw: Uint8Array) {
    this.usages = type === 'private' ? ['deriveBits'] : [];
  }
}

const asNode = (k: unknown, type: 'public' | 'private'): NodeX25519Key => {
  if (!(k instanceof NodeX25519Key) || k.type !== type) throw new Error(`not an X25519 ${type} key of this suite`);
  return k;
};

function publicKeyOf(raw: Uint8Array): NodeX25519Key {
  if (raw.length !== 32) throw new Error('an X25519 public key is 32 bytes');
  return new NodeX25519Key('public', createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' }), new Uint8Array(raw));
}

function privateKeyOf(raw: Uint8Array): NodeX25519Key {
  if (raw.length !== 32) throw new Error('an X25519 private key is 32 bytes');
  return new NodeX25519Key('private', createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' }), new Uint8Array(raw));
}

function publicOfPrivate(k: NodeX25519Key): NodeX25519Key {
  const x = createPublicKey(k.keyObject).export({ format: 'jwk' }).x!;
  return publicKeyOf(new Uint8Array(Buffer.from(x, 'base64url')));
}

const cast = (k: NodeX25519Key) => k as unknown as webcrypto.CryptoKey;

class NodeX25519 implements DhkemPrimitives {
  constructor(private readonly hkdf: NodeHkdfSha256) {}

  async serializePublicKey(key: webcrypto.CryptoKey): Promise<ArrayBuffer> {
    try {
      return ab(asNode(key, 'public').raw);
    } catch (e) {
      throw new SerializeError(e);
    }
  }

  async deserializePublicKey(key: Bytes): Promise<webcrypto.CryptoKey> {
    try {
      return cast(publicKeyOf(u8(key)));
    } catch (e) {
      throw new DeserializeError(e);
    }
  }

  async serializePrivateKey(key: webcrypto.CryptoKey): Promise<ArrayBuffer> {
    try {
      return ab(asNode(key, 'private').raw);
    } catch (e) {
      throw new SerializeError(e);
    }
  }

  async deserializePrivateKey(key: Bytes): Promise<webcrypto.CryptoKey> {
    try {
      return cast(privateKeyOf(u8(key)));
    } catch (e) {
      throw new DeserializeError(e);
    }
  }

  async importKey(format: 'raw' | 'jwk', key: ArrayBuffer | webcrypto.JsonWebKey, isPublic: boolean): Promise<webcrypto.CryptoKey> {
    try {
      if (format !== 'raw' || !(key instanceof ArrayBuffer)) throw new Error('only raw X25519 keys are imported here');
      return cast(isPublic ? publicKeyOf(new Uint8Array(key)) : privateKeyOf(new Uint8Array(key)));
    } catch (e) {
      throw new DeserializeError(e);
    }
  }

  async generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    const d = new Uint8Array(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
    const x = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
    return { privateKey: cast(new NodeX25519Key('private', privateKey, d)), publicKey: cast(new NodeX25519Key('public', publicKey, x)) };
  }

  /** RFC 9180 DeriveKeyPair for X25519 (labels through the library's KDF). */
  async deriveKeyPair(ikm: Bytes): Promise<webcrypto.CryptoKeyPair> {
    const prk = await this.hkdf.labeledExtract(new ArrayBuffer(0), new TextEncoder().encode('dkp_prk'), u8(ikm));
    const sk = privateKeyOf(new Uint8Array(await this.hkdf.labeledExpand(prk, new TextEncoder().encode('sk'), new Uint8Array(0), 32)));
    return { privateKey: cast(sk), publicKey: cast(publicOfPrivate(sk)) };
  }

  async derivePublicKey(key: webcrypto.CryptoKey): Promise<webcrypto.CryptoKey> {
    try {
      return cast(publicOfPrivate(asNode(key, 'private')));
    } catch (e) {
      throw new DeserializeError(e);
    }
  }

  /** OpenSSL refuses a small-order peer key (all-zero shared secret), as RFC 9180 requires. */
  async dh(sk: webcrypto.CryptoKey, pk: webcrypto.CryptoKey): Promise<ArrayBuffer> {
    try {
      const out = diffieHellman({ privateKey: asNode(sk, 'private').keyObject, publicKey: asNode(pk, 'public').keyObject });
      return ab(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    } catch (e) {
      throw new SerializeError(e);
    }
  }
}

export class NodeDhkemX25519HkdfSha256 extends Dhkem {
  override readonly id = KemId.DhkemX25519HkdfSha256;
  override readonly secretSize = 32;
  override readonly encSize = 32;
  override readonly publicKeySize = 32;
  override readonly privateKeySize = 32;

  constructor() {
    const kdf = new NodeHkdfSha256();
    super(KemId.DhkemX25519HkdfSha256, new NodeX25519(kdf), kdf);
  }
}
