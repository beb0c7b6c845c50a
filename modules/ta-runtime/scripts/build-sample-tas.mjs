#!/usr/bin/env node
// Builds the sample TAs (examples/tas/*) and signs them with the committed DEV key into
// modules/ta-runtime/tas/<name>.tab, the bundle directory the deployment template loads from.
// Skips a TA whose bundle is newer than all of its sources. Development only: see dev/README.md.
import { mkdirSync, readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { pemSigner } from '@enclave-edge/bundle';

const moduleDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(moduleDir, '../..');
const outDir = process.env.TA_BUNDLE_OUT ?? join(moduleDir, 'tas');
const samples = ['hello', 'sensor-signer', 'key-vault', 'wasm-stats'];
const force = process.argv.includes('--force');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (['dist', 'node_modules', 'test', 'build'].includes(entry.name)) continue;
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const keyPath = join(moduleDir, 'dev', 'dev-signer.key.pem');
const signer = pemSigner(readFileSync(keyPath));
const keyMtime = statSync(keyPath).mtimeMs;
mkdirSync(outDir, { recursive: true });
for (const name of samples) {
  const dir = join(repoRoot, 'examples', 'tas', name);
  const outFile = join(outDir, `${name}.tab`);
  if (!force && existsSync(outFile) && statSync(outFile).mtimeMs > Math.max(newestMtime(dir), keyMtime)) continue;
  const r = await buildTA(dir, { signer, outFile, debug: false });
  process.stderr.write(`ta-runtime: built ${name} ${r.manifest.version} measurement ${r.measurement.slice(0, 16)}… (${r.sizes.total} bytes, DEV-signed)\n`);
}
