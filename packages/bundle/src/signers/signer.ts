/** Anything that can produce an ES256 signature: a PEM key file, a PKCS#11 token, a remote service. */
export interface Signer {
  alg: 'ES256';
  /** The public key as SPKI DER (signer_id = SHA-256 of it). */
  spki: Uint8Array;
  /** Optional X.509 chain, base64 DER, leaf first; the leaf must hold `spki`. */
  certificateChain?: string[];
  /** ECDSA P-256 over SHA-256(data); returns raw r||s (64 bytes) as JWS uses. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}
