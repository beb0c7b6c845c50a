/**
 * A second, independent HPKE base-mode sender for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
 * AES-256-GCM (or AES-128-GCM, for the RFC vector), written from RFC 9180 §4-5 with node:crypto only. Tests use it to show that an
 * envelope from another implementation opens; it is checked against the RFC vectors itself.
 * Test-only: the product uses @hpke/core.
 */
import { createCipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';

const te = (s: string) => Buffer.from(s, 'utf8');
const i2osp = (n: number, len: number) => {
  const b = Buffer.alloc(len);
  b.writeUIntBE(n, 0, len);
  return b;
};
const KEM_SUITE = Buffer.concat([te('KEM'), i2osp(0x20, 2)]);

const extract = (salt: Buffer, ikm: Buffer) => createHmac('sha256', salt.length ? salt : Buffer.alloc(32)).update(ikm).digest();
function expand(prk: Buffer, info: Buffer, len: number): Buffer {
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(out).length < len; i++) {
    t = createHmac('sha256', prk).update(Buffer.concat([t, info, Buffer.from([i])])).digest();
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, len);
}
const labeledExtract = (suite: Buffer, salt: Buffer, label: string, ikm: Buffer) => extract(salt, Buffer.concat([te('HPKE-v1'), suite, te(label), ikm]));
const labeledExpand = (suite: Buffer, prk: Buffer, label: string, info: Buffer, len: number) =>
  expand(prk, Buffer.concat([i2osp(len, 2), te('HPKE-v1'), suite, te(label), info]), len);

const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
export const x25519Public = (raw: Uint8Array) => createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' });
export const x25519Private = (raw: Uint8Array) => createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' });
const rawOf = (k: KeyObject) => (k.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12);

export interface InteropSender {
  enc: Buffer;
  seal(aad: Uint8Array, pt: Uint8Array): Buffer;
  export(ctx: Uint8Array, len: number): Buffer;
}

/** SetupBaseS; `ephemeral` (raw 32-byte private key) only to reproduce the RFC vectors. */
export function interopSetupBaseS(pkR: Uint8Array, info: Uint8Array, ephemeral?: Uint8Array, aead: 'aes-128-gcm' | 'aes-256-gcm' = 'aes-256-gcm'): InteropSender {
  const nk = aead === 'aes-128-gcm' ? 16 : 32;
  const HPKE_SUITE = Buffer.concat([te('HPKE'), i2osp(0x20, 2), i2osp(1, 2), i2osp(nk === 16 ? 1 : 2, 2)]);
  const skE = ephemeral ? x25519Private(ephemeral) : generateKeyPairSync('x25519').privateKey;
  const enc = rawOf(createPublicKey(skE));
  const dh = diffieHellman({ privateKey: skE, publicKey: x25519Public(pkR) });
  const kemContext = Buffer.concat([enc, Buffer.from(pkR)]);
  const eaePrk = labeledExtract(KEM_SUITE, Buffer.alloc(0), 'eae_prk', dh);
  const shared = labeledExpand(KEM_SUITE, eaePrk, 'shared_secret', kemContext, 32);
  const pskIdHash = labeledExtract(HPKE_SUITE, Buffer.alloc(0), 'psk_id_hash', Buffer.alloc(0));
  const infoHash = labeledExtract(HPKE_SUITE, Buffer.alloc(0), 'info_hash', Buffer.from(info));
  const ksContext = Buffer.concat([Buffer.from([0]), pskIdHash, infoHash]);
  const secret = labeledExtract(HPKE_SUITE, shared, 'secret', Buffer.alloc(0));
  const key = labeledExpand(HPKE_SUITE, secret, 'key', ksContext, nk);
  const baseNonce = labeledExpand(HPKE_SUITE, secret, 'base_nonce', ksContext, 12);
  const exporterSecret = labeledExpand(HPKE_SUITE, secret, 'exp', ksContext, 32);
  let seq = 0;
  return {
    enc,
    seal(aad, pt) {
      const nonce = Buffer.from(baseNonce);
      nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ seq++) >>> 0, 8);
      const c = createCipheriv(aead, key, nonce);
      c.setAAD(aad);
      return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
    },
    export(ctx, len) {
      return labeledExpand(HPKE_SUITE, exporterSecret, 'sec', Buffer.from(ctx), len);
    },
  };
}
