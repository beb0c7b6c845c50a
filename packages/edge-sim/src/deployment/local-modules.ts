/** Finds local module folders (`<repoRoot>/modules/<name>/module.json`) and what to run in each. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { expandVariables, type MissingVariables } from './placeholders.js';

export interface LocalModule {
  /** Folder name under modules/. */
  folder: string;
  dir: string;
  /** module.json image.repository after ${VAR} substitution (lower-cased for matching). */
  repository?: string;
  /** module.json with variables expanded (as written otherwise). */
  json: unknown;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `${file}: not valid JSON (${(err as Error).message})`);
  }
}

/** Every `<repoRoot>/modules/<name>/module.json`, `${VAR}`/`$VAR` expanded; unset ones recorded in `missing`. */
export function findLocalModules(repoRoot: string, vars: Record<string, string | undefined>, missing: MissingVariables = new Map()): LocalModule[] {
  const root = join(repoRoot, 'modules');
  if (!existsSync(root)) return [];
  const out: LocalModule[] = [];
  for (const ent of readdirSync(root, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!ent.isDirectory()) continue;
    const dir = join(root, ent.name);
    const mj = join(dir, 'module.json');
    if (!existsSync(mj)) continue;
    const json = expandVariables(readJson(mj), vars, missing, `modules/${ent.name}/module.json`) as { image?: { repository?: unknown } };
    const repo = json?.image?.repository;
    out.push(typeof repo === 'string' ? { folder: ent.name, dir, repository: repo.toLowerCase(), json } : { folder: ent.name, dir, json });
  }
  return out;
}

/** `node <entry>`: the module's package.json "main" (default index.js), resolved in its folder. */
export function moduleEntry(dir: string): string {
  const pj = join(dir, 'package.json');
  if (!existsSync(pj)) throw new EnclaveEdgeError('CONFIG_INVALID', `local module ${dir} has module.json but no package.json to say what to run`);
  const main = (readJson(pj) as { main?: unknown }).main;
  return resolve(dir, typeof main === 'string' && main !== '' ? main : 'index.js');
}

/** Image without tag or digest: `host:5000/repo/name:1.0` → `host:5000/repo/name`. */
export function imageRepository(image: string): string {
  const noDigest = image.split('@')[0]!;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return (colon > lastSlash ? noDigest.slice(0, colon) : noDigest).toLowerCase();
}
