/**
 * The TA SDK: what a trusted-application author imports.
 *
 * A TA is a CommonJS-or-ESM TypeScript module whose default export is `defineTA({...})`.
 * The runtime supplies every capability through the call context; nothing else
 * (process, require, fs, network, Date.now, Math.random) is reachable inside an enclave.
 */

/** JSON values, plus binary data anywhere a value may stand. */
export type Value = null | boolean | number | string | Uint8Array | Value[] | { [key: string]: Value };

export type SealPolicy = 'unique' | 'product';

export interface SealOptions {
  /** `unique` binds the exact build (measurement); `product` binds signer and productId (survives upgrades). Default `product`. */
  policy?: SealPolicy;
  /** Additional authenticated data: the same context must be given to unseal. */
  context?: Uint8Array | string;
}

export interface UnsealOptions {
  context?: Uint8Array | string;
}

/** Sealed key-value storage private to this TA (keys: 1..128 chars of [A-Za-z0-9._-]). */
export interface TAStorage {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<boolean>;
  list(prefix?: string): Promise<string[]>;
}

export interface AttestOptions {
  /** Verifier-supplied freshness nonce (8..55 bytes, or its hex / base64url string, padding optional). */
  nonce: string | Uint8Array;
  /** Custom claims, included under the `claims` key of the evidence. */
  claims?: Record<string, Value>;
  /** A public key (JWK) of the TA that relying parties may encrypt or verify with. */
  publicKey?: JsonWebKeyPublic;
}

export interface JsonWebKeyPublic {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  [k: string]: unknown;
}

export interface TALogger {
  debug(message: string, fields?: Record<string, Value>): void;
  info(message: string, fields?: Record<string, Value>): void;
  warn(message: string, fields?: Record<string, Value>): void;
  error(message: string, fields?: Record<string, Value>): void;
}

/** Crypto primitives the trusted runtime gives TAs (keys stay inside the enclave). */
export interface TACrypto {
  sha256(data: Uint8Array | string): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array | string): Uint8Array;
  /** A fresh P-256 key pair: private key as PKCS#8 DER, public key as JWK. */
  generateKeyPair(alg: 'ES256'): { privateKey: Uint8Array; publicKey: JsonWebKeyPublic };
  /** ES256 signature (raw r||s, 64 bytes, as JWS uses) over `data` with a PKCS#8 private key. */
  sign(alg: 'ES256', privateKey: Uint8Array, data: Uint8Array | string): Uint8Array;
  verify(alg: 'ES256', publicKey: JsonWebKeyPublic, data: Uint8Array | string, signature: Uint8Array): boolean;
  /** A fresh X25519 key pair for HPKE: the raw 32-byte private key, the public key as an OKP JWK. */
  generateKeyPair(alg: 'X25519'): { privateKey: Uint8Array; publicKey: JsonWebKeyPublic };
  /**
   * Authenticated encryption with a 32-byte key: AES-256-GCM (`A256GCM`, 12-byte nonce) or
   * XChaCha20-Poly1305 (`XC20P`, 24-byte nonce, safe with random nonces). Returns ciphertext ‖ tag.
   */
  aeadSeal(alg: 'A256GCM' | 'XC20P', key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array | string, aad?: Uint8Array | string): Uint8Array;
  /** Throws SEAL_INTEGRITY unless key, nonce, AAD and every byte are right. */
  aeadOpen(alg: 'A256GCM' | 'XC20P', key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array | string): Uint8Array;
  /** HPKE (RFC 9180, X25519 / HKDF-SHA256 / AES-256-GCM, base mode) to a recipient's X25519 OKP JWK. */
  hpkeSeal(recipient: JsonWebKeyPublic, plaintext: Uint8Array | string, options?: { info?: Uint8Array | string; aad?: Uint8Array | string }): Promise<{ enc: Uint8Array; ciphertext: Uint8Array }>;
  hpkeOpen(privateKey: Uint8Array, enc: Uint8Array, ciphertext: Uint8Array, options?: { info?: Uint8Array | string; aad?: Uint8Array | string }): Promise<Uint8Array>;
}

/** Identity of the running TA, as measured and verified by the runtime. */
export interface TAInfo {
  readonly name: string;
  readonly uuid: string;
  readonly version: string;
  readonly measurement: string;
  readonly signerId: string;
  readonly productId: number;
  readonly securityVersion: number;
  readonly debug: boolean;
}

/** What every lifecycle hook and command receives. */
/** How the current command was called. */
export interface TACaller {
  /**
   * True when the call came as an HPKE envelope sealed to this TA's attested key: only the enclave
   * read the params, and only the caller reads the result. False for plain calls (and in hooks).
   */
  readonly confidential: boolean;
}

export interface TAContext {
  readonly ta: TAInfo;
  /** The current session; `undefined` in onCreate / onDestroy. */
  readonly session: { readonly id: string; readonly state: Record<string, unknown> } | undefined;
  readonly caller: TACaller;
  seal(data: Uint8Array, options?: SealOptions): Promise<Uint8Array>;
  unseal(blob: Uint8Array, options?: UnsealOptions): Promise<Uint8Array>;
  readonly storage: TAStorage;
  /** Evidence (an EAT as a JWT) about this TA, signed by the device attestation key. */
  attest(options: AttestOptions): Promise<string>;
  /** Cryptographically secure random bytes. */
  random(length: number): Uint8Array;
  readonly crypto: TACrypto;
  readonly log: TALogger;
  /** Wall-clock time from the untrusted host: fine for logs, never for security decisions. */
  readonly untrustedTime: { now(): number };
  /** Host calls (OCALLs) named in the manifest's `hostCalls`; any other name is refused. */
  readonly host: { call(name: string, args?: Value): Promise<Value> };
}

export type CommandHandler = (ctx: TAContext, params: Value) => Value | void | Promise<Value | void>;

export interface TADefinition {
  commands: Record<string, CommandHandler>;
  /** Once per instance, before any session. */
  onCreate?: (ctx: TAContext) => void | Promise<void>;
  /** Per session; may throw to refuse the session. */
  onOpenSession?: (ctx: TAContext, params: Value) => void | Promise<void>;
  onCloseSession?: (ctx: TAContext) => void | Promise<void>;
  onDestroy?: (ctx: TAContext) => void | Promise<void>;
}

/** Declare a TA. The module's default export must be the value returned. */
export function defineTA<T extends TADefinition>(definition: T): T {
  if (!definition || typeof definition !== 'object' || !definition.commands || typeof definition.commands !== 'object') {
    throw new TypeError('defineTA: `commands` must be an object of command handlers');
  }
  for (const [name, handler] of Object.entries(definition.commands)) {
    if (typeof handler !== 'function') throw new TypeError(`defineTA: command "${name}" is not a function`);
  }
  return definition;
}

/** Errors a TA may throw with a taxonomy code (e.g. ITEM_NOT_FOUND); anything else becomes TA_ERROR. */
export class TAError extends Error {
  readonly code: string;
  constructor(code: 'BAD_PARAMETERS' | 'ITEM_NOT_FOUND' | 'ACCESS_DENIED' | 'CONFLICT' | 'TA_ERROR', message: string) {
    super(message);
    this.name = 'TAError';
    this.code = code;
  }
}
export { utf8Encode, utf8Decode, base64urlEncode, base64urlDecode, hexEncode, canonicalJson } from './encoding.js';
