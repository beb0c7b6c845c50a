/** EAT evidence (RFC 9711): issue on the device, verify anywhere. No runtime imports. */
export { issueEvidence, ueidFromSpki, type IssueEvidenceInput } from './issue.js';
export { verifyEvidence, verifyEvidenceOrThrow, type Verdict, type AcceptedVerdict, type RejectedVerdict, type RejectReason, type VerifyOptions } from './verify.js';
export { parsePolicy, VerifierPolicySchema, type VerifierPolicy, type VerifierPolicyInput } from './policy.js';
export { MemoryReplayCache, replayId, type ReplayCache } from './replay.js';
export { verifyChain, parseTrustAnchors, ChainError } from './chain.js';
export { nodeKeySigner, type EvidenceSigner } from './signer.js';
export { b64u, fromB64u } from './b64.js';
export { decodeNonce, encodeNonce, NONCE_MIN, NONCE_MAX } from './nonce.js';
export {
  EAT_PROFILE, EAT_JWT_TYP, DBGSTAT_ENABLED, DBGSTAT_DISABLED, ATTRIBUTE_DEBUG, ATTRIBUTE_REMOTE,
  EvidenceClaimsSchema, type EvidenceClaims, type AttestedTA,
} from './claims.js';
export { quoteQualifyingData, parseTpmsAttestQuote, checkTpmQuote, TpmQuoteClaimSchema, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, type TpmQuoteClaim, type TpmsAttestQuote, type VerifiedQuote } from './tpm-quote.js';
export { createDevelopmentCa, issueDeviceCertificate, createCsr, pemToX5c, type DevCa } from './devca.js';
