/** Issue evidence: an EAT as a compact JWS (ES256) with the device certificate chain in `x5c`. */
import { createHash } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { b64u } from './b64.js';
import { decodeNonce, encodeNonce } from './nonce.js';
import {
  EAT_PROFILE, EAT_JWT_TYP, DBGSTAT_DISABLED, DBGSTAT_ENABLED, ATTRIBUTE_DEBUG, ATTRIBUTE_REMOTE,
  type AttestedTA, type EvidenceClaims,
} from './claims.js';
import type { EvidenceSigner } from './signer.js';
import { quoteQualifyingData, type TpmQuoteClaim } from './tpm-quote.js';

export interface IssueEvidenceInput {
  signer: EvidenceSigner;
  /** Device certificate chain, leaf first, each base64 (not url) DER as JWS x5c requires. */
  chain: string[];
  nonce: string | Uint8Array;
  ta: AttestedTA;
  /** The isolation backend: `emulated`, `sgx`, … */
  tee: string;
  /** The root of trust kind: `software`, `pkcs11`, `workload`. */
  rot: string;
  publicKey?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  /** With the `tpm` root: makes the quote for this nonce (qualifying data from quoteQualifyingData). */
  quote?: (qualifyingData: Uint8Array) => Promise<TpmQuoteClaim>;
  /** Lifetime of the token (default 300 s). */
  ttlSeconds?: number;
  now?: Date;
}

/** UEID type 0x01 (RAND) over the attestation key: stable per device, reveals nothing else. */
export function ueidFromSpki(spki: Uint8Array): string {
  const h = createHash('sha256').update(spki).digest();
  return b64u(Buffer.concat([Buffer.from([0x01]), h]));
}

const ueidCache = new WeakMap<Uint8Array, string>();

export async function issueEvidence(input: IssueEvidenceInput): Promise<string> {
  if (!input.chain.length) throw new EnclaveEdgeError('CONFIG_INVALID', 'no device certificate chain: run `enclave-edge device init`');
  if (input.publicKey && 'd' in input.publicKey) throw new EnclaveEdgeError('BAD_PARAMETERS', 'publicKey must not contain a private key');
  const now = Math.floor((input.now?.getTime() ?? Date.now()) / 1000);
  const ttl = input.ttlSeconds ?? 300;
  let ueid = ueidCache.get(input.signer.spki);
  if (!ueid) {
    ueid = ueidFromSpki(input.signer.spki);
    ueidCache.set(input.signer.spki, ueid);
  }
  const t = input.ta;
  const nonce = decodeNonce(input.nonce);
  const claims: EvidenceClaims = {
    eat_profile: EAT_PROFILE,
    eat_nonce: encodeNonce(nonce),
    ueid,
    iat: now,
    exp: now + ttl,
    dbgstat: t.debug ? DBGSTAT_ENABLED : DBGSTAT_DISABLED,
    tee: input.tee,
    rot: input.rot,
    unique_id: t.measurement,
    signer_id: t.signerId,
    product_id: t.productId,
    security_version: t.securityVersion,
    attributes: ATTRIBUTE_REMOTE | (t.debug ? ATTRIBUTE_DEBUG : 0),
    ta: { name: t.name, uuid: t.uuid, version: t.version },
  };
  if (input.publicKey) claims.cnf = { jwk: input.publicKey as EvidenceClaims['cnf'] extends { jwk: infer J } | undefined ? J : never };
  if (input.claims && Object.keys(input.claims).length) claims.claims = input.claims;
  if (input.quote) claims.tpm_quote = await input.quote(quoteQualifyingData(nonce));
  const header = { alg: 'ES256', typ: EAT_JWT_TYP, x5c: input.chain };
  const signingInput = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const sig = await input.signer.sign(Buffer.from(signingInput, 'ascii'));
  if (sig.length !== 64) throw new EnclaveEdgeError('INTERNAL', `attestation signer returned ${sig.length} bytes (expected raw r||s, 64)`);
  return `${signingInput}.${b64u(sig)}`;
}
