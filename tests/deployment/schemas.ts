// The official IoT Edge schemas, vendored once for the CLI's own self-check (packages/cli/schemas,
// source and license in its README); the tests validate with the same copy.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { officialValidators } from '@enclave-edge/cli/commands/deploy-schema';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function loadValidators() {
  const { template, deployment } = officialValidators();
  const errorsText = (errors: typeof deployment.errors) => (errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ');
  return { template, deployment, ajv: { errorsText } };
}
