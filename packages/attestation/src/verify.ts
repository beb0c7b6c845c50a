/**
 * Verify evidence: JWS signature with the x5c leaf key, the chain to a trust anchor, freshness,
 * nonce, replay, then the policy. Never throws for a bad token: returns a verdict with a reason.
 */
import type { X509Certificate } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { fromB64u } from './b64.js';
import { decodeNonce } from './nonce.js';
import { verifyChain, parseTrustAnchors, chainCacheKey, checkIssuerConstraints, ChainError, type ChainResult } from './chain.js';
import { EvidenceClaimsSchema, EAT_JWT_TYP, DBGSTAT_ENABLED, ATTRIBUTE_DEBUG, type EvidenceClaims } from './claims.js';
import { parsePolicy, type VerifierPolicy, type VerifierPolicyInput } from './policy.js';
import { replayId, type ReplayCache } from './replay.js';
import { checkTpmQuote, type VerifiedQuote } from './tpm-quote.js';

export type RejectReason =
  | 'malformed' | 'chain' | 'signature' | 'claims' | 'expired' | 'not-yet-valid' | 'too-old'
  | 'nonce' | 'replay' | 'replay-cache-full' | 'issuer' | 'debug' | 'emulated' | 'tee' | 'measurement' | 'signer' | 'product' | 'svn' | 'rot'
  | 'quote' | 'pcrs';

export interface AcceptedVerdict {
  accepted: true;
  claims: EvidenceClaims;
  /** Certificate subjects from the leaf up. */
  chain: string[];
  /** Things a relying party should know though the policy allows them (e.g. a software root of trust). */
  warnings: string[];
  /** With rot `tpm`: the verified TPM quote (PCR values, reset/restart counts, firmware). */
  platform?: VerifiedQuote;
}

export interface RejectedVerdict {
  accepted: false;
  reason: RejectReason;
  /** ATTESTATION_INVALID (the evidence is not authentic or fresh) or POLICY_VIOLATION (authentic, not allowed). */
  code: 'ATTESTATION_INVALID' | 'POLICY_VIOLATION';
  message: string;
  /** Present once the signature and chain verified. */
  claims?: EvidenceClaims;
}

export type Verdict = AcceptedVerdict | RejectedVerdict;

export interface VerifyOptions {
  /** PEM text (one or more certificates) or parsed certificates. */
  trustAnchors: string | string[] | X509Certificate[];
  /** The nonce this verifier sent (bytes, hex or base64url). Omit only if freshness comes from elsewhere. */
  nonce?: string | Uint8Array;
  policy?: VerifierPolicyInput | VerifierPolicy;
  now?: Date;
  replayCache?: ReplayCache;
}

const MAX_TOKEN = 64 * 1024;

function reject(reason: RejectReason, message: string, claims?: EvidenceClaims): RejectedVerdict {
  const authentic = ['issuer', 'debug', 'emulated', 'tee', 'measurement', 'signer', 'product', 'svn', 'rot', 'pcrs'].includes(reason);
  return { accepted: false, reason, code: authentic ? 'POLICY_VIOLATION' : 'ATTESTATION_INVALID', message, ...(claims ? { claims } : {}) };
}

// Verified chains are cached per anchor set: chain checks cost two ECDSA verifies.
const chainCache = new WeakMap<X509Certificate[], Map<string, ChainResult>>();
const anchorCache = new Map<string, X509Certificate[]>();

function anchorsOf(t: VerifyOptions['trustAnchors']): X509Certificate[] {
  if (Array.isArray(t) && t.length && typeof t[0] !== 'string') return t as X509Certificate[];
  const key = Array.isArray(t) ? (t as string[]).join('\n') : (t as string);
  let a = anchorCache.get(key);
  if (!a) {
    a = parseTrustAnchors(t as string | string[]);
    if (anchorCache.size > 32) anchorCache.clear();
    anchorCache.set(key, a);
  }
  return a;
}

