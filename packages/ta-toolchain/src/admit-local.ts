/**
 * Admission for local runs (`ta run`, openLocalTA): the runtime's own admit() under a local
 * policy (the signers the developer names, debug only when asked, the emulated backend, the
 * default operator caps). Its own module so a refusal never loads the enclave or the root of trust.
 */
import { admit, refusalError } from '@enclave-edge/bundle/admission';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import { DEFAULT_MAX_LIMITS } from '@enclave-edge/protocol/desired';

export interface AdmitLocalOptions {
  /** The signer_ids (hex) trusted for this run. Required: there is no "any signer". */
  trustedSigners: readonly string[];
  /** Admit debug builds (default false, as a production runtime). */
  allowDebug?: boolean;
}

export async function admitLocal(bytes: Uint8Array, opts: AdmitLocalOptions): Promise<VerifiedBundle> {
  const policy = {
    trustedSigners: Object.fromEntries(opts.trustedSigners.map((id, i) => [`signer${i}`, id])),
    allowDebug: opts.allowDebug ?? false,
    allowEmulated: true,
    minSvn: {},
    allowRemoteLoad: false,
    maxLimits: DEFAULT_MAX_LIMITS,
  };
  const r = await admit(bytes, policy, { backendKind: 'emulated', origin: 'local' });
  if (r.refused) throw refusalError(r.refused.rule === 'allowDebug' ? { ...r.refused, message: `${r.refused.message}; pass --allow-debug to run it` } : r.refused);
  return r.admitted;
}
