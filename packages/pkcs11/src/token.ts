/**
 * A logged-in session on one PKCS#11 token, and the operations the rest of enclave-edge needs:
 * non-extractable P-256 and HMAC keys generated in the token, raw ECDSA over a digest, in-token
 * HMAC-SHA256 and HKDF-Expand built on it.
 *
 * All operations on a token run one at a time through a queue: a PKCS#11 session allows one
 * active sign operation, and SignInit/Sign must not interleave with another caller's.
 * Signing and HMAC use pkcs11js' *Async calls so a slow secure element does not block the
 * event loop (that is why the module is initialised with CKF_OS_LOCKING_OK).
 */
import { readFileSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import { acquireModule, releaseModule, DEFAULT_MODULE_PATH } from './module.js';
import { parsePkcs11Uri, type Pkcs11Uri, type Pkcs11ObjectType } from './uri.js';
import { P256_EC_PARAMS, ecPointToRaw, p256SpkiFromRawPoint } from './der.js';

export type KeyClass = 'private' | 'public' | 'secret';

export interface Pkcs11Key {
  readonly handle: Buffer;
  readonly class: KeyClass;
  readonly label: string | undefined;
  readonly id: Uint8Array | undefined;
}

export interface OpenTokenOptions {
  /** RFC 7512 URI selecting the token (and, for convenience, the object used by `findKeyFromUri`). */
  uri: string;
  /** Overrides the URI's module-path, then env PKCS11_MODULE, then SoftHSM2's default path. */
  modulePath?: string;
  /** Overrides the URI's pin-value / pin-source and env PKCS11_PIN. */
  pin?: string;
}

export interface KeySelector {
  label?: string;
  id?: Uint8Array;
  class: KeyClass;
}

const CLASS_TO_CKO: Record<KeyClass, number> = {
  private: pkcs11js.CKO_PRIVATE_KEY,
  public: pkcs11js.CKO_PUBLIC_KEY,
  secret: pkcs11js.CKO_SECRET_KEY,
};

function classFromUriType(t: Pkcs11ObjectType | undefined): KeyClass | undefined {
  if (t === 'private') return 'private';
  if (t === 'public') return 'public';
  if (t === 'secret-key') return 'secret';
  return undefined;
}

function slotNumber(slot: Buffer): number {
  return slot.length >= 8 ? Number(slot.readBigUInt64LE(0)) : slot.readUInt32LE(0);
}

function resolvePin(parsed: Pkcs11Uri, explicit: string | undefined): string | undefined {
  if (explicit !== undefined) return explicit;
  if (parsed.pinValue !== undefined) return parsed.pinValue;
  if (parsed.pinSource !== undefined) {
    const path = parsed.pinSource.startsWith('file:') ? parsed.pinSource.slice('file:'.length).replace(/^\/\/(?=\/)/, '') : parsed.pinSource;
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new EnclaveEdgeError('CONFIG_INVALID', `cannot read PKCS#11 pin-source file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return process.env.PKCS11_PIN;
}

/** Map a native failure to the taxonomy without leaking anything but the CKR name. */
function native(what: string, err: unknown): EnclaveEdgeError {
  if (err instanceof EnclaveEdgeError) return err;
  const msg = String((err as Error)?.message ?? err);
  const ckr = /CKR_[A-Z_]+/.exec(msg)?.[0] ?? msg.split('\n')[0];
  const code = /PIN_INCORRECT|PIN_LEN_RANGE|PIN_INVALID/.test(msg)
    ? 'ACCESS_DENIED'
    : /USER_NOT_LOGGED_IN/.test(msg)
      ? 'ACCESS_DENIED'
      : /MECHANISM_INVALID|FUNCTION_NOT_SUPPORTED|KEY_TYPE_INCONSISTENT/.test(msg)
        ? 'NOT_SUPPORTED'
        : 'INTERNAL';
  return new EnclaveEdgeError(code, `PKCS#11 ${what} failed: ${ckr}`, { cause: err });
}

export class Pkcs11Token {
  readonly label: string;
  readonly slotId: number;
  readonly modulePath: string;
  /** Parsed URI used to open the token (PIN fields removed). */
  readonly uri: Pkcs11Uri;
  private lib: pkcs11js.PKCS11 | undefined;
  private session: Buffer | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  /** @internal use openToken() */
  constructor(lib: pkcs11js.PKCS11, session: Buffer, modulePath: string, label: string, slotId: number, uri: Pkcs11Uri) {
    this.lib = lib;
    this.session = session;
    this.modulePath = modulePath;
    this.label = label;
    this.slotId = slotId;
    this.uri = uri;
  }

  get closed(): boolean {
    return this.session === undefined;
  }

  /** Run token operations one at a time. */
  private run<T>(what: string, fn: (lib: pkcs11js.PKCS11, session: Buffer) => T | Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (!this.lib || !this.session) throw new EnclaveEdgeError('UNAVAILABLE', `PKCS#11 token "${this.label}" is closed`);
      try {
        return await fn(this.lib, this.session);
      } catch (err) {
        throw native(what, err);
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private describe(lib: pkcs11js.PKCS11, session: Buffer, handle: Buffer, cls: KeyClass): Pkcs11Key {
    const [label, id] = lib.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_ID }]);
    const l = label?.value?.length ? label.value.toString('utf8') : undefined;
    const i = id?.value?.length ? new Uint8Array(id.value) : undefined;
    return { handle, class: cls, label: l, id: i };
  }

  private findAll(lib: pkcs11js.PKCS11, session: Buffer, sel: KeySelector): Pkcs11Key[] {
    const template: pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: CLASS_TO_CKO[sel.class] }];
    if (sel.label !== undefined) template.push({ type: pkcs11js.CKA_LABEL, value: sel.label });
    if (sel.id !== undefined) template.push({ type: pkcs11js.CKA_ID, value: Buffer.from(sel.id) });
    lib.C_FindObjectsInit(session, template);
    let handles: Buffer[];
    try {
      handles = lib.C_FindObjects(session, 16);
    } finally {
      lib.C_FindObjectsFinal(session);
    }
    return handles.map((h) => this.describe(lib, session, h, sel.class));
  }

  /** The one key matching the selector, or undefined; several matches are an error (ambiguous). */
  findKey(sel: KeySelector): Promise<Pkcs11Key | undefined> {
    if (sel.label === undefined && sel.id === undefined) {
      return Promise.reject(new EnclaveEdgeError('BAD_PARAMETERS', 'findKey needs a label or an id'));
    }
    return this.run('find', (lib, s) => {
      const found = this.findAll(lib, s, sel);
      if (found.length > 1) {
        throw new EnclaveEdgeError('CONFLICT', `${found.length} ${sel.class} keys match ${sel.label !== undefined ? `label "${sel.label}"` : 'the id'} on token "${this.label}"`);
      }
      return found[0];
    });
  }

  /** The key named by the URI's object/id/type (type defaults to `private`). */
  async findKeyFromUri(uri?: string): Promise<Pkcs11Key> {
    const p = uri === undefined ? this.uri : parsePkcs11Uri(uri);
    const cls = classFromUriType(p.type) ?? 'private';
    if (p.object === undefined && p.id === undefined) throw new EnclaveEdgeError('CONFIG_INVALID', 'the PKCS#11 URI names no object (add object=… or id=…)');
    const key = await this.findKey({ class: cls, label: p.object, id: p.id });
    if (!key) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no ${cls} key ${p.object !== undefined ? `"${p.object}"` : 'with that id'} on token "${this.label}"`);
    return key;
  }

  /** A persistent, non-extractable P-256 key pair generated inside the token. */
  generateEcKeyPair(opts: { label: string; id?: Uint8Array; persistent?: boolean }): Promise<{ privateKey: Pkcs11Key; publicKey: Pkcs11Key }> {
    return this.run('EC key generation', (lib, s) => {
      const token = opts.persistent ?? true;
      const id = Buffer.from(opts.id ?? Buffer.from(opts.label, 'utf8'));
      const pub: pkcs11js.Template = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
        { type: pkcs11js.CKA_TOKEN, value: token },
        { type: pkcs11js.CKA_LABEL, value: opts.label },
        { type: pkcs11js.CKA_ID, value: id },
        { type: pkcs11js.CKA_EC_PARAMS, value: P256_EC_PARAMS },
        { type: pkcs11js.CKA_VERIFY, value: true },
      ];
      const priv: pkcs11js.Template = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
        { type: pkcs11js.CKA_TOKEN, value: token },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_LABEL, value: opts.label },
        { type: pkcs11js.CKA_ID, value: id },
        { type: pkcs11js.CKA_SIGN, value: true },
      ];
      const kp = lib.C_GenerateKeyPair(s, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN }, pub, priv);
      return {
        privateKey: { handle: kp.privateKey, class: 'private' as const, label: opts.label, id: new Uint8Array(id) },
        publicKey: { handle: kp.publicKey, class: 'public' as const, label: opts.label, id: new Uint8Array(id) },
      };
    });
  }

  /** A persistent, non-extractable 256-bit generic secret usable with CKM_SHA256_HMAC. */
  generateSecretKey(opts: { label: string; id?: Uint8Array; persistent?: boolean; bytes?: number }): Promise<Pkcs11Key> {
    return this.run('secret key generation', (lib, s) => {
      const id = Buffer.from(opts.id ?? Buffer.from(opts.label, 'utf8'));
      const handle = lib.C_GenerateKey(s, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
        { type: pkcs11js.CKA_TOKEN, value: opts.persistent ?? true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_VALUE_LEN, value: opts.bytes ?? 32 },
        { type: pkcs11js.CKA_SIGN, value: true },
        { type: pkcs11js.CKA_VERIFY, value: true },
        { type: pkcs11js.CKA_LABEL, value: opts.label },
        { type: pkcs11js.CKA_ID, value: id },
      ]);
      return { handle, class: 'secret' as const, label: opts.label, id: new Uint8Array(id) };
    });
  }

  /** Find the key, or generate it if absent (first start). */
  async getOrCreateEcKeyPair(label: string): Promise<{ privateKey: Pkcs11Key; publicKey: Pkcs11Key; created: boolean }> {
    const privateKey = await this.findKey({ class: 'private', label });
    if (privateKey) {
      const publicKey = await this.findKey({ class: 'public', label });
      if (!publicKey) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `token "${this.label}" holds private key "${label}" but not its public key`);
      return { privateKey, publicKey, created: false };
    }
    return { ...(await this.generateEcKeyPair({ label })), created: true };
  }

  async getOrCreateSecretKey(label: string): Promise<{ key: Pkcs11Key; created: boolean }> {
    const key = await this.findKey({ class: 'secret', label });
    if (key) return { key, created: false };
    return { key: await this.generateSecretKey({ label }), created: true };
  }

  /** Whether the token marks the key sensitive and non-extractable (what we promise). */
  keyProtection(key: Pkcs11Key): Promise<{ sensitive: boolean; extractable: boolean; neverExtractable: boolean }> {
    return this.run('attribute read', (lib, s) => {
      const [sens, ext, never] = lib.C_GetAttributeValue(s, key.handle, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]);
      return { sensitive: !!sens?.value[0], extractable: !!ext?.value[0], neverExtractable: !!never?.value[0] };
    });
  }

  /** SPKI DER of an EC public key; given a private key, its public half is found by CKA_ID/label. */
  async exportEcPublicKeySpki(key: Pkcs11Key): Promise<Uint8Array> {
    let pub = key;
    if (key.class !== 'public') {
      const found = await this.findKey({ class: 'public', id: key.id, label: key.id === undefined ? key.label : undefined });
      if (!found) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no public key on token "${this.label}" pairs with "${key.label ?? 'the key'}"`);
      pub = found;
    }
    return this.run('public key export', (lib, s) => {
      const [pt] = lib.C_GetAttributeValue(s, pub.handle, [{ type: pkcs11js.CKA_EC_POINT }]);
      if (!pt?.value?.length) throw new EnclaveEdgeError('BAD_FORMAT', 'the public key has no CKA_EC_POINT');
      return new Uint8Array(p256SpkiFromRawPoint(ecPointToRaw(pt.value)));
    });
  }

  /** ECDSA P-256 over a 32-byte SHA-256 digest: raw r||s (64 bytes, JWS/ES256 form). CKM_ECDSA: hash in Node. */
  ecdsaSignDigest(key: Pkcs11Key, digest: Uint8Array): Promise<Uint8Array> {
    if (key.class !== 'private') return Promise.reject(new EnclaveEdgeError('BAD_PARAMETERS', 'ecdsaSignDigest needs a private key'));
    if (digest.length !== 32) return Promise.reject(new EnclaveEdgeError('BAD_PARAMETERS', `ecdsaSignDigest needs a 32-byte SHA-256 digest, got ${digest.length} bytes`));
    return this.run('ECDSA sign', async (lib, s) => {
      lib.C_SignInit(s, { mechanism: pkcs11js.CKM_ECDSA }, key.handle);
      const sig = await lib.C_SignAsync(s, Buffer.from(digest), Buffer.alloc(64));
      if (sig.length !== 64) throw new EnclaveEdgeError('INTERNAL', `token returned a ${sig.length}-byte ECDSA signature (expected 64)`);
      return new Uint8Array(sig);
    });
  }

  /** HMAC-SHA256 computed inside the token with a secret key. */
  hmacSha256(key: Pkcs11Key, data: Uint8Array): Promise<Uint8Array> {
    if (key.class !== 'secret') return Promise.reject(new EnclaveEdgeError('BAD_PARAMETERS', 'hmacSha256 needs a secret key'));
    return this.run('HMAC', async (lib, s) => {
      lib.C_SignInit(s, { mechanism: pkcs11js.CKM_SHA256_HMAC }, key.handle);
      const mac = await lib.C_SignAsync(s, Buffer.from(data), Buffer.alloc(32));
      return new Uint8Array(mac);
    });
  }

  /**
   * HKDF-Expand (RFC 5869 §2.3) with the in-token key as PRK. The key is generated uniformly
   * at random inside the token, so the Extract step (which only concentrates entropy) is skipped.
   */
  async hkdfExpandSha256(key: Pkcs11Key, info: Uint8Array, length: number): Promise<Uint8Array> {
    if (!Number.isInteger(length) || length < 1 || length > 255 * 32) throw new EnclaveEdgeError('BAD_PARAMETERS', 'HKDF length must be 1..8160');
    const out = new Uint8Array(length);
    let prev = new Uint8Array(0);
    for (let i = 1, off = 0; off < length; i++) {
      const input = new Uint8Array(prev.length + info.length + 1);
      input.set(prev, 0);
      input.set(info, prev.length);
      input[input.length - 1] = i;
      prev = new Uint8Array(await this.hmacSha256(key, input));
      out.set(prev.subarray(0, Math.min(32, length - off)), off);
      off += 32;
    }
    return out;
  }

  destroyKey(key: Pkcs11Key): Promise<void> {
    return this.run('destroy', (lib, s) => lib.C_DestroyObject(s, key.handle));
  }

  /** Close the session; the module is finalised when its last user closes. Safe to call twice. */
  async close(): Promise<void> {
    await this.queue;
    const lib = this.lib;
    const session = this.session;
    this.lib = undefined;
    this.session = undefined;
    if (!lib || !session) return;
    try { lib.C_CloseSession(session); } catch { /* the module may already be gone */ }
    releaseModule(this.modulePath);
  }
}

