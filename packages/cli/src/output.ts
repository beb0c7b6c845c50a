/**
 * Output conventions shared by every command:
 * - results: human text by default, `--json` for scripts (one JSON document on stdout);
 * - failures: exactly one line `enclave-edge: CODE: reason` on stderr, `{"error":{code,message}}`
 *   on stdout with `--json`, and a non-zero exit (see EXIT). No stack traces unless
 *   ENCLAVE_EDGE_DEBUG=1.
 */
import { toEnclaveEdgeError } from '@enclave-edge/errors';

export interface GlobalOptions {
  json?: boolean;
}

/** Exit statuses of every command. */
export const EXIT = {
  OK: 0,
  /** The command ran and failed; the error code on stderr says why. */
  FAILED: 1,
  /** The command line could not be used: unknown command or option, missing or invalid argument. */
  USAGE: 2,
  /** `invoke`: the method ran and answered a status outside 2xx (its answer is still printed). */
  METHOD_STATUS: 3,
} as const;

/** Print a result: JSON when asked, otherwise the human rendering. */
export function emit(opts: GlobalOptions, value: unknown, human: (v: any) => string): void {
  if (opts.json) process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  else process.stdout.write(human(value).replace(/\n?$/, '\n'));
}

/** Rows as aligned text columns (two spaces apart, no trailing blanks); cells are escaped to one line. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const clean = rows.map((r) => r.map((c) => c.replace(/[\u0000-\u001f\u007f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`)));
  const widths: number[] = [];
  for (const r of clean) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return clean.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** A warning on stderr (`enclave-edge: warning: …`), never mistaken for the failure line. */
export function warn(message: string): void {
  process.stderr.write(`enclave-edge: warning: ${oneLine(message)}\n`);
}

/** One line, whatever the message holds (multi-line library messages are joined). */
export function oneLine(message: string): string {
  return message.trim().split(/\s*\n\s*/).join(' ') || 'failed';
}

/** A failed command: one-line reason on stderr (JSON on stdout with --json), non-zero exit. */
export function fail(opts: GlobalOptions, err: unknown, exitCode: number = EXIT.FAILED): never {
  const e = toEnclaveEdgeError(err);
  const message = oneLine(e.message);
  if (opts.json) process.stdout.write(JSON.stringify({ error: { ...e.toJSON(), message } }) + '\n');
  process.stderr.write(`enclave-edge: ${e.code}: ${message}\n`);
  if (process.env.ENCLAVE_EDGE_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(exitCode);
}

/** Whether the command line asks for JSON (`--json` anywhere before a `--`). */
export function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

/** Wrap a command action so every failure goes through `fail`. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as { optsWithGlobals?: () => GlobalOptions } | undefined;
    const opts = cmd?.optsWithGlobals?.() ?? {};
    try {
      await fn(...args);
    } catch (err) {
      fail(opts, err);
    }
  };
}