function cachedChain(x5c: string[], anchors: X509Certificate[], now: Date): ChainResult {
  let m = chainCache.get(anchors);
  if (!m) chainCache.set(anchors, (m = new Map()));
  const key = chainCacheKey(x5c);
  const hit = m.get(key);
  if (hit && now.getTime() >= hit.validFrom && now.getTime() <= hit.validTo) return hit;
  const r = verifyChain(x5c, anchors, now);
  if (m.size > 256) m.clear();
  m.set(key, r);
  return r;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

export async function verifyEvidence(token: string, options: VerifyOptions): Promise<Verdict> {
  const policy = parsePolicy(options.policy);
  const anchors = anchorsOf(options.trustAnchors);
  const expectedNonce = options.nonce === undefined ? undefined : decodeNonce(options.nonce);
  const now = options.now ?? new Date();
  const nowS = Math.floor(now.getTime() / 1000);

  if (typeof token !== 'string' || token.length > MAX_TOKEN || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token.trim())) {
    return reject('malformed', 'not a compact JWS (header.payload.signature)');
  }
  token = token.trim();
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return reject('malformed', 'the JWS header is not valid JSON');
  }
  if (header.alg !== 'ES256') return reject('malformed', `alg must be ES256, got ${String(header.alg)}`);
  if (header.typ !== undefined && header.typ !== EAT_JWT_TYP) return reject('malformed', `typ must be ${EAT_JWT_TYP}`);
  if (header.crit !== undefined) return reject('malformed', 'crit header parameters are not supported');
  if (!Array.isArray(header.x5c)) return reject('chain', 'the header has no x5c certificate chain');

  let chain: ChainResult;
  try {
    chain = cachedChain(header.x5c, anchors, now);
  } catch (err) {
    if (err instanceof ChainError) return reject('chain', err.message);
    throw err;
  }

  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, chain.leaf.publicKey, { algorithms: ['ES256'] }));
  } catch {
    return reject('signature', 'the signature does not verify with the leaf certificate key');
  }

  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return reject('malformed', 'the payload is not JSON');
  }
  const parsed = EvidenceClaimsSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return reject('claims', `claims do not follow the enclave-edge EAT profile: ${i ? `${i.path.join('.')}: ${i.message}` : ''}`);
  }
  const c = parsed.data;
  // The TA's own claims as signed: zod's record drops a "__proto__" key, JSON.parse keeps it as data.
  if (c.claims) c.claims = (raw as { claims: Record<string, unknown> }).claims;

  const tol = policy.clockToleranceSeconds;
  if (c.exp + tol < nowS) return reject('expired', `the evidence expired at ${new Date(c.exp * 1000).toISOString()}`, c);
  if (c.iat - tol > nowS) return reject('not-yet-valid', `the evidence was issued in the future (${new Date(c.iat * 1000).toISOString()})`, c);
  if (nowS - c.iat > policy.maxAgeSeconds + tol) return reject('too-old', `the evidence is ${nowS - c.iat} s old (policy maxAgeSeconds ${policy.maxAgeSeconds})`, c);

  if (expectedNonce !== undefined) {
    let got: Uint8Array;
    try {
      got = fromB64u(c.eat_nonce);
    } catch {
      return reject('nonce', 'eat_nonce is not base64url', c);
    }
    if (!equalBytes(got, expectedNonce)) return reject('nonce', 'eat_nonce does not match the nonce this verifier sent', c);
  }

  // The quote: signed by the same certified key, bound to eat_nonce; required with rot tpm.
  let platform: VerifiedQuote | undefined;
  if (c.tpm_quote) {
    const q = checkTpmQuote(c.tpm_quote, chain.leaf.publicKey, fromB64u(c.eat_nonce));
    if ('problem' in q) return reject('quote', q.problem, c);
    platform = q.quote;
  } else if (c.rot === 'tpm') {
    return reject('quote', 'rot is "tpm" but the evidence carries no TPM quote', c);
  }

  const issuerProblem = checkIssuerConstraints(chain, policy);
  if (issuerProblem) return reject('issuer', issuerProblem, c);

  const debug = c.dbgstat === DBGSTAT_ENABLED || (c.attributes & ATTRIBUTE_DEBUG) !== 0;
  if (debug && !policy.allowDebug) return reject('debug', 'the TA is a debug build (dbgstat enabled) and the policy does not allow debug', c);
  if (c.tee === 'emulated' && !policy.allowEmulated) return reject('emulated', 'the evidence comes from an emulated enclave (no hardware isolation) and the policy does not allow emulated', c);
  if (policy.allowedTees && !policy.allowedTees.includes(c.tee)) return reject('tee', `tee "${c.tee}" is not in allowedTees`, c);
  if (policy.allowedMeasurements && !policy.allowedMeasurements.includes(c.unique_id)) return reject('measurement', `measurement ${c.unique_id} is not in allowedMeasurements`, c);
  if (policy.allowedSigners && !policy.allowedSigners.includes(c.signer_id)) return reject('signer', `signer ${c.signer_id} is not in allowedSigners`, c);
  if (policy.productIds && !policy.productIds.includes(c.product_id)) return reject('product', `product_id ${c.product_id} is not in productIds`, c);
  if (c.security_version < policy.minSecurityVersion) return reject('svn', `security_version ${c.security_version} is below minSecurityVersion ${policy.minSecurityVersion}`, c);
  if (policy.allowedRootsOfTrust && !policy.allowedRootsOfTrust.includes(c.rot)) return reject('rot', `root of trust "${c.rot}" is not in allowedRootsOfTrust`, c);
  if (policy.pcrs) {
    if (!platform) return reject('pcrs', 'the policy lists reference PCR values but the evidence carries no TPM quote', c);
    for (const [pcr, want] of Object.entries(policy.pcrs)) {
      const got = Object.hasOwn(platform.pcrs, pcr) ? platform.pcrs[pcr] : undefined;
      if (got === undefined) return reject('pcrs', `the TPM quote does not cover ${pcr}, which the policy lists`, c);
      if (got !== want) return reject('pcrs', `${pcr} is ${got}, the policy expects ${want}`, c);
    }
  }

  // Replay last: only authentic, acceptable tokens are remembered.
  if (options.replayCache) {
    const seen = options.replayCache.checkAndRemember(replayId(token), (c.exp + tol) * 1000, now.getTime());
    if (seen === 'full') return reject('replay-cache-full', 'the replay cache is full of unexpired tokens, so a replay cannot be ruled out; refused (fail closed) — retry later or size the cache for rate × maxAgeSeconds', c);
    if (seen) return reject('replay', 'this token was presented before (replay)', c);
  }

  const warnings: string[] = [];
  if (c.rot === 'software') warnings.push('root of trust is "software": development-grade, keys are in a file on the device');
  if (c.tee === 'emulated') warnings.push('tee is "emulated": isolation is a worker isolate, not hardware');
  if (debug) warnings.push('debug TA: its memory and state are inspectable');
  if (expectedNonce === undefined) warnings.push('no nonce was checked: freshness rests on iat/exp only');
  return { accepted: true, claims: c, chain: chain.path, warnings, ...(platform ? { platform } : {}) };
}

/** Like verifyEvidence, but throws EnclaveEdgeError(ATTESTATION_INVALID | POLICY_VIOLATION) on rejection. */
export async function verifyEvidenceOrThrow(token: string, options: VerifyOptions): Promise<AcceptedVerdict> {
  const v = await verifyEvidence(token, options);
  if (!v.accepted) throw new EnclaveEdgeError(v.code, `evidence rejected (${v.reason}): ${v.message}`, { detail: { reason: v.reason } });
  return v;
}
