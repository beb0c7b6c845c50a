/** `${VAR}` substitution as iotedgedev does it, from the environment and an optional `.env`. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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

export function readDotenv(dir: string): Record<string, string> {
  try {
    return parseDotenv(readFileSync(join(dir, '.env'), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces `${VAR}` in every string of a JSON value. `${MODULES.x}` is left for the module
 * resolver; unknown variables stay as written and are reported once each in `missing`.
 */
export function substituteVars(value: unknown, vars: Record<string, string | undefined>, missing: Set<string>): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR, (whole, name: string) => {
      const v = Object.hasOwn(vars, name) ? vars[name] : undefined;
      if (v === undefined) {
        missing.add(name);
        return whole;
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v) => substituteVars(v, vars, missing));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) out[k] = substituteVars(v, vars, missing);
    return out;
  }
  return value;
}
