/**
 * `deploy generate`, as iotedgedev and the VS Code extension do it: variables from the environment
 * and the `.env` beside the template (`${VAR}` and `$VAR`, also inside module.json), every
 * `${MODULES.<name>[.<platform>][.debug]}` to the module's image for a platform, `$schema-template`
 * dropped, createOptions (objects, strings or existing chunks) re-split into `createOptions`,
 * `createOptions01`, … of at most 512 characters, and the result checked against the official
 * schema before it is written. Placeholders and chunks have one owner, shared with `sim up`:
 * @enclave-edge/edge-sim/deployment.
 */
import { readFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { writeFileAtomicSync } from '@enclave-edge/durable-files';
import {
  deployedForm, expandVariables, findLocalModules, readCreateOptions, resolveModuleRefs, templateVariables,
  CREATE_OPTIONS_CHUNK, type MissingVariables, type ModuleRef,
} from '@enclave-edge/edge-sim/deployment';
import { applySignerOptions, type SignerOptions } from './deploy-signers.js';
import { checkDeployment } from './deploy-schema.js';

export const PLATFORMS = ['amd64', 'arm64v8', 'arm32v7'] as const;
export type Platform = (typeof PLATFORMS)[number];
export { CREATE_OPTIONS_CHUNK };

export interface ModuleJson {
  image: {
    repository: string;
    /** Keys are platforms (`amd64`) and their debug variants (`amd64.debug`), values Dockerfile paths. */
    tag: { version: string; platforms: Record<string, string> };
    contextPath?: string;
    buildOptions?: string[];
  };
}

export function isPlatform(p: string): p is Platform {
  return (PLATFORMS as readonly string[]).includes(p);
}

function refuseMissing(missing: MissingVariables, where: string): void {
  if (missing.size === 0) return;
  const list = [...missing].map(([ph, at]) => `${ph} (at ${at})`).join(', ');
  throw new EnclaveEdgeError('CONFIG_INVALID', `not set in the environment or ${where}: ${list}`);
}

/**
 * Every modules/<name>/module.json below the repository root, with variables expanded from `vars`
 * (default: the environment and `<repoRoot>/.env`); an unset one is refused, naming it.
 */
export function readModuleJsons(repoRoot: string, vars?: Record<string, string | undefined>): Map<string, ModuleJson> {
  const out = new Map<string, ModuleJson>();
  const missing: MissingVariables = new Map();
  const locals = findLocalModules(repoRoot, vars ?? templateVariables(repoRoot, process.env), missing);
  refuseMissing(missing, join(repoRoot, '.env'));
  for (const l of locals) {
    const parsed = l.json as Partial<ModuleJson> | null;
    const file = join(l.dir, 'module.json');
    if (!parsed?.image?.repository || !parsed.image.tag?.version || !parsed.image.tag.platforms || typeof parsed.image.tag.platforms !== 'object') {
      throw new EnclaveEdgeError('CONFIG_INVALID', `${file} needs image.repository, image.tag.version and image.tag.platforms`);
    }
    out.set(l.folder, parsed as ModuleJson);
  }
  return out;
}

/** `<repository>:<version>-<platform>[.debug]`, as iotedgedev tags the image it builds from that Dockerfile. */
export function imageFor(name: string, mod: ModuleJson, platform: string, debug = false): string {
  const key = debug ? `${platform}.debug` : platform;
  if (!Object.hasOwn(mod.image.tag.platforms, key)) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `module "${name}" has no Dockerfile for platform ${key} in its module.json (image.tag.platforms)`);
  }
  return `${mod.image.repository}:${mod.image.tag.version}-${key}`;
}

export interface GenerateInput {
  template: string;
  modules: Map<string, ModuleJson>;
  platform: Platform;
  /** Variables for `${VAR}`/`$VAR` (the CLI passes the environment over the template's `.env`). */
  env?: Record<string, string | undefined>;
  /** Names the template in messages. */
  label?: string;
}

export function generateDeployment({ template, modules, platform, env = {}, label = 'the deployment template' }: GenerateInput): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(template);
  } catch (err) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `${label} is not valid JSON: ${(err as Error).message}`);
  }
  const missing: MissingVariables = new Map();
  const expanded = expandVariables(parsed, templateVariables(undefined, env), missing);
  refuseMissing(missing, `the .env beside ${label}`);
  const manifest = resolveModuleRefs(expanded, (ref: ModuleRef, placeholder: string) => {
    const mod = modules.get(ref.folder);
    if (!mod) throw new EnclaveEdgeError('CONFIG_INVALID', `${placeholder}: no module "${ref.folder}" with a module.json under modules/`);
    return imageFor(ref.folder, mod, ref.platform ?? platform, ref.debug);
  }) as Record<string, any>;
  const agent = manifest.modulesContent?.$edgeAgent?.['properties.desired'];
  if (!agent || typeof agent !== 'object') throw new EnclaveEdgeError('CONFIG_INVALID', `${label} has no modulesContent.$edgeAgent["properties.desired"]`);
  return deployedForm(manifest) as Record<string, unknown>;
}

/** Reassembled createOptions of generated settings (what edgeAgent reads). */
export function joinCreateOptions(settings: Record<string, unknown>): unknown {
  return readCreateOptions(settings, 'settings');
}

/**
 * Generate config/deployment.<platform>.json from a template file; returns the written path.
 * With `signers` (the CLI always passes it) the trusted signers are replaced/checked first and
 * nothing is written when the public DEV signer is trusted without `allowDevSigner`.
 */
export function generateDeploymentFile(opts: { repoRoot: string; template?: string; platform: Platform; outDir?: string; env?: Record<string, string | undefined>; signers?: SignerOptions }): { path: string; manifest: Record<string, unknown>; trustedSigners?: Record<string, Record<string, string>> } {
  const templatePath = resolve(opts.repoRoot, opts.template ?? 'deployment.template.json');
  if (!existsSync(templatePath)) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no deployment template at ${templatePath}`);
  // iotedgedev's .env sits beside the template; the environment wins over it.
  const vars = templateVariables(dirname(templatePath), opts.env ?? process.env);
  const manifest = generateDeployment({
    template: readFileSync(templatePath, 'utf8'),
    modules: readModuleJsons(opts.repoRoot, vars),
    platform: opts.platform,
    env: vars,
    label: relative(process.cwd(), templatePath) || templatePath,
  });
  const trustedSigners = opts.signers ? applySignerOptions(manifest as Record<string, any>, opts.signers) : undefined;
  const outDir = resolve(opts.repoRoot, opts.outDir ?? 'config');
  const base = templatePath.endsWith('.template.json') ? templatePath.slice(templatePath.lastIndexOf('/') + 1, -'.template.json'.length) : 'deployment';
  const path = join(outDir, `${base}.${opts.platform}.json`);
  const text = JSON.stringify(manifest, null, 2) + '\n';
  // Check the very text that is written; nothing is written (or replaced) when it fails.
  checkDeployment(JSON.parse(text), relative(process.cwd(), path) || path);
  mkdirSync(outDir, { recursive: true });
  // 0600: registry credentials from .env may be in it.
  writeFileAtomicSync(path, text, 0o600);
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
