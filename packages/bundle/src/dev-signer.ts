/**
 * The public DEVELOPMENT signer (modules/ta-runtime/dev/dev-signer.key.pem, committed to git).
 * Anyone can sign with it, so a device that trusts it runs anyone's TA. One constant, used by
 * `deploy generate` (refuses it unless --allow-dev-signer) and ta-runtime (warns, reports it).
 */
export const DEV_SIGNER_ID = 'a535e941126dd6d58e42ae502864766687707e6e6487d615a9c9474cba28a411';

export function isDevSigner(signerId: string): boolean {
  return signerId.toLowerCase() === DEV_SIGNER_ID;
}
