/** `buildTA(dir)`: ta.json + sources → an (unsigned, or signed when given a signer) .tab bundle. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { encodeBundle, inspectBundle, signBundle, type Signer, type TAManifest } from '@enclave-edge/bundle';
import { loadProject } from './project.js';
import { buildJs } from './build-js.js';
import { buildWasm } from './build-wasm.js';

export interface BuildOptions {
  /** Debug build: manifest debug=true and a source map section. Default: ta.json's `debug`, else false. */
  debug?: boolean;
  /** Output path (default <dir>/dist/<name>.tab). */
  outFile?: string;
  /** Write the file (default true). */
  write?: boolean;
  /** Sign right away with this signer. */
  signer?: Signer;
}

export interface BuildResult {
  manifest: TAManifest;
  measurement: string;
  bundle: Uint8Array;
  signed: boolean;
  outFile?: string;
  sizes: { code: number; sourceMap: number; total: number };
}

export async function buildTA(dir: string, options: BuildOptions = {}): Promise<BuildResult> {
  const projectDir = resolve(dir);
  const project = loadProject(projectDir);
  const manifest = project.manifest(options.debug);
  const compiled = manifest.runtime === 'wasm'
    ? await buildWasm(projectDir, project.entry, manifest.debug, manifest.limits.heapMb)
    : await buildJs(projectDir, project.entry, manifest.debug);
  let bundle = encodeBundle({ manifest, code: compiled.code, ...(compiled.sourceMap ? { sourceMap: compiled.sourceMap } : {}) });
  if (options.signer) bundle = await signBundle(bundle, options.signer);
  const info = inspectBundle(bundle);
  const result: BuildResult = {
    manifest,
    measurement: info.measurement,
    bundle,
    signed: Boolean(options.signer),
    sizes: { code: info.sizes.code, sourceMap: info.sizes.sourceMap, total: info.sizes.total },
  };
  if (options.write !== false) {
    const out = options.outFile ? (isAbsolute(options.outFile) ? options.outFile : resolve(options.outFile)) : join(projectDir, 'dist', `${manifest.name}.tab`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, bundle);
    result.outFile = out;
  }
  return result;
}
