/**
 * Admission for local runs, as the ta-runtime does it: the full signature check first, then the
 * trusted signers (if given) and the debug policy. Its own module so a refusal never loads the
 * enclave or the root of trust.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { verifyBundle } from '@enclave-edge/bundle';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';

export interface AdmitLocalOptions {
  /** Accept only these signer_ids (hex). Absent: any valid signature. */
  trustedSigners?: string[];
  /** Admit debug builds (default false, as a production runtime). */
  allowDebug?: boolean;
}

export function admitLocal(bytes: Uint8Array, opts: AdmitLocalOptions = {}): VerifiedBundle {
  const allowDebug = opts.allowDebug ?? false;
  // The debug policy is applied here, after the full signature check, to name the flag that admits it.
  const bundle = verifyBundle(bytes, { ...(opts.trustedSigners ? { trustedSigners: opts.trustedSigners } : {}), allowDebug: true });
  if (bundle.manifest.debug && !allowDebug) {
    throw new EnclaveEdgeError('POLICY_VIOLATION', `TA ${bundle.manifest.name} is a debug build; pass --allow-debug to run it`);
  }
  return bundle;
}
