/**
 * `enclave-edge ta deploy [dir|bundle]`: build (a project folder) or take a bundle, sign it if a key
 * is named, make sure the target trusts its signer (only with --trust-signer does it change the
 * policy), put the bundle where ta-runtime reads it, patch the TA into ta-runtime's desired
 * properties, and wait until ta-runtime reports it loaded or refused.
 *
 * The patch names only this TA (and, with --trust-signer, one signer label): desired properties
 * are merge-patched, so every other TA entry stays as it is.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { EnclaveEdgeError, isErrorCode, type ErrorCode } from '@enclave-edge/errors';
import { inspectBundle, openSigner, signBundle } from '@enclave-edge/bundle';
import { action, emit, warn, type GlobalOptions } from '../output.js';
import { addTargetOptions, type TargetOptions } from './target-options.js';
import { cliCommand, shellQuote } from './cli-hint.js';
import { inspectorBanner, refuseReleaseInspect } from './inspect-hint.js';

type DeployOptions = GlobalOptions & TargetOptions & {
  key?: string;
  debug?: boolean;
  trustSigner?: string | boolean;
  inspect?: 'on' | 'wait';
  source?: string;
  module: string;
  wait: number;
};

export interface DeployOutcome {
  ta: string;
  version: string;
  measurement: string;
  signerId: string;
  source: string;
  status: string;
  trustedSignerAdded?: { label: string; signerId: string };
  lastError?: string;
  /** With --inspect: where the TA's inspector listens. */
  inspectorUrl?: string;
  invoke: string;
}

/** Inline bundles must leave room in a module twin's desired properties (IoT Hub: 32 KB). */
const MAX_INLINE_BYTES = 16 * 1024;

async function bundleFrom(input: string, o: DeployOptions): Promise<Uint8Array> {
  const path = resolve(input);
  if (!existsSync(path)) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `${input} does not exist: give a TA project folder (with ta.json) or a .tab bundle`);
  const opened = o.key ? await openSigner(o.key) : undefined;
  try {
    if (statSync(path).isDirectory()) {
      if (!existsSync(join(path, 'ta.json'))) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `${input} has no ta.json: is it a TA project folder? (create one with \`ta new\`)`);
      const { buildTA } = await import('@enclave-edge/ta-toolchain');
      const r = await buildTA(path, { ...(o.debug ? { debug: true } : {}), ...(opened ? { signer: opened.signer } : {}) });
      return r.bundle;
    }
    if (o.debug) throw new EnclaveEdgeError('BAD_PARAMETERS', '--debug builds a project folder; this is a built bundle');
    const bytes = new Uint8Array(readFileSync(path));
    return opened ? await signBundle(bytes, opened.signer) : bytes;
  } finally {
    await opened?.close();
  }
}

/** The signer label --trust-signer adds when it is given without one: per TA and key, so labels never collide. */
const defaultLabel = (ta: string, signerId: string) => `${ta}-${signerId.slice(0, 8)}`;

export function registerDeploy(ta: Command): void {
  addTargetOptions(
    ta
      .command('deploy [dir|bundle]')
      .description('build (if a folder), sign, and load a TA into the running local edge or a device; waits until it is loaded or refused')
      .option('--key <key>', 'sign with this key: PEM file or pkcs11: URI (as `ta sign`); without it the bundle must already be signed')
      .option('--debug', 'debug build (project folders only)')
      .option('--inspect [mode]', 'DEBUG TAs only: open a debugger for it in ta-runtime, on 127.0.0.1 ("on", the default, or "wait": wait for the debugger before its first line); without it, none', (v: string) => {
        if (v !== 'on' && v !== 'wait') throw new EnclaveEdgeError('BAD_PARAMETERS', `--inspect takes on or wait, got ${JSON.stringify(v)}`);
        return v;
      })
      .option('--trust-signer [label]', "add the bundle's signer to ta-runtime's policy.trustedSigners (label default <ta>-<signer_id prefix>)")
      .option('--source <url>', 'where ta-runtime fetches the bundle (https:// URL); default: the simulator\'s state folder, or inline for a small bundle on a device')
      .option('--module <id>', 'the ta-runtime module id', 'ta-runtime')
      .option('--wait <s>', 'how long to wait for the TA to be loaded or refused (seconds)', (v: string) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0 || n > 600) throw new EnclaveEdgeError('BAD_PARAMETERS', `--wait must be 0 < s <= 600, got ${v}`);
        return n;
      }, 60),
  ).action(action(async (input: string | undefined, _o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals() as DeployOptions;
    if ((o.inspect as unknown) === true) o.inspect = 'on';
    const out = await deployTA(input ?? '.', o);
    if (out.inspectorUrl) process.stderr.write(inspectorBanner(out.ta, out.inspectorUrl, o.inspect === 'wait') + '\n');
    emit(o, out, (v: DeployOutcome) => [
      ...(v.trustedSignerAdded ? [`Trusted signer ${v.trustedSignerAdded.signerId} as "${v.trustedSignerAdded.label}" in ${o.module} policy.trustedSigners`] : []),
      `Deployed ${v.ta} ${v.version} → ${v.status}`,
      `measurement    ${v.measurement}`,
      `signer_id      ${v.signerId}`,
      `source         ${v.source}`,
      ...(v.inspectorUrl ? [`inspector      ${v.inspectorUrl}`] : []),
      '',
      `Try it: ${v.invoke}`,
    ].join('\n'));
  }));
}

