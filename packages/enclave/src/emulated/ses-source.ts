/** The SES script each JS enclave worker runs, read once, plus the V8 code cache the first worker makes. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let source: { source: string; filename: string } | undefined;
let cache: Uint8Array | undefined;

export function sesScript(): { source: string; filename: string; cache?: Uint8Array } {
  if (!source) {
    const filename = join(dirname(createRequire(import.meta.url).resolve('ses')), 'ses.umd.js');
    source = { source: readFileSync(filename, 'utf8'), filename };
  }
  return cache ? { ...source, cache } : source;
}

export function rememberSesCache(c: Uint8Array): void {
  cache ??= c;
}
