/**
 * Admission: may this bundle run here, under this policy? The only place that decides
 * signature and signer, pinned measurement, minimum SVN, debug, emulation, operator caps and
 * remote loading. verifyBundle answers "is it intact and signed by one of these keys"; this
 * module answers "is it allowed", for the ta-runtime (at load and on every policy change),
 * `ta run`, `ta verify` and the enclave backend (which runs only what was admitted).
 */
import { EnclaveEdgeError, type ErrorCode } from '@enclave-edge/errors';
import { verifyBundleAsync } from './verify.js';
import type { TALimits, VerifiedBundle } from './types.js';

/** The operator's policy, as parsed from ta-runtime's desired properties (protocol's RuntimePolicy). */
export interface AdmissionPolicy {
  /** label → signer_id (hex). Empty: nothing is trusted. */
  trustedSigners: Readonly<Record<string, string>>;
  allowDebug: boolean;
  allowEmulated: boolean;
  /** TA name → lowest securityVersion allowed. */
  minSvn: Readonly<Record<string, number>>;
  /** Method-loaded (loadTA) TAs may run. */
  allowRemoteLoad: boolean;
  /** Operator caps on what a manifest may ask for. */
  maxLimits: Readonly<TALimits>;
}

export interface AdmissionContext {
  /** The name the TA is configured under (desired `tas` key, loadTA name); absent: the manifest's. */
  name?: string;
  /** The measurement the configuration pins, if any. */
  pinnedMeasurement?: string | undefined;
  /** The enclave backend it would run on (`emulated` needs policy.allowEmulated). */
  backendKind: string;
  /** `method`: loaded by the loadTA direct method (needs policy.allowRemoteLoad). */
  origin: 'desired' | 'method' | 'local';
}

/** Which rule refused: the policy field, or `signature` (format, measurement, signature), `pinnedMeasurement`, `name` (configuration). */
export interface Refusal {
  code: ErrorCode;
  rule: string;
  message: string;
}

export type AdmissionResult = { admitted: VerifiedBundle; refused?: undefined } | { refused: Refusal; admitted?: undefined };

const LIMIT_KEYS = ['heapMb', 'stackKb', 'maxConcurrency', 'callTimeoutMs', 'maxInstances'] as const;

/** Bundles admit() let through, with the backend kind they were admitted for. */
const admittedFor = new WeakMap<VerifiedBundle, string>();

/** Rules that are not policy fields: the bundle itself, and the TA's configuration. */
const NOT_POLICY = new Set(['signature', 'name', 'pinnedMeasurement']);

function refuse(code: ErrorCode, rule: string, message: string): AdmissionResult {
  const named = NOT_POLICY.has(rule) || message.includes(`policy.${rule}`);
  return { refused: { code, rule, message: named ? message : `${message} (policy.${rule})` } };
}

const noSigners = () => refuse('POLICY_VIOLATION', 'trustedSigners', 'no trusted signers are configured (policy.trustedSigners is empty)');

/**
 * The rules on an already verified bundle: used on every policy change to decide whether a
 * running TA may go on running, and by admit() after verification.
 */
export function admitVerified(bundle: VerifiedBundle, policy: AdmissionPolicy, ctx: AdmissionContext): AdmissionResult {
  const m = bundle.manifest;
  const name = ctx.name ?? m.name;
  const trusted = Object.values(policy.trustedSigners).map((s) => s.toLowerCase());
  if (trusted.length === 0) return noSigners();
  if (!trusted.includes(bundle.signerId)) return refuse('POLICY_VIOLATION', 'trustedSigners', `signer ${bundle.signerId} is not one of the trusted signers`);
  if (m.name !== name) return refuse('CONFIG_INVALID', 'name', `the bundle is TA "${m.name}" but was configured as "${name}"`);
  if (ctx.pinnedMeasurement && ctx.pinnedMeasurement.toLowerCase() !== bundle.measurement) {
    return refuse('MEASUREMENT_MISMATCH', 'pinnedMeasurement', `measurement ${bundle.measurement} is not the pinned ${ctx.pinnedMeasurement}`);
  }
  const minSvn = Object.hasOwn(policy.minSvn, name) ? policy.minSvn[name] : undefined;
  if (minSvn !== undefined && m.securityVersion < minSvn) {
    return refuse('POLICY_VIOLATION', `minSvn.${name}`, `securityVersion ${m.securityVersion} is below the minimum ${minSvn}`);
  }
  if (m.debug && !policy.allowDebug) return refuse('POLICY_VIOLATION', 'allowDebug', `TA ${name} is a debug build and debug TAs are not allowed`);
  if (ctx.backendKind === 'emulated' && !policy.allowEmulated) {
    return refuse('POLICY_VIOLATION', 'allowEmulated', 'the enclave backend is emulated and emulated TAs are not allowed');
  }
  // A trusted signer still may not take the device's memory or threads.
  for (const key of LIMIT_KEYS) {
    const asked = m.limits[key];
    const cap = policy.maxLimits[key];
    if (asked !== undefined && cap !== undefined && asked > cap) {
      return refuse('POLICY_VIOLATION', `maxLimits.${key}`, `TA ${name} asks for limits.${key} ${asked}, above the operator cap policy.maxLimits.${key} ${cap}`);
    }
  }
  if (ctx.origin === 'method' && !policy.allowRemoteLoad) {
    return refuse('POLICY_VIOLATION', 'allowRemoteLoad', `TA ${name} was loaded by the loadTA method and remote loading is off`);
  }
  admittedFor.set(bundle, ctx.backendKind);
  return { admitted: bundle };
}

/**
 * Verify (format, measurement, signature under the policy's signers), then apply the rules.
 * The ES256 check runs on the thread pool while this thread hashes the code.
 */
export async function admit(bytes: Uint8Array, policy: AdmissionPolicy, ctx: AdmissionContext): Promise<AdmissionResult> {
  const trusted = Object.values(policy.trustedSigners);
  if (trusted.length === 0) return noSigners();
  let bundle: VerifiedBundle;
  try {
    bundle = await verifyBundleAsync(bytes, { trustedSigners: trusted });
  } catch (err) {
    if (!(err instanceof EnclaveEdgeError)) throw err;
    // verifyBundle refuses with POLICY_VIOLATION only for a signer outside the list it was given.
    return refuse(err.code, err.code === 'POLICY_VIOLATION' ? 'trustedSigners' : 'signature', err.message);
  }
  return admitVerified(bundle, policy, ctx);
}

/** The refusal as the error callers throw and report (detail.rule names the rule). */
export function refusalError(r: Refusal): EnclaveEdgeError {
  return new EnclaveEdgeError(r.code, r.message, { detail: { rule: r.rule } });
}

/** The admitted bundle, or the refusal thrown as an EnclaveEdgeError. */
export function admittedOrThrow(result: AdmissionResult): VerifiedBundle {
  if (result.refused) throw refusalError(result.refused);
  return result.admitted;
}

/** The backend kind this bundle was admitted for, or undefined when admit() never let it through. */
export function admissionOf(bundle: VerifiedBundle): string | undefined {
  return admittedFor.get(bundle);
}
