/** The TA manifest schema (strict: unknown fields are refused) and its canonical encoding. */
import { z } from 'zod';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { TAManifest } from './types.js';
import { canonicalJsonBytes } from './canonical-json.js';

/** Ranges mirror SGX's 16-bit ISVPRODID / ISVSVN, and what a worker enclave can honour. */
export const MANIFEST_LIMITS = {
  productId: { min: 0, max: 65535 },
  securityVersion: { min: 0, max: 65535 },
  heapMb: { min: 4, max: 4096 },
  stackKb: { min: 64, max: 65536 },
  maxConcurrency: { min: 1, max: 256 },
  callTimeoutMs: { min: 10, max: 3_600_000 },
  maxInstances: { min: 1, max: 256 },
  hostCalls: { max: 64 },
  confidentialCommands: { max: 256 },
  description: { max: 1024 },
} as const;

const intIn = (r: { min: number; max: number }) => z.number().int('must be an integer').min(r.min, `must be ≥ ${r.min}`).max(r.max, `must be ≤ ${r.max}`);

export const TA_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// The official SemVer 2.0.0 grammar (semver.org), without a leading "v".
const SEMVER_PATTERN =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const HOST_CALL_PATTERN = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
// The wire's command-name alphabet (protocol COMMAND_NAME).
const COMMAND_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export const limitsSchema = z.strictObject({
  heapMb: intIn(MANIFEST_LIMITS.heapMb),
  stackKb: intIn(MANIFEST_LIMITS.stackKb),
  maxConcurrency: intIn(MANIFEST_LIMITS.maxConcurrency),
  callTimeoutMs: intIn(MANIFEST_LIMITS.callTimeoutMs),
  maxInstances: intIn(MANIFEST_LIMITS.maxInstances).optional(),
});

export const sessionSchema = z.strictObject({
  singleInstance: z.boolean(),
  multiSession: z.boolean(),
  keepAlive: z.boolean(),
});

export const manifestSchema = z.strictObject({
  name: z.string().regex(TA_NAME_PATTERN, 'must be 1..63 chars of a-z, 0-9 and "-", starting with a letter'),
  uuid: z.string().regex(UUID_PATTERN, 'must be a lowercase UUID (8-4-4-4-12 hex digits)'),
  version: z.string().max(128, 'must be at most 128 characters').regex(SEMVER_PATTERN, 'must be a semantic version such as 1.2.3'),
  productId: intIn(MANIFEST_LIMITS.productId),
  securityVersion: intIn(MANIFEST_LIMITS.securityVersion),
  debug: z.boolean(),
  runtime: z.enum(['js', 'wasm'], 'must be "js" or "wasm"'),
  limits: limitsSchema,
  session: sessionSchema,
  hostCalls: z
    .array(z.string().regex(HOST_CALL_PATTERN, 'must be 1..64 chars of A-Z, a-z, 0-9, ".", "_", "-", starting with a letter'))
    .max(MANIFEST_LIMITS.hostCalls.max, `must list at most ${MANIFEST_LIMITS.hostCalls.max} host calls`)
    .refine((a) => new Set(a).size === a.length, 'must not repeat a name'),
  /** Commands that answer only confidential calls (an HPKE envelope to the TA's attested key); plain calls get ACCESS_DENIED. */
  confidentialCommands: z
    .array(z.string().regex(COMMAND_PATTERN, 'must be a command name (1..64 chars of A-Z, a-z, 0-9, "_", not starting with a digit)'))
    .max(MANIFEST_LIMITS.confidentialCommands.max, `must list at most ${MANIFEST_LIMITS.confidentialCommands.max} commands`)
    .refine((a) => new Set(a).size === a.length, 'must not repeat a name')
    .optional(),
  /** The TA answers `attest` itself (its `attest` command makes the evidence); absent/false: the runtime issues it. */
  attest: z.boolean().optional(),
  description: z.string().max(MANIFEST_LIMITS.description.max, `must be at most ${MANIFEST_LIMITS.description.max} characters`).optional(),
});

/** Render zod issues as "field: rule; field: rule". */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.length ? i.path.join('.') : '(manifest)';
      if (i.code === 'unrecognized_keys') return `${[...i.path, ...i.keys].join('.')}: unknown field (not allowed)`;
      if (i.code === 'invalid_type' && /received undefined$/.test(i.message)) return `${path}: is required`;
      return `${path}: ${i.message}`;
    })
    .join('; ');
}

/** Validate a manifest object; BAD_FORMAT naming each failing field and rule. */
export function validateManifest(value: unknown, where = 'manifest'): TAManifest {
  const r = manifestSchema.safeParse(value);
  if (!r.success) throw new EnclaveEdgeError('BAD_FORMAT', `${where} is invalid: ${describeIssues(r.error)}`);
  return r.data as TAManifest;
}

export function canonicalManifestBytes(manifest: TAManifest): Uint8Array {
  return canonicalJsonBytes(manifest);
}