/** Open (and log in to) the token a PKCS#11 URI names. */
export async function openToken(opts: OpenTokenOptions): Promise<Pkcs11Token> {
  const parsed = parsePkcs11Uri(opts.uri);
  const modulePath = opts.modulePath ?? parsed.modulePath ?? process.env.PKCS11_MODULE ?? DEFAULT_MODULE_PATH;
  const pin = resolvePin(parsed, opts.pin);
  const lib = acquireModule(modulePath);
  let session: Buffer | undefined;
  try {
    const candidates: { slot: Buffer; label: string }[] = [];
    for (const slot of lib.C_GetSlotList(true)) {
      const info = lib.C_GetTokenInfo(slot);
      if (!(info.flags & pkcs11js.CKF_TOKEN_INITIALIZED)) continue;
      const label = info.label.trimEnd();
      if (parsed.token !== undefined && label !== parsed.token) continue;
      if (parsed.serial !== undefined && info.serialNumber.trimEnd() !== parsed.serial) continue;
      if (parsed.manufacturer !== undefined && info.manufacturerID.trimEnd() !== parsed.manufacturer) continue;
      if (parsed.model !== undefined && info.model.trimEnd() !== parsed.model) continue;
      if (parsed.slotId !== undefined && slotNumber(slot) !== parsed.slotId) continue;
      candidates.push({ slot, label });
    }
    if (candidates.length === 0) {
      throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no initialised PKCS#11 token matches ${parsed.token !== undefined ? `token "${parsed.token}"` : 'the URI'} in ${modulePath}`);
    }
    if (candidates.length > 1) {
      throw new EnclaveEdgeError('CONFIG_INVALID', `${candidates.length} PKCS#11 tokens match the URI; name one with token=… or serial=…`);
    }
    const { slot, label } = candidates[0]!;
    try {
      session = lib.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    } catch (err) {
      throw native('open session', err);
    }
    if (pin !== undefined) {
      try {
        lib.C_Login(session, pkcs11js.CKU_USER, pin);
      } catch (err) {
        // Login state is per application and token: another handle may have logged in already.
        if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String((err as Error).message))) {
          throw native(`login to token "${label}"`, err);
        }
      }
    }
    const { pinValue: _v, pinSource: _s, ...safe } = parsed;
    return new Pkcs11Token(lib, session, modulePath, label, slotNumber(slot), safe);
  } catch (err) {
    if (session) {
      try { lib.C_CloseSession(session); } catch { /* failing anyway */ }
    }
    releaseModule(modulePath);
    throw toEnclaveEdgeError(err);
  }
}
