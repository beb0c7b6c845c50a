/**
 * A FAKE TA context for unit tests only. It runs in the test process with no isolation, keeps
 * "sealed" data under a throw-away in-memory key, and its "evidence" is an unsigned token that
 * no verifier accepts. The real context comes from the enclave runtime (@enclave-edge/enclave).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { aeadOpen, aeadSeal, hpkeOpen, hpkeSeal, x25519KeyPair } from '@enclave-edge/confidential/ta-crypto';
import type { TAManifest } from '@enclave-edge/bundle';
import type { JsonWebKeyPublic, TAContext, TAInfo, TALogger, Value } from '@enclave-edge/ta-sdk';

export interface FakeContextForTestsOptions {
  manifest: TAManifest;
  measurement: string;
  signerId?: string;
  /** Host call handlers; only names listed in the manifest's hostCalls are reachable. */
  hostCalls?: Record<string, (args: Value) => Value | Promise<Value>>;
  /** What `ctx.caller.confidential` says (default false: a plain call). */
  confidential?: boolean;
}

export interface FakeContextForTests extends TAContext {
  /** Log lines the TA wrote, for assertions. */
  readonly logs: { level: string; message: string; fields?: Record<string, Value> }[];
  /** The raw fake storage, for assertions (values are what the TA stored). */
  readonly storageForTests: Map<string, Uint8Array>;
  withSession(session: TAContext['session']): FakeContextForTests;
}

const bytes = (d: Uint8Array | string) => (typeof d === 'string' ? Buffer.from(d, 'utf8') : Buffer.from(d.buffer, d.byteOffset, d.byteLength));
const KEY_RE = /^[A-Za-z0-9._-]{1,128}$/;

export function fakeContextForTests(opts: FakeContextForTestsOptions): FakeContextForTests {
  const sealKey = randomBytes(32);
  const store = new Map<string, Uint8Array>();
  const logs: FakeContextForTests['logs'] = [];
  const m = opts.manifest;
  const ta: TAInfo = Object.freeze({
    name: m.name, uuid: m.uuid, version: m.version, measurement: opts.measurement, signerId: opts.signerId ?? '0'.repeat(64),
    productId: m.productId, securityVersion: m.securityVersion, debug: m.debug,
  });
  const checkKey = (k: string) => {
    if (!KEY_RE.test(k)) throw new EnclaveEdgeError('BAD_PARAMETERS', `storage key "${k}" must be 1..128 chars of [A-Za-z0-9._-]`);
  };
  const log = (level: string) => (message: string, fields?: Record<string, Value>) => void logs.push(fields ? { level, message, fields } : { level, message });
  const logger: TALogger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };

  const make = (session: TAContext['session']): FakeContextForTests => ({
    ta,
    session,
    caller: Object.freeze({ confidential: opts.confidential ?? false }),
    logs,
    storageForTests: store,
    withSession: make,
    async seal(data, o) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', sealKey, iv);
      c.setAAD(bytes(o?.context ?? ''));
      const ct = Buffer.concat([c.update(bytes(data)), c.final()]);
      return new Uint8Array(Buffer.concat([iv, c.getAuthTag(), ct]));
    },
    async unseal(blob, o) {
      try {
        const b = bytes(blob);
        const d = createDecipheriv('aes-256-gcm', sealKey, b.subarray(0, 12));
        d.setAAD(bytes(o?.context ?? ''));
        d.setAuthTag(b.subarray(12, 28));
        return new Uint8Array(Buffer.concat([d.update(b.subarray(28)), d.final()]));
      } catch {
        throw new EnclaveEdgeError('SEAL_INTEGRITY', 'sealed blob failed its integrity check (fake context)');
      }
    },
    storage: {
      async get(k) { checkKey(k); const v = store.get(k); return v && new Uint8Array(v); },
      async put(k, v) { checkKey(k); store.set(k, new Uint8Array(v)); },
      async delete(k) { checkKey(k); return store.delete(k); },
      async list(prefix = '') { return [...store.keys()].filter((k) => k.startsWith(prefix)).sort(); },
    },
    async attest(a) {
      const claims = { tee: 'fake-for-tests', unique_id: ta.measurement, signer_id: ta.signerId, eat_nonce: typeof a.nonce === 'string' ? a.nonce : bytes(a.nonce).toString('base64url'), claims: a.claims ?? {} };
      return `${Buffer.from('{"alg":"none","typ":"fake-for-tests"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    },
    random: (n) => new Uint8Array(randomBytes(n)),
    crypto: {
      sha256: (d) => new Uint8Array(createHash('sha256').update(bytes(d)).digest()),
      hmacSha256: (k, d) => new Uint8Array(createHmac('sha256', bytes(k)).update(bytes(d)).digest()),
      generateKeyPair(alg: 'ES256' | 'X25519') {
        if (alg === 'X25519') return x25519KeyPair() as { privateKey: Uint8Array; publicKey: JsonWebKeyPublic };
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        return { privateKey: new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' })), publicKey: publicKey.export({ format: 'jwk' }) as JsonWebKeyPublic };
      },
      sign: (_alg, pk, d) => new Uint8Array(sign('sha256', bytes(d), { key: createPrivateKey({ key: bytes(pk), format: 'der', type: 'pkcs8' }), dsaEncoding: 'ieee-p1363' })),
      verify: (_alg, jwk, d, s) => verify('sha256', bytes(d), { key: createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, bytes(s)),
      // The enclave's own implementation: these are real, only the context around them is fake.
      aeadSeal: (alg, k, n, p, aad) => aeadSeal(alg, k, n, bytes(p), aad === undefined ? undefined : bytes(aad)),
      aeadOpen: (alg, k, n, c, aad) => aeadOpen(alg, k, n, c, aad === undefined ? undefined : bytes(aad)),
      hpkeSeal: (r, p, o) => hpkeSeal(r, bytes(p), { ...(o?.info !== undefined ? { info: bytes(o.info) } : {}), ...(o?.aad !== undefined ? { aad: bytes(o.aad) } : {}) }),
      hpkeOpen: (k, e, c, o) => hpkeOpen(k, e, c, { ...(o?.info !== undefined ? { info: bytes(o.info) } : {}), ...(o?.aad !== undefined ? { aad: bytes(o.aad) } : {}) }),
    },
    log: logger,
    untrustedTime: { now: () => Date.now() },
    host: {
      async call(name, args) {
        const h = opts.hostCalls?.[name];
        if (!m.hostCalls.includes(name) || !h) throw new EnclaveEdgeError('ACCESS_DENIED', `host call "${name}" is not allowed by the manifest`);
        return h(args ?? null);
      },
    },
  });
  return make(undefined);
}