export async function deployTA(input: string, o: DeployOptions): Promise<DeployOutcome> {
  const bytes = await bundleFrom(input, o);
  const info = inspectBundle(bytes);
  if (!info.signed || !info.signerId) throw new EnclaveEdgeError('SIGNATURE_INVALID', `${input} is not signed: name a key with --key <key.pem | pkcs11:…> (create one with \`${cliCommand()} ta keygen --out key.pem\`)`);
  if (!info.verification.ok) throw new EnclaveEdgeError('SIGNATURE_INVALID', `${input}: ${info.verification.code}: ${info.verification.reason}`);
  const name = info.manifest.name;
  const signerId = info.signerId;
  if (o.inspect) await refuseReleaseInspect('--inspect', info.manifest, 'deploy a debug build (--debug) to inspect it');

  const { resolveTarget } = await import('./hub-target.js');
  const t = await resolveTarget(o);
  try {
    const twin = await t.client.getModuleTwin(t.deviceId, o.module);
    const desired = ((twin.properties as { desired?: Record<string, unknown> } | undefined)?.desired ?? {}) as { policy?: { trustedSigners?: Record<string, unknown> } };
    const signers = desired.policy?.trustedSigners ?? {};
    const trusted = Object.values(signers).includes(signerId);
    const patch: { tas: Record<string, unknown>; policy?: { trustedSigners: Record<string, string> } } = { tas: {} };
    let added: { label: string; signerId: string } | undefined;
    if (!trusted) {
      if (o.trustSigner === undefined || o.trustSigner === false) {
        throw new EnclaveEdgeError('POLICY_VIOLATION', `${o.module} does not trust signer ${signerId} of ${name}. Fix: ${cliCommand()} ta deploy ${shellQuote(input)}${o.key ? ` --key ${shellQuote(o.key)}` : ''} --trust-signer` +
          ` (or: ${cliCommand()} twin patch ${o.module} '${JSON.stringify({ policy: { trustedSigners: { [defaultLabel(name, signerId)]: signerId } } })}')`);
      }
      const label = typeof o.trustSigner === 'string' ? o.trustSigner : defaultLabel(name, signerId);
      if (Object.hasOwn(signers, label)) throw new EnclaveEdgeError('CONFLICT', `policy.trustedSigners already has a signer labelled "${label}"; choose another: --trust-signer <label>`);
      patch.policy = { trustedSigners: { [label]: signerId } };
      added = { label, signerId };
    } else if (typeof o.trustSigner === 'string') {
      warn(`signer ${signerId} is already trusted; --trust-signer changes nothing`);
    }

    const source = o.source ?? placeBundle(t.simulator, o.stateDir ?? '.edge-sim', name, info.measurement, bytes);
    // Always said: a deploy without --inspect turns a previous one off.
    patch.tas[name] = { source, measurement: info.measurement, enabled: true, inspect: o.inspect === 'wait' ? 'wait' : o.inspect === 'on' };
    const since = Date.now();
    await t.client.updateModuleTwin(t.deviceId, o.module, { properties: { desired: patch } });
    const status = await waitForStatus(t.client, t.deviceId, o.module, name, info.measurement, since, o.wait, o.inspect !== undefined);
    const target = t.simulator ? stateDirSuffix(o.stateDir) : `${o.hub ? ` --hub ${o.hub}` : ' --connection-string "$IOTHUB_CONNECTION_STRING"'} --device ${t.deviceId}`;
    const result: DeployOutcome = {
      ta: name, version: info.manifest.version, measurement: info.measurement, signerId, source: source.startsWith('base64:') ? `inline (${bytes.length} B)` : source,
      status: status.status, ...(added ? { trustedSignerAdded: added } : {}), ...(status.lastError ? { lastError: status.lastError } : {}),
      ...(status.inspectorUrl ? { inspectorUrl: status.inspectorUrl } : {}),
      invoke: `${cliCommand()} invoke host-module invokeTA '${JSON.stringify({ ta: name, command: 'ping' })}'${target}`,
    };
    if (status.status !== 'loaded') {
      throw new EnclaveEdgeError(refusalCode(status.errorCode), `${name} was refused by ${o.module}: ${status.lastError ?? status.status}${fixFor(status, name, input, o)}`);
    }
    return result;
  } finally {
    t.client.close();
  }
}

