/**
 * How a printed hint names this CLI and quotes its arguments, so that every suggested command
 * can be pasted back as it is. `npx enclave-edge` is suggested only where npx finds the command
 * in a local node_modules/.bin (the repository, or a project `ta new` made and `npm install`ed):
 * elsewhere npx would ask the public registry for a package of that name.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This installation's `bin/enclave-edge.js`. */
export const CLI_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/enclave-edge.js');

/** Whether `npx enclave-edge` run in `cwd` resolves a local bin without a registry lookup. */
export function npxResolvesLocally(cwd: string = process.cwd()): boolean {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules', '.bin', 'enclave-edge'))) return true;
    if (dirname(dir) === dir) return false;
  }
}

/** The command prefix a hint should print for `cwd`. */
export function cliCommand(cwd: string = process.cwd()): string {
  return npxResolvesLocally(cwd) ? 'npx enclave-edge' : `node ${shellQuote(CLI_BIN)}`;
}

/** A word as a POSIX shell reads it back: bare when safe, else single-quoted. */
export function shellQuote(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}
