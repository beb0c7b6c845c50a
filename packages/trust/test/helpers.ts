import { createHash } from 'node:crypto';
import type { TAIdentity } from '@enclave-edge/trust';

export { tempDir } from '../../../tests/support/temp-dir.js';

const h = (s: string) => createHash('sha256').update(s).digest('hex');

export function identity(over: Partial<TAIdentity> = {}): TAIdentity {
  return {
    name: 'kv', uuid: '6f1c7c52-8e0b-4d0e-9d2a-1c3b5a7d9e01', version: '1.0.0',
    measurement: h('build-1'), signerId: h('signer-A'), productId: 1, securityVersion: 1, debug: false,
    ...over,
  };
}
