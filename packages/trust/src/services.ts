/**
 * TrustServices for the ta-runtime: sealing, sealed storage and attestation from one root of trust.
 * Structurally implements TrustServices of @enclave-edge/enclave (types).
 */
import { join } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { issueEvidence } from '@enclave-edge/attestation';
import type { SealPolicy, Value, JsonWebKeyPublic } from '@enclave-edge/ta-sdk';
import { Sealer } from './seal.js';
import { DEFAULT_MAX_KEYS, SealedFileStore, taStorageDirName, type SealedStore } from './storage.js';
import { initDeviceIdentity, loadDeviceChain } from './device.js';
import { FreshnessLedger, type FreshnessOptions } from './freshness.js';
import type { PlatformQuoter, RootOfTrust, RotLog } from './rot/types.js';
import type { TAIdentity } from './identity.js';

export interface TrustServicesOptions {
  rootOfTrust: RootOfTrust;
  /** Where per-TA stores live (a volume on a device). Default: <stateDir>/storage. */
  storageDir?: string;
  /** Per-TA storage quota in bytes on disk, blocks and per-entry overhead included (default 16 MiB). */
  quotaBytes?: number;
  /** Per-TA cap on the number of storage keys (default DEFAULT_MAX_KEYS). */
  maxKeys?: number;
  log?: RotLog;
  /** Device chain (x5c, leaf first); default: loaded from the state directory. */
  chain?: string[];
  /** `software` only: create a development device identity on first attest if none exists (default true). */
  autoDeviceInit?: boolean;
  evidenceTtlSeconds?: number;
  /** Commit epochs of the rollback counter (roots with a monotonic counter: tpm). */
  freshness?: FreshnessOptions;
}

export interface TrustServicesImpl {
  readonly rootOfTrust: RootOfTrust;
  seal(id: TAIdentity, data: Uint8Array, opts: { policy: SealPolicy; context?: Uint8Array }): Promise<Uint8Array>;
  unseal(id: TAIdentity, blob: Uint8Array, opts: { context?: Uint8Array }): Promise<Uint8Array>;
  storage(id: TAIdentity): SealedStore;
  attest(id: TAIdentity, opts: { nonce: Uint8Array; claims?: Record<string, Value>; publicKey?: JsonWebKeyPublic; tee: string }): Promise<string>;
  /** Rollback protection of sealed storage, when the root of trust has a monotonic counter. */
  readonly freshness: FreshnessLedger | undefined;
  /** Commits open storage epochs, then closes the root of trust too. */
  close(): Promise<void>;
}

export const DEFAULT_QUOTA_BYTES = 16 * 1024 * 1024;

/** Custom claims are JSON in evidence: bytes become base64url strings. */
function jsonClaims(v: Value): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64url');
  if (Array.isArray(v)) return v.map(jsonClaims);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonClaims(x)]));
  return v;
}

/** The TPM quote as the EAT carries it (attestation's TpmQuoteClaim). */
function quoteFrom(q: PlatformQuoter) {
  return async (qualifyingData: Uint8Array) => {
    const r = await q.quote(qualifyingData);
    return { attest: Buffer.from(r.attest).toString('base64url'), sig: Buffer.from(r.signature).toString('base64url'), pcrs: r.pcrs };
  };
}

export function createTrustServices(opts: TrustServicesOptions): TrustServicesImpl {
  const root = opts.rootOfTrust;
  const sealer = new Sealer(root);
  const storageDir = opts.storageDir ?? join(root.stateDir, 'storage');
  const quota = opts.quotaBytes ?? DEFAULT_QUOTA_BYTES;
  const stores = new Map<string, SealedFileStore>();
  const dev = root.developmentGrade ? ' [development-grade root of trust: software]' : '';
  const log: RotLog = (level, message, fields) => opts.log?.(level, message + dev, fields);
  let chain: Promise<string[]> | undefined = opts.chain ? Promise.resolve(opts.chain) : undefined;
  const freshness = root.counter ? new FreshnessLedger(storageDir, root.counter, (info) => root.deriveKey(info), opts.freshness, log) : undefined;

  function deviceChain(): Promise<string[]> {
    chain ??= (async () => {
      const have = await loadDeviceChain(root);
      if (have) return have;
      if (root.kind === 'software' && (opts.autoDeviceInit ?? true)) {
        const r = await initDeviceIdentity({ root, mode: 'self-signed' });
        log('warn', `created a development device identity; verifiers need ${r.caPath} as trust anchor`);
        return (await loadDeviceChain(root))!;
      }
      throw new EnclaveEdgeError('CONFIG_INVALID', `no device certificate chain in ${root.stateDir}: run \`enclave-edge device init --rot ${root.kind}\``);
    })();
    chain.catch(() => (chain = undefined));
    return chain;
  }

  return {
    rootOfTrust: root,
    seal: (id, data, o) => sealer.seal(id, data, { policy: o.policy, context: o.context }),
    unseal: (id, blob, o) => sealer.unseal(id, blob, { context: o.context }),
    storage(id) {
      const name = taStorageDirName(id);
      let s = stores.get(name);
      if (!s) {
        s = new SealedFileStore(storageDir, id, sealer, quota, opts.maxKeys ?? DEFAULT_MAX_KEYS, freshness?.hookFor(name, id.name));
        stores.set(name, s);
      }
      return s.as(id);
    },
    async attest(id, o) {
      const token = await issueEvidence({
        signer: root.attestationSigner,
        chain: await deviceChain(),
        nonce: o.nonce,
        ta: id,
        tee: o.tee,
        rot: root.kind,
        ...(o.publicKey ? { publicKey: o.publicKey } : {}),
        ...(o.claims ? { claims: jsonClaims(o.claims) as Record<string, unknown> } : {}),
        ...(opts.evidenceTtlSeconds ? { ttlSeconds: opts.evidenceTtlSeconds } : {}),
        ...(root.quoter ? { quote: quoteFrom(root.quoter) } : {}),
      });
      log('debug', `evidence issued for TA ${id.name}`, { tee: o.tee, rot: root.kind });
      return token;
    },
    freshness,
    async close() {
      try {
        await freshness?.close();
      } finally {
        sealer.clear();
        await root.close();
      }
    },
  };
}
