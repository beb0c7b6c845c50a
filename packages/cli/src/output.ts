/** Output conventions shared by every command: human text by default, `--json` for scripts. */
import { toEnclaveEdgeError } from '@enclave-edge/errors';

export interface GlobalOptions {
  json?: boolean;
}

/** Print a result: JSON when asked, otherwise the human rendering. */
export function emit(opts: GlobalOptions, value: unknown, human: (v: any) => string): void {
  if (opts.json) process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  else process.stdout.write(human(value).replace(/\n?$/, '\n'));
}

/** A failed command: one-line reason on stderr (JSON on stdout with --json), non-zero exit. */
export function fail(opts: GlobalOptions, err: unknown, exitCode = 1): never {
  const e = toEnclaveEdgeError(err);
  if (opts.json) process.stdout.write(JSON.stringify({ error: e.toJSON() }) + '\n');
  process.stderr.write(`enclave-edge: ${e.code}: ${e.message.split('\n')[0]}\n`);
  process.exit(exitCode);
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
