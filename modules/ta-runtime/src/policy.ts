/** The runtime's admission policy: signature and signer first, then pins, SVNs, debug and emulation. */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { verifyBundleAsync } from '@enclave-edge/bundle';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import { DEFAULT_MAX_LIMITS, type RuntimePolicy } from '@enclave-edge/protocol';

export interface AdmitInput {
  name: string;
  bytes: Uint8Array;
  pinnedMeasurement?: string | undefined;
  policy: RuntimePolicy;
  backendKind: string;
}

/**
 * Admission uses verifyBundleAsync: the ES256 check runs on the thread pool while this thread
 * hashes the code, so a large bundle costs about its hash (issue 3's target), not hash + verify.
 */
export async function admitBundle({ name, bytes, pinnedMeasurement, policy, backendKind }: AdmitInput): Promise<VerifiedBundle> {
  const trusted = Object.values(policy.trustedSigners);
  if (trusted.length === 0) throw new EnclaveEdgeError('POLICY_VIOLATION', 'no trusted signers are configured (policy.trustedSigners is empty)');
  const bundle = await verifyBundleAsync(bytes, { trustedSigners: trusted, allowDebug: policy.allowDebug });
  // Operator caps (O10): a trusted signer still may not take the device's memory or threads.
  // Callers that build a policy by hand (not parsed) get the defaults: never uncapped.
  const caps = { ...DEFAULT_MAX_LIMITS, ...(policy as Partial<RuntimePolicy>).maxLimits };
  for (const key of ['heapMb', 'stackKb', 'maxConcurrency', 'callTimeoutMs'] as const) {
    const asked = bundle.manifest.limits[key];
    const cap = caps[key];
    if (asked > cap) throw new EnclaveEdgeError('POLICY_VIOLATION', `TA ${name} asks for limits.${key} ${asked}, above the operator cap policy.maxLimits.${key} ${cap}`);
  }
  if (bundle.manifest.name !== name) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `the bundle is TA "${bundle.manifest.name}" but was configured as "${name}"`);
  }
  if (pinnedMeasurement && pinnedMeasurement.toLowerCase() !== bundle.measurement) {
    throw new EnclaveEdgeError('MEASUREMENT_MISMATCH', `measurement ${bundle.measurement} is not the pinned ${pinnedMeasurement}`);
  }
  const minSvn = policy.minSvn[name];
  if (minSvn !== undefined && bundle.manifest.securityVersion < minSvn) {
    throw new EnclaveEdgeError('POLICY_VIOLATION', `securityVersion ${bundle.manifest.securityVersion} is below the minimum ${minSvn}`);
  }
  if (bundle.manifest.debug && !policy.allowDebug) throw new EnclaveEdgeError('POLICY_VIOLATION', `TA ${name} is a debug build and policy.allowDebug is false`);
  if (backendKind === 'emulated' && !policy.allowEmulated) {
    throw new EnclaveEdgeError('POLICY_VIOLATION', 'the enclave backend is emulated and policy.allowEmulated is false');
  }
  return bundle;
}
