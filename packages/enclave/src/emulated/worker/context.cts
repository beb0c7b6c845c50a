/**
 * The TA context: capabilities built outside the compartment and handed in hardened.
 * Crypto and randomness run here in the worker (keys never leave it); seal, storage, attest
 * and host calls go to the enclave host, which binds them to the TA's identity.
 */
import type * as NodeCrypto from 'node:crypto';
import type { Value, TAContext, TACaller, JsonWebKeyPublic } from '@enclave-edge/ta-sdk';
import type { WorkerInit } from '../wire/protocol.cjs';
import type { LogLevel } from '../../contract.js';
import { copyValue, isProblem } from '../wire/values.cjs';
import { ServiceRpc, codedError } from './rpc.cjs';
import type { LogPoster } from './log-poster.cjs';
import { LOG_MAX_FIELDS_BYTES, LOG_MAX_MESSAGE } from '../wire/log-limiter.cjs';
import { PrivateKeyCache } from './private-key-cache.cjs';

declare const harden: <T>(v: T) => T;

// node:crypto loads on first use: most TAs never touch it, and it costs a few ms of every cold start.
let cryptoModule: typeof NodeCrypto | undefined;
const nc = (): typeof NodeCrypto => (cryptoModule ??= require('node:crypto') as typeof NodeCrypto);
const signingKeys = new PrivateKeyCache(nc);
// AEAD and HPKE load on first use too (see @enclave-edge/confidential/ta-crypto for which library does what).
let taCryptoModule: typeof import('@enclave-edge/confidential/ta-crypto') | undefined;
const taCrypto = () => (taCryptoModule ??= require('@enclave-edge/confidential/ta-crypto') as typeof import('@enclave-edge/confidential/ta-crypto'));

function hpkeOptions(o: unknown): { info?: Uint8Array; aad?: Uint8Array } {
  if (o === undefined || o === null) return {};
  if (typeof o !== 'object') throw codedError('BAD_PARAMETERS', 'HPKE options must be { info?, aad? }');
  const { info, aad } = o as { info?: unknown; aad?: unknown };
  const i = optionalBytes(info, 'HPKE info');
  const a = optionalBytes(aad, 'HPKE aad');
  return { ...(i ? { info: i } : {}), ...(a ? { aad: a } : {}) };
}

const MAX_RANDOM = 1 << 20;
const STORAGE_KEY = /^[A-Za-z0-9._-]{1,128}$/;
const encoder = new TextEncoder();

function bytesOf(data: unknown, what: string): Uint8Array {
  if (typeof data === 'string') return encoder.encode(data);
  if (data instanceof Uint8Array) return new Uint8Array(data);
  throw codedError('BAD_PARAMETERS', `${what} must be a Uint8Array or a string`);
}

function optionalBytes(data: unknown, what: string): Uint8Array | undefined {
  return data === undefined || data === null ? undefined : bytesOf(data, what);
}

function fresh(b: Uint8Array): Uint8Array {
  return new Uint8Array(b); // never hand a Node Buffer (mutable, unhardened prototype) to the TA
}

function storageKey(key: unknown): string {
  if (typeof key !== 'string' || !STORAGE_KEY.test(key)) throw codedError('BAD_PARAMETERS', 'storage keys are 1..128 characters of A-Z, a-z, 0-9, ".", "_", "-"');
  return key;
}

export type ContextBase = Omit<TAContext, 'session' | 'caller'>;

