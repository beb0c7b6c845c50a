/**
 * Trusted signers of a generated deployment: `--trusted-signer` replaces every ta-runtime
 * `policy.trustedSigners`, and a policy that still trusts the public DEV signer is refused
 * unless `--allow-dev-signer` (its private key is in git: anyone could sign a TA the device runs).
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { DEV_SIGNER_ID } from '@enclave-edge/bundle/dev-signer';

export interface SignerOptions {
  /** `signer_id`, `pub.pem` (public key or certificate), or `label=` either. */
  trustedSigners?: string[];
  allowDevSigner?: boolean;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** `label=value` or `value`; value is a signer_id or a PEM file whose public key is hashed. */
export function resolveTrustedSigner(spec: string, index: number): [label: string, signerId: string] {
  const eq = spec.indexOf('=');
  const explicit = eq > 0 && !spec.slice(0, eq).includes('/') ? spec.slice(0, eq) : undefined;
  const value = explicit !== undefined ? spec.slice(eq + 1) : spec;
  if (HEX64.test(value)) return [explicit ?? `signer${index + 1}`, value.toLowerCase()];
  let pem: string;
  try {
    pem = readFileSync(value, 'utf8');
  } catch (err) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `--trusted-signer ${spec}: not a 64-hex signer_id and not a readable PEM file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `--trusted-signer ${spec}: give the public key or certificate, not a private key`);
  }
  let spki: Buffer;
  try {
    spki = createPublicKey(pem).export({ type: 'spki', format: 'der' });
  } catch (err) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `--trusted-signer ${spec}: not a PEM public key or certificate (${(err as Error).message})`);
  }
  const label = explicit ?? basename(value).replace(/(\.pub)?\.(pem|crt|cer)$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_');
  return [label || `signer${index + 1}`, createHash('sha256').update(spki).digest('hex')];
}

type Policies = Array<{ module: string; policy: { trustedSigners?: Record<string, string> } }>;

/** Every module twin whose desired properties carry a ta-runtime `policy`. */
function runtimePolicies(manifest: Record<string, any>): Policies {
  const out: Policies = [];
  for (const [module, content] of Object.entries((manifest.modulesContent ?? {}) as Record<string, any>)) {
    const policy = content?.['properties.desired']?.policy;
    if (policy && typeof policy === 'object' && 'trustedSigners' in policy) out.push({ module, policy });
  }
  return out;
}

/** Apply the signer options to a generated manifest in place; returns the trusted signers per module. */
export function applySignerOptions(manifest: Record<string, any>, opts: SignerOptions): Record<string, Record<string, string>> {
  const policies = runtimePolicies(manifest);
  if (opts.trustedSigners?.length) {
    if (policies.length === 0) throw new EnclaveEdgeError('CONFIG_INVALID', '--trusted-signer: the template has no module with a policy.trustedSigners (ta-runtime) to replace');
    const signers: Record<string, string> = Object.create(null) as Record<string, string>; // labels are the operator's text
    opts.trustedSigners.forEach((spec, i) => {
      const [label, id] = resolveTrustedSigner(spec, i);
      signers[Object.hasOwn(signers, label) ? `${label}-${i + 1}` : label] = id;
    });
    for (const p of policies) p.policy.trustedSigners = { ...signers };
  }
  const out: Record<string, Record<string, string>> = Object.create(null) as Record<string, Record<string, string>>;
  for (const p of policies) {
    const trusted = p.policy.trustedSigners ?? {};
    out[p.module] = trusted;
    const devLabel = Object.entries(trusted).find(([, id]) => typeof id === 'string' && id.toLowerCase() === DEV_SIGNER_ID)?.[0];
    if (devLabel !== undefined && !opts.allowDevSigner) {
      throw new EnclaveEdgeError(
        'POLICY_VIOLATION',
        `${p.module} policy.trustedSigners.${devLabel} is the public DEV signer (${DEV_SIGNER_ID.slice(0, 8)}…, its private key is in git: anyone can sign a TA this device would run); ` +
          'give your own with --trusted-signer <signer_id|pub.pem>, or --allow-dev-signer for a throwaway test device',
      );
    }
  }
  return out;
}
