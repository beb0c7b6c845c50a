/** Shared helpers of the security regression tests: temp dirs and TA identities. */
import { createHash } from 'node:crypto';
import type { TAIdentity } from '@enclave-edge/trust';

export { tempDir } from '../support/temp-dir.js';

export const sha256hex = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');

export function identity(over: Partial<TAIdentity> = {}): TAIdentity {
  return {
    name: 'vault',
    uuid: '0d7c3f2a-5b1e-4c8d-9a6f-2e4b8c1d3f5a',
    version: '1.0.0',
    measurement: sha256hex('release-build'),
    signerId: sha256hex('signer'),
    productId: 7,
    securityVersion: 1,
    debug: false,
    ...over,
  };
}