/** `encryptionKey`: the TA's HPKE public key, bound in evidence when the TA binds no key of its own. */
export function makeContextBase(init: WorkerInit, logs: LogPoster, rpc: ServiceRpc, maxPayloadBytes: number, encryptionKey?: () => Promise<JsonWebKeyPublic>): ContextBase {
  const log = (level: LogLevel) => (message: unknown, fields?: unknown) => {
    const text = typeof message === 'string' ? message : String(message);
    let f: Record<string, Value> | undefined;
    let fieldBytes = 0;
    if (fields !== undefined) {
      const c = copyValue(fields, LOG_MAX_FIELDS_BYTES, 'log fields');
      if (!isProblem(c) && c.value && typeof c.value === 'object' && !Array.isArray(c.value) && !(c.value instanceof Uint8Array)) {
        f = c.value as Record<string, Value>;
        fieldBytes = c.bytes;
      }
    }
    const m = text.slice(0, LOG_MAX_MESSAGE);
    logs.post(level, m, f, m.length + fieldBytes);
  };
  const hostCalls = new Set(init.manifest.hostCalls);

  const base: ContextBase = {
    ta: { ...init.ta },
    async seal(data, options) {
      const policy = options?.policy ?? 'product';
      if (policy !== 'product' && policy !== 'unique') throw codedError('BAD_PARAMETERS', 'seal policy must be "unique" or "product"');
      const ctx = optionalBytes(options?.context, 'seal context');
      return (await rpc.call('seal', [bytesOf(data, 'seal data'), policy, ctx ?? null])) as Uint8Array;
    },
    async unseal(blob, options) {
      const ctx = optionalBytes(options?.context, 'unseal context');
      return (await rpc.call('unseal', [bytesOf(blob, 'sealed blob'), ctx ?? null])) as Uint8Array;
    },
    storage: {
      async get(key) {
        const v = await rpc.call('storage.get', [storageKey(key)]);
        return v === null || v === undefined ? undefined : (v as Uint8Array);
      },
      async put(key, value) {
        await rpc.call('storage.put', [storageKey(key), bytesOf(value, 'storage value')]);
      },
      async delete(key) {
        return (await rpc.call('storage.delete', [storageKey(key)])) === true;
      },
      async list(prefix) {
        if (prefix !== undefined && typeof prefix !== 'string') throw codedError('BAD_PARAMETERS', 'storage.list prefix must be a string');
        return (await rpc.call('storage.list', [prefix ?? null])) as string[];
      },
    },
    async attest(options) {
      if (!options || typeof options !== 'object') throw codedError('BAD_PARAMETERS', 'attest needs { nonce }');
      const nonce = options.nonce;
      if (typeof nonce !== 'string' && !(nonce instanceof Uint8Array)) throw codedError('BAD_PARAMETERS', 'attest nonce must be a string or Uint8Array');
      const publicKey = options.publicKey ?? (encryptionKey ? await encryptionKey() : undefined);
      const extra = copyValue({ claims: options.claims ?? null, publicKey: (publicKey as unknown as Value) ?? null }, maxPayloadBytes, 'attest options');
      if (isProblem(extra)) throw codedError(extra.code, extra.message);
      return (await rpc.call('attest', [nonce instanceof Uint8Array ? fresh(nonce) : nonce, extra.value])) as string;
    },
    random(length) {
      if (!Number.isInteger(length) || length < 0 || length > MAX_RANDOM) throw codedError('BAD_PARAMETERS', `random length must be an integer 0..${MAX_RANDOM}`);
      const out = new Uint8Array(length);
      for (let off = 0; off < length; off += 65536) nc().getRandomValues(out.subarray(off, Math.min(length, off + 65536)));
      return out;
    },
    crypto: {
      sha256(data) {
        return fresh(nc().createHash('sha256').update(bytesOf(data, 'sha256 data')).digest());
      },
      hmacSha256(key, data) {
        return fresh(nc().createHmac('sha256', bytesOf(key, 'hmac key')).update(bytesOf(data, 'hmac data')).digest());
      },
      generateKeyPair(alg: 'ES256' | 'X25519') {
        if (alg === 'X25519') {
          const k = taCrypto().x25519KeyPair();
          return { privateKey: fresh(k.privateKey), publicKey: { ...k.publicKey } as JsonWebKeyPublic };
        }
        if (alg !== 'ES256') throw codedError('NOT_SUPPORTED', `generateKeyPair: only ES256 and X25519 are supported, not ${String(alg)}`);
        const { privateKey, publicKey } = nc().generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const jwk = publicKey.export({ format: 'jwk' });
        return { privateKey: fresh(privateKey.export({ format: 'der', type: 'pkcs8' })), publicKey: { kty: 'EC', crv: 'P-256', x: String(jwk.x), y: String(jwk.y) } };
      },
      sign(alg, privateKey, data) {
        if (alg !== 'ES256') throw codedError('NOT_SUPPORTED', `sign: only ES256 is supported, not ${String(alg)}`);
        let key: NodeCrypto.KeyObject;
        try {
          key = signingKeys.get(bytesOf(privateKey, 'private key'));
        } catch {
          throw codedError('BAD_PARAMETERS', 'sign: the private key is not a PKCS#8 DER P-256 key');
        }
        return fresh(nc().sign('sha256', bytesOf(data, 'sign data'), { key, dsaEncoding: 'ieee-p1363' }));
      },
      verify(alg, publicKey, data, signature) {
        if (alg !== 'ES256') throw codedError('NOT_SUPPORTED', `verify: only ES256 is supported, not ${String(alg)}`);
        let key: NodeCrypto.KeyObject;
        try {
          const j = publicKey as JsonWebKeyPublic;
          key = nc().createPublicKey({ key: { kty: String(j.kty), crv: String(j.crv), x: String(j.x), y: String(j.y) }, format: 'jwk' });
        } catch {
          throw codedError('BAD_PARAMETERS', 'verify: the public key is not a P-256 JWK');
        }
        return nc().verify('sha256', bytesOf(data, 'verify data'), { key, dsaEncoding: 'ieee-p1363' }, bytesOf(signature, 'signature'));
      },
      aeadSeal(alg, key, nonce, plaintext, aad) {
        return fresh(taCrypto().aeadSeal(alg, bytesOf(key, 'AEAD key'), bytesOf(nonce, 'AEAD nonce'), bytesOf(plaintext, 'AEAD plaintext'), optionalBytes(aad, 'AEAD aad')));
      },
      aeadOpen(alg, key, nonce, ciphertext, aad) {
        return fresh(taCrypto().aeadOpen(alg, bytesOf(key, 'AEAD key'), bytesOf(nonce, 'AEAD nonce'), bytesOf(ciphertext, 'AEAD ciphertext'), optionalBytes(aad, 'AEAD aad')));
      },
      async hpkeSeal(recipient, plaintext, options) {
        const r = await taCrypto().hpkeSeal(recipient, bytesOf(plaintext, 'HPKE plaintext'), hpkeOptions(options));
        return { enc: fresh(r.enc), ciphertext: fresh(r.ciphertext) };
      },
      async hpkeOpen(privateKey, enc, ciphertext, options) {
        return fresh(await taCrypto().hpkeOpen(bytesOf(privateKey, 'HPKE private key'), bytesOf(enc, 'HPKE enc'), bytesOf(ciphertext, 'HPKE ciphertext'), hpkeOptions(options)));
      },
    },
    log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    untrustedTime: { now: () => Date.now() },
    host: {
      async call(name, args) {
        if (typeof name !== 'string' || !hostCalls.has(name)) {
          throw codedError('ACCESS_DENIED', `host call "${String(name)}" is not allowed: the manifest's hostCalls does not list it`);
        }
        const a = copyValue(args === undefined ? null : args, maxPayloadBytes, 'host call arguments');
        if (isProblem(a)) throw codedError(a.code, a.message);
        return (await rpc.call('host', [name, a.value])) as Value;
      },
    },
  };
  return typeof harden === 'function' ? harden(base) : Object.freeze(base);
}

const PLAIN: TACaller = Object.freeze({ confidential: false });

export function contextFor(base: ContextBase, session: TAContext['session'], caller: TACaller = PLAIN): TAContext {
  return Object.freeze({ ...base, session, caller });
}