/** `--state-dir X` for a hint, unless X is the default the hint's command would use anyway. */
function stateDirSuffix(stateDir: string | undefined): string {
  return stateDir === undefined || resolve(stateDir) === resolve('.edge-sim') ? '' : ` --state-dir ${shellQuote(stateDir)}`;
}

/** The local edge reads the bundle from the simulator's state folder; a device gets it inline when small. */
function placeBundle(simulator: boolean, stateDir: string, name: string, measurement: string, bytes: Uint8Array): string {
  if (!simulator) {
    if (bytes.length > MAX_INLINE_BYTES) throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `the bundle is ${bytes.length} B, too large to send inline in the module twin (limit ${MAX_INLINE_BYTES} B): publish it and pass --source https://…`);
    return `base64:${Buffer.from(bytes).toString('base64')}`;
  }
  // Content-addressed: a new version never overwrites the file the running one was read from.
  const dir = resolve(stateDir, 'deployed-tas');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${measurement.slice(0, 16)}.tab`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes, { mode: 0o644 });
  renameSync(tmp, file);
  return file;
}

interface ReportedTA {
  status: string;
  measurement?: string;
  lastError?: string;
  errorCode?: string;
  since?: string;
  inspectorUrl?: string | null;
}

const SETTLED_REFUSED = new Set(['rejected', 'revoked', 'failed']);

/**
 * Poll ta-runtime's reported properties until this TA is loaded with this measurement, or
 * refused after the patch was sent (a refused replacement reports the old version still
 * `loaded`, with this attempt's lastError).
 */
async function waitForStatus(client: HubClientLike, deviceId: string, module: string, name: string, measurement: string, sinceMs: number, waitS: number, inspected: boolean): Promise<ReportedTA> {
  const deadline = Date.now() + waitS * 1000;
  let last: ReportedTA | undefined;
  for (;;) {
    const twin = await client.getModuleTwin(deviceId, module);
    const tas = (twin.properties as { reported?: { tas?: Record<string, unknown> } } | undefined)?.reported?.tas;
    const r = tas && Object.hasOwn(tas, name) ? (tas[name] as ReportedTA | null) : null;
    if (r) {
      last = r;
      const fresh = r.since === undefined || Date.parse(r.since) >= sinceMs - 1000;
      // Inspected: the instance restarted with its inspector (the same bundle may already have been loaded without).
      if (r.status === 'loaded' && r.measurement === measurement && (!inspected || (fresh && r.inspectorUrl))) return r;
      if (fresh && (SETTLED_REFUSED.has(r.status) || (r.status === 'loaded' && r.lastError))) return { ...r, status: r.status === 'loaded' ? 'refused (previous version kept)' : r.status };
    }
    if (Date.now() > deadline) {
      throw new EnclaveEdgeError('TIMEOUT', `${name} was not reported loaded or refused by ${module} within ${waitS} s (last report: ${last ? JSON.stringify(last) : 'none'}); is ${module} running? check \`${cliCommand()} sim status\``);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

type HubClientLike = { getModuleTwin(deviceId: string, moduleId: string): Promise<Record<string, unknown>> };

/** What to do about a refusal, where the CLI can name it. */
function fixFor(r: ReportedTA, name: string, input: string, o: DeployOptions): string {
  const text = `${r.errorCode ?? ''} ${r.lastError ?? ''}`;
  if (/signer/i.test(text) && /trust/i.test(text)) return `. Fix: ${cliCommand()} ta deploy ${shellQuote(input)}${o.key ? ` --key ${shellQuote(o.key)}` : ''} --trust-signer`;
  if (/debug/i.test(text)) return `. Fix: build without --debug, or allow debug TAs on this device: ${cliCommand()} twin patch ${o.module} '{"policy":{"allowDebug":true}}' (development only)`;
  if (/minSvn|securityVersion|SVN/i.test(text)) return `. Fix: raise securityVersion in ${name}'s ta.json`;
  return '';
}

function refusalCode(code: string | undefined): ErrorCode {
  return code && isErrorCode(code) ? code : 'POLICY_VIOLATION';
}
