// The official IoT Edge schemas, vendored once (packages/edge-sim/schemas, source and license in
// its README) for `deploy generate` and `sim up`; the tests validate with the same copy.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { officialValidators } from '@enclave-edge/edge-sim/deployment';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function loadValidators() {
  const { template, deployment } = officialValidators();
  const errorsText = (errors: typeof deployment.errors) => (errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ');
  return { template, deployment, ajv: { errorsText } };
}
