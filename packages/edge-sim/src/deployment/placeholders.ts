/**
 * The one owner of manifest placeholders, for `sim up` and `deploy generate` alike: `.env`,
 * `${VAR}` / `$VAR` expansion, and `${MODULES.<name>[.<platform>][.debug]}` references.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';

/** Parses a dotenv file: KEY=value lines, `#` comments, optional single/double quotes. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"') && v.length >= 2) || (v.startsWith("'") && v.endsWith("'") && v.length >= 2)) v = v.slice(1, -1);
    else v = v.replace(/\s+#.*$/, '');
    out[m[1]!] = v;
  }
  return out;
}

/** `<dir>/.env`, or nothing when there is none. */
export function readDotenv(dir: string): Record<string, string> {
  try {
    return parseDotenv(readFileSync(join(dir, '.env'), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Object.create(null) as Record<string, string>;
    throw err;
  }
}

/**
 * The variables a template sees: `.env` beside it, with the process environment winning (as
 * iotedgedev loads it). A null-prototype map, so names like `constructor` are only data.
 */
export function templateVariables(dir: string | undefined, env: Record<string, string | undefined>): Record<string, string> {
  const out = Object.assign(Object.create(null) as Record<string, string>, dir === undefined ? {} : readDotenv(dir));
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * `${NAME}` for any name, and bare `$NAME` only for names that start with an upper-case letter or
 * `_`: IoT Edge's own `$` words (`$edgeAgent`, `$upstream`, `$body`, `$connectionDeviceId`,
 * `$schema-template`) all start lower-case and must never be touched.
 */
const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Z_][A-Za-z0-9_]*)/g;

/** What was not set: the placeholder as written → the JSON path where it first appeared. */
export type MissingVariables = Map<string, string>;

/**
 * Expands variables in every string and key of a JSON value (never in the JSON text, so a value
 * cannot change the document's structure). `${MODULES.x}` is left for resolveModuleRefs; unset
 * variables stay as written and are recorded in `missing`.
 */
export function expandVariables(value: unknown, vars: Record<string, string | undefined>, missing: MissingVariables, path = ''): unknown {
  const one = (s: string, at: string): string =>
    s.replace(VARIABLE, (whole, braced: string | undefined, bare: string | undefined) => {
      const name = (braced ?? bare)!;
      const v = Object.hasOwn(vars, name) ? vars[name] : undefined;
      if (v === undefined) {
        if (!missing.has(whole)) missing.set(whole, at || '(root)');
        return whole;
      }
      return v;
    });
  if (typeof value === 'string') return one(value, path);
  if (Array.isArray(value)) return value.map((v, i) => expandVariables(v, vars, missing, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) {
      const at = path ? `${path}.${k}` : k;
      out[one(k, at)] = expandVariables(v, vars, missing, at);
    }
    return out;
  }
  return value;
}

/** `${MODULES.<name>}` with an optional platform and `.debug`, as iotedgedev and VS Code write it. */
export interface ModuleRef {
  /** The module folder under modules/. */
  folder: string;
  /** An explicit platform (`${MODULES.x.arm64v8}`); otherwise the one being generated for. */
  platform?: string;
  /** `.debug`: the module.json platform `<platform>.debug` (its Dockerfile.<platform>.debug). */
  debug: boolean;
}

const MODULE_REF = /\$\{MODULES\.([^.}]+)((?:\.[^.}]*)*)\}/g;

function parseRef(folder: string, suffix: string, whole: string): ModuleRef {
  const parts = suffix.split('.').slice(1);
  const debug = parts.at(-1) === 'debug';
  if (debug) parts.pop();
  if (parts.length > 1 || parts[0] === '') throw new EnclaveEdgeError('CONFIG_INVALID', `${whole}: expected \${MODULES.<name>}, \${MODULES.<name>.debug}, \${MODULES.<name>.<platform>} or \${MODULES.<name>.<platform>.debug}`);
  return parts.length === 1 ? { folder, platform: parts[0]!, debug } : { folder, debug };
}

/** The reference when the whole string is one `${MODULES.…}` placeholder (a module's image). */
export function parseModuleRef(image: string): ModuleRef | undefined {
  const m = new RegExp(`^${MODULE_REF.source}$`).exec(image);
  return m ? parseRef(m[1]!, m[2]!, m[0]) : undefined;
}

/** Replaces every `${MODULES.…}` in the strings of a JSON value with what `resolve` answers. */
export function resolveModuleRefs(value: unknown, resolve: (ref: ModuleRef, placeholder: string) => string): unknown {
  if (typeof value === 'string') return value.replace(MODULE_REF, (whole, folder: string, suffix: string) => resolve(parseRef(folder, suffix, whole), whole));
  if (Array.isArray(value)) return value.map((v) => resolveModuleRefs(v, resolve));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) out[k] = resolveModuleRefs(v, resolve);
    return out;
  }
  return value;
}
