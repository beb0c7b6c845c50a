import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..', '..');

export { tempDir } from '../../../tests/support/temp-dir.js';

export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
}

export function copyExample(name: string, to: string): string {
  const dest = join(to, name);
  cpSync(join(repoRoot, 'examples', 'tas', name), dest, { recursive: true, filter: (src) => !src.includes(`${name}/dist`) });
  return dest;
}

export const taJson = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ name: 'fixture', uuid: '11111111-2222-4333-8444-555555555555', version: '1.0.0', productId: 7, securityVersion: 1, ...over });
