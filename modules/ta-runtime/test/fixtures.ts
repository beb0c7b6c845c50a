// Real sample bundles, built and DEV-signed into a temp dir by the module's own build script.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEV_SIGNER_ID } from '@enclave-edge/bundle';
import { createLogger } from '@enclave-edge/observability';

export const moduleDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function buildSampleBundles(): { dir: string; cleanup: () => void; bytes: (name: string) => Uint8Array } {
  const dir = mkdtempSync(join(tmpdir(), 'ee-tas-'));
  execFileSync(process.execPath, [join(moduleDir, 'scripts/build-sample-tas.mjs')], { env: { ...process.env, TA_BUNDLE_OUT: dir }, stdio: 'pipe' });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }), bytes: (n) => new Uint8Array(readFileSync(join(dir, `${n}.tab`))) };
}

export function quietLogger() {
  const lines: string[] = [];
  return { lines, log: createLogger({ name: 'ta-runtime-test', level: 'debug', destination: { write: (l: string) => lines.push(l) } }) };
}

export const devPolicy = { trustedSigners: { dev: DEV_SIGNER_ID }, allowDebug: false, allowEmulated: true, minSvn: {} };
