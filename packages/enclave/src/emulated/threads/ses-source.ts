/** Where the SES script each JS enclave worker runs is, plus the V8 code cache the first worker makes (after lockdown, so it covers lockdown's functions too). */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let source: { filename: string } | undefined;
let cache: Uint8Array | undefined;

export function sesScript(): { filename: string; cache?: Uint8Array } {
  if (!source) source = { filename: join(dirname(createRequire(import.meta.url).resolve('ses')), 'ses.umd.js') };
  return cache ? { ...source, cache } : source;
}

export function rememberSesCache(c: Uint8Array): void {
  cache ??= c;
}
