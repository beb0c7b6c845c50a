/**
 * `enclave-edge ta run`: call a TA locally in the real emulated enclave, with a DEVELOPMENT-GRADE
 * software root of trust in a local state dir (default .enclave-edge/dev), before deploying it.
 * stdout carries the result only (human or --json); TA logs and warnings go to stderr.
 */
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Command } from 'commander';
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import { computeSignerId, spkiFromPem } from '@enclave-edge/bundle';
import { escapeLogText } from '@enclave-edge/observability/escape';
import { action, emit, warn, type GlobalOptions } from '../output.js';
import { inspectorBanner, refuseReleaseInspect } from './inspect-hint.js';
import type { Value } from '@enclave-edge/ta-sdk';
import type { LocalTA } from '@enclave-edge/ta-toolchain/run-local';

type Opts = GlobalOptions & Record<string, unknown>;

/** --signer accepts a signer_id (64 hex) or a PEM public key / certificate / private key file. */
export function signerIdsFrom(values: string[]): string[] {
  return values.map((v) => {
    if (/^[0-9a-fA-F]{64}$/.test(v)) return v.toLowerCase();
    if (existsSync(v)) {
      let pem: string;
      try {
        pem = readFileSync(v, 'utf8');
      } catch (e) {
        throw new EnclaveEdgeError('ITEM_NOT_FOUND', `cannot read --signer ${v}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      return computeSignerId(spkiFromPem(pem));
    }
    throw new EnclaveEdgeError('BAD_PARAMETERS', `--signer ${v}: neither a 64-hex signer_id nor a readable PEM file`);
  });
}

/** params: JSON text, `@file` for a JSON file, `-` for stdin; `{"$binary":"<base64>"}` is bytes. */
function paramsText(arg: string | undefined): string | undefined {
  if (arg === undefined) return undefined;
  const from = (path: string, what: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new EnclaveEdgeError('ITEM_NOT_FOUND', `cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  if (arg === '-') return from('/dev/stdin', 'params from stdin');
  if (arg.startsWith('@')) return from(arg.slice(1), `params file ${arg.slice(1)}`);
  return arg;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `params are not JSON (${(e as Error).message}); quote them, e.g. '{"name":"a"}'`);
  }
}

function positiveInt(name: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new EnclaveEdgeError('BAD_PARAMETERS', `${name} must be an integer from 1 to ${max}`);
    return n;
  };
}

const show = (p: string) => relative(process.cwd(), p) || p;
const stderr = (line: string) => process.stderr.write(line.replace(/\n?$/, '\n'));

function fieldsText(fields?: Record<string, unknown>): string {
  if (!fields || Object.keys(fields).length === 0) return '';
  try {
    return ' ' + JSON.stringify(fields);
  } catch {
    return ' [unprintable fields]';
  }
}

/** One line when it is short, indented JSON otherwise. */
/**
 * Calls through the enclave's confidential endpoint, verified against the local development
 * device CA (made by the first attest): the same path a remote ConfidentialClient takes.
 */
async function localConfidentialCall(local: LocalTA, sid: string | undefined, callOpts: { timeoutMs?: number }, allowDebug: boolean): Promise<(command: string, params: Value) => Promise<Value>> {
  const [{ ConfidentialClient }, { ENCLAVE_ATTEST_COMMAND }, { encodeValue, decodeValue }, { randomBytes }] = await Promise.all([
    import('@enclave-edge/confidential/client'), import('@enclave-edge/confidential/names'), import('@enclave-edge/protocol/value-codec'), import('node:crypto'),
  ]);
  const attest = async (nonce: string) => (await local.enclave.invoke(undefined, ENCLAVE_ATTEST_COMMAND, { nonce })) as string;
  await attest(randomBytes(16).toString('hex'));
  const client = new ConfidentialClient({
    trustAnchors: readFileSync(local.rootOfTrust.deviceCaPath, 'utf8'),
    policy: { allowEmulated: true, allowDebug },
    transport: {
      attest: (_ta, nonce) => attest(nonce),
      invoke: async (_ta, command, params) => encodeValue(await local.enclave.invoke(sid, command, decodeValue(params), callOpts)) as never,
    },
  });
  return (command, params) => client.invoke(local.bundle.manifest.name, command, params);
}

function renderResult(r: unknown): string {
  const line = JSON.stringify(r);
  return line.length <= 100 ? line : JSON.stringify(r, null, 2);
}

export function registerRun(ta: Command): void {
  ta.command('run <bundle> <command> [params]')
    .description('call a TA command locally in the real emulated enclave (DEVELOPMENT root of trust in --state-dir); params are JSON, {"$binary":"<base64>"} for bytes, @file or - for stdin')
    .option('--signer <signer>', 'trusted signer: signer_id hex or PEM public key/certificate (repeatable; required: there is no "any signer")', (v: string, acc: string[] = []) => [...acc, v])
    .option('--allow-debug', 'admit a debug build (refused by default, as on a production device)')
    .option('--state-dir <dir>', 'development root of trust and sealed storage (kept across runs)', '.enclave-edge/dev')
    .option('--rot <kind>', 'root of trust: software (development keys in --state-dir) or tpm (keys in the TPM, storage bound to its NV counter)', 'software')
    .option('--tcti <tcti>', 'with --rot tpm: which TPM, e.g. swtpm:host=127.0.0.1,port=2321 or device:/dev/tpmrm0 (default: $ENCLAVE_EDGE_TPM_TCTI or device:/dev/tpmrm0)')
    .option('--session', 'open one session and make every call in it (default: each call in its own implicit session)')
    .option('--session-params <json>', 'with --session: params for the TA\'s onOpenSession (JSON)')
    .option('--repeat <n>', 'call the command n times (stops at the first failure; prints the last result, --json all of them)', positiveInt('--repeat', 100_000), 1)
    .option('--timeout <ms>', 'per-call deadline in ms (default: the manifest\'s callTimeoutMs)', positiveInt('--timeout', 3_600_000))
    .option('--quiet', 'do not print TA log lines')
    .option('--inspect', 'DEBUG TAs only (with --allow-debug): open a V8 inspector for the TA on 127.0.0.1 and print its URL')
    .option('--inspect-brk', 'as --inspect, and wait for a debugger to attach; the TA stops before its first line')
    .action(action(async (bundlePath: string, command: string, params: string | undefined, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as Opts;
      const [{ decodeValue, encodeValue }, { admitLocal }] = await Promise.all([
        import('@enclave-edge/protocol/value-codec'),
        import('@enclave-edge/ta-toolchain/admit-local'),
      ]);
      // Everything the user typed is checked before the enclave exists.
      const input = decodeValue(parseJson(paramsText(params)));
      const sessionParams = typeof opts.sessionParams === 'string' ? decodeValue(parseJson(opts.sessionParams)) : undefined;
      if (sessionParams !== undefined && !opts.session) throw new EnclaveEdgeError('BAD_PARAMETERS', '--session-params needs --session');
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(readFileSync(bundlePath));
      } catch (e) {
        throw new EnclaveEdgeError('ITEM_NOT_FOUND', `cannot read bundle ${bundlePath}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      if (!Array.isArray(opts.signer)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'name the signer you trust: --signer <signer_id or PEM public key>, e.g. --signer key.pub.pem');
      const signers = signerIdsFrom(opts.signer as string[]);
      const repeat = opts.repeat as number;
      const timeoutMs = typeof opts.timeout === 'number' ? opts.timeout : undefined;

      if (opts.rot !== 'software' && opts.rot !== 'tpm') throw new EnclaveEdgeError('BAD_PARAMETERS', `--rot must be software or tpm, got ${JSON.stringify(opts.rot)}`);
      if (opts.tcti !== undefined && opts.rot !== 'tpm') throw new EnclaveEdgeError('BAD_PARAMETERS', '--tcti needs --rot tpm');
      const tcti = typeof opts.tcti === 'string' ? opts.tcti : process.env.ENCLAVE_EDGE_TPM_TCTI;
      const policy = { trustedSigners: signers, allowDebug: opts.allowDebug === true };
      const admitted = await admitLocal(bytes, policy); // refuse before the enclave and the root of trust are even loaded
      const inspect = opts.inspectBrk ? 'wait' : opts.inspect ? true : undefined;
      if (inspect) await refuseReleaseInspect(inspect === 'wait' ? '--inspect-brk' : '--inspect', admitted.manifest, 'rebuild it with `ta build --debug` and run it with --allow-debug');
      const { openLocalTA } = await import('@enclave-edge/ta-toolchain/run-local');
      const local = await openLocalTA(bytes, {
        ...policy,
        stateDir: opts.stateDir as string,
        rot: opts.rot,
        ...(tcti ? { tcti } : {}),
        ...(inspect ? { inspect, onInspector: (url: string, i: { waiting: boolean }) => stderr(inspectorBanner(admitted.manifest.name, url, i.waiting)) } : {}),
        log: (level, name, message, fields) => {
          if (!opts.quiet) stderr(escapeLogText(`[${name}] ${level.padEnd(5)} ${message}${fieldsText(fields)}`));
        },
        onAdmitted: (b, rot) =>
          warn(
            `running ${b.manifest.name} ${b.manifest.version}${b.manifest.debug ? ' (DEBUG)' : ''} in the emulated enclave — ` +
              (rot.developmentGrade
                ? `DEVELOPMENT-GRADE root of trust: keys in plain form in ${show(rot.keyFile)}, not for production`
                : `root of trust "${rot.kind}": keys in the TPM (${show(rot.keyFile)} names them), sealed storage bound to its NV counter`),
          ),
        trustLog: (level, message) => {
          // Not the command's failure line (that is `enclave-edge: CODE: reason`), so a warning either way.
          if (level === 'warn' || level === 'error') warn(level === 'error' ? `root of trust error: ${message}` : message);
        },
      });
      try {
        const m = local.bundle.manifest;
        const sid = opts.session ? await local.enclave.openSession(sessionParams) : undefined;
        const callOpts = timeoutMs === undefined ? {} : { timeoutMs };
        // A confidential-only command is called as a remote caller would: evidence verified, then sealed.
        const confidential = m.confidentialCommands?.includes(command) === true;
        const call = confidential ? await localConfidentialCall(local, sid, callOpts, opts.allowDebug === true) : (c: string, p: Value) => local.enclave.invoke(sid, c, p, callOpts);
        const results: unknown[] = [];
        const started = performance.now();
        for (let i = 0; i < repeat; i++) {
          try {
            results.push(encodeValue(await call(command, input)));
          } catch (err) {
            const e = toEnclaveEdgeError(err);
            const stack = e.detail?.stack;
            if (typeof stack === 'string' && !opts.json) stderr(`TA stack (debug build):\n${stack}`);
            throw repeat > 1 ? new EnclaveEdgeError(e.code, `call ${i + 1} of ${repeat}: ${e.message}`, e.detail ? { detail: e.detail } : undefined) : e;
          }
        }
        const durationMs = Math.round((performance.now() - started) * 100) / 100;
        if (sid !== undefined) await local.enclave.closeSession(sid);
        const out = {
          ta: { name: m.name, version: m.version, measurement: local.bundle.measurement, signerId: local.bundle.signerId, debug: m.debug },
          command,
          backend: local.enclave.backend,
          rootOfTrust: local.rootOfTrust,
          session: sid !== undefined,
          confidential,
          calls: repeat,
          durationMs,
          result: results[results.length - 1],
          ...(repeat > 1 ? { results } : {}),
        };
        emit(opts, out, () => renderResult(results[results.length - 1]));
        if (repeat > 1 && !opts.json) stderr(`enclave-edge: ${repeat} calls in ${durationMs} ms (${Math.round((durationMs / repeat) * 1000) / 1000} ms per call)`);
      } finally {
        await local.close();
        // The enclave is destroyed and the root of trust closed; should anything else still hold
        // the event loop (a worker the backend keeps warm, a stray timer), do not hang the shell.
        setTimeout(() => process.exit(), 2_000).unref();
      }
    }));
}
