/** Small file helpers for the state folder (writes go through the project's one durable write). */
import { existsSync, readFileSync } from 'node:fs';

export { writeFileAtomicSync as writeFileAtomic } from '@enclave-edge/durable-files';

export function readIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}
