/**
 * `deploy generate`, as iotedgedev does it: resolve `${MODULES.<name>}` to the module's image
 * for a platform (from modules/<name>/module.json), expand `${ENV_VAR}`, drop
 * `$schema-template`, and turn every `createOptions` object into a JSON string split into
 * `createOptions`, `createOptions01`, … chunks of at most 512 characters.
 */
import { readFileSync, readdirSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { applySignerOptions, type SignerOptions } from './deploy-signers.js';

export const PLATFORMS = ['amd64', 'arm64v8', 'arm32v7'] as const;
export type Platform = (typeof PLATFORMS)[number];
export const CREATE_OPTIONS_CHUNK = 512;

export interface ModuleJson {
  image: {
    repository: string;
    tag: { version: string; platforms: Record<string, string> };
    contextPath?: string;
    buildOptions?: string[];
  };
}

export function isPlatform(p: string): p is Platform {
  return (PLATFORMS as readonly string[]).includes(p);
}

/** Every modules/<name>/module.json below the repository root. */
export function readModuleJsons(repoRoot: string): Map<string, ModuleJson> {
  const out = new Map<string, ModuleJson>();
  const dir = join(repoRoot, 'modules');
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name, 'module.json');
    if (!existsSync(file)) continue;
    let parsed: ModuleJson;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as ModuleJson;
    } catch (err) {
      throw new EnclaveEdgeError('CONFIG_INVALID', `${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (!parsed?.image?.repository || !parsed.image.tag?.version || !parsed.image.tag.platforms) {
      throw new EnclaveEdgeError('CONFIG_INVALID', `${file} needs image.repository, image.tag.version and image.tag.platforms`);
    }
    out.set(name, parsed);
  }
  return out;
}

export function imageFor(name: string, mod: ModuleJson, platform: Platform): string {
  if (!mod.image.tag.platforms[platform]) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `module "${name}" has no Dockerfile for platform ${platform} in its module.json`);
  }
  return `${mod.image.repository}:${mod.image.tag.version}-${platform}`;
}

/** `${MODULES.x}` → image; `${VAR}` → env value. Unresolved placeholders fail (never deploy a literal `${…}`). */
export function expandPlaceholders(text: string, images: Record<string, string>, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g, (_m, key: string) => {
    if (key.startsWith('MODULES.')) {
      const name = key.slice('MODULES.'.length);
      const image = Object.hasOwn(images, name) ? images[name] : undefined;
      if (!image) throw new EnclaveEdgeError('CONFIG_INVALID', `\${${key}}: no module "${name}" with a module.json under modules/`);
      return image;
    }
    const value = Object.hasOwn(env, key) ? env[key] : undefined;
    if (value === undefined) throw new EnclaveEdgeError('CONFIG_INVALID', `\${${key}} is not set in the environment`);
    return JSON.stringify(value).slice(1, -1); // safe inside a JSON string
  });
}

/** Stringify createOptions and split it into ≤512-character chunks, as the IoT Edge agent expects. */
export function splitCreateOptions(settings: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let createOptions: unknown;
  for (const [k, v] of Object.entries(settings)) {
    if (/^createOptions\d*$/i.test(k)) {
      if (createOptions === undefined) createOptions = v;
      continue;
    }
    out[k] = v;
  }
  if (createOptions === undefined) return out;
  const text = typeof createOptions === 'string' ? createOptions : JSON.stringify(createOptions);
  if (text === '{}' || text === '') return { ...out, createOptions: '{}' };
  for (let i = 0, n = 0; i < text.length; i += CREATE_OPTIONS_CHUNK, n++) {
    out[n === 0 ? 'createOptions' : `createOptions${String(n).padStart(2, '0')}`] = text.slice(i, i + CREATE_OPTIONS_CHUNK);
  }
  return out;
}

/** Reassemble chunked createOptions (what the agent does); used by tests and the simulator. */
export function joinCreateOptions(settings: Record<string, unknown>): unknown {
  const keys = Object.keys(settings).filter((k) => /^createOptions\d*$/.test(k)).sort((a, b) => (a.length - b.length) || a.localeCompare(b));
  if (keys.length === 0) return undefined;
  return JSON.parse(keys.map((k) => String(settings[k])).join(''));
}

export interface GenerateInput {
  template: string;
  modules: Map<string, ModuleJson>;
  platform: Platform;
  env?: Record<string, string | undefined>;
}

export function generateDeployment({ template, modules, platform, env = {} }: GenerateInput): Record<string, unknown> {
  const images: Record<string, string> = {};
  for (const [name, mod] of modules) images[name] = imageFor(name, mod, platform);
  let manifest: Record<string, any>;
  try {
    manifest = JSON.parse(expandPlaceholders(template, images, env)) as Record<string, any>;
  } catch (err) {
    if (err instanceof EnclaveEdgeError) throw err;
    throw new EnclaveEdgeError('CONFIG_INVALID', `the deployment template is not valid JSON: ${(err as Error).message}`);
  }
  delete manifest['$schema-template'];
  const agent = manifest.modulesContent?.$edgeAgent?.['properties.desired'];
  if (!agent || typeof agent !== 'object') throw new EnclaveEdgeError('CONFIG_INVALID', 'the template has no modulesContent.$edgeAgent["properties.desired"]');
  for (const group of ['systemModules', 'modules'] as const) {
    for (const mod of Object.values((agent[group] ?? {}) as Record<string, { settings?: Record<string, unknown> }>)) {
      if (mod?.settings) mod.settings = splitCreateOptions(mod.settings);
    }
  }
  return manifest;
}

/**
 * Generate config/deployment.<platform>.json from a template file; returns the written path.
 * With `signers` (the CLI always passes it) the trusted signers are replaced/checked first and
 * nothing is written when the public DEV signer is trusted without `allowDevSigner`.
 */
export function generateDeploymentFile(opts: { repoRoot: string; template?: string; platform: Platform; outDir?: string; env?: Record<string, string | undefined>; signers?: SignerOptions }): { path: string; manifest: Record<string, unknown>; trustedSigners?: Record<string, Record<string, string>> } {
  const templatePath = resolve(opts.repoRoot, opts.template ?? 'deployment.template.json');
  if (!existsSync(templatePath)) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no deployment template at ${templatePath}`);
  const manifest = generateDeployment({
    template: readFileSync(templatePath, 'utf8'),
    modules: readModuleJsons(opts.repoRoot),
    platform: opts.platform,
    env: opts.env ?? process.env,
  });
  const trustedSigners = opts.signers ? applySignerOptions(manifest as Record<string, any>, opts.signers) : undefined;
  const outDir = resolve(opts.repoRoot, opts.outDir ?? 'config');
  mkdirSync(outDir, { recursive: true });
  const base = templatePath.endsWith('.template.json') ? templatePath.slice(templatePath.lastIndexOf('/') + 1, -'.template.json'.length) : 'deployment';
  const path = join(outDir, `${base}.${opts.platform}.json`);
  writeFileSync(path, JSON.stringify(manifest, null, 2) + '\n');
  return { path, manifest, ...(trustedSigners ? { trustedSigners } : {}) };
}

/** The repository root: the nearest ancestor with a deployment.template.json or a workspaces package.json. */
export function findRepoRoot(start: string = process.cwd()): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'deployment.template.json'))) return dir;
    const parent = resolve(dir, '..');
    if (parent === dir) return resolve(start);
    dir = parent;
  }
}
