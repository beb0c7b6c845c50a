/**
 * Run a signed TA bundle on the developer's machine, in the real emulated enclave (worker + SES)
 * with real trust services over a DEVELOPMENT-GRADE software root of trust in a local state dir.
 * Admission is the ta-runtime's admit() (see admit-local.ts); nothing runs unless it passes.
 * Imported as `@enclave-edge/ta-toolchain/run-local` so a build never loads the enclave and a run never loads esbuild.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { admitLocal, type AdmitLocalOptions } from './admit-local.js';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { createBackend, probeBackend, type Enclave, type EnclaveCreateOptions, type LogLevel } from '@enclave-edge/enclave';
import { createRootOfTrust, createTrustServices, devicePaths, SOFTWARE_KEY_FILE, TPM_ROOT_FILE, type RotLog, type TrustServicesImpl } from '@enclave-edge/trust';

/** Relative to the working directory; `.gitignore`d in this repository and in scaffolded TAs. */
export const DEFAULT_DEV_STATE_DIR = join('.enclave-edge', 'dev');

export { admitLocal, type AdmitLocalOptions } from './admit-local.js';

export interface LocalRunOptions extends AdmitLocalOptions {
  /** The software root of trust and sealed storage live here (default DEFAULT_DEV_STATE_DIR). */
  stateDir?: string;
  /** `tpm`: keys in the TPM named by `tcti` (a swtpm in development), storage bound to its NV counter. Default `software`. */
  rot?: 'software' | 'tpm';
  tcti?: string;
  /** The TA's own log lines (ctx.log). */
  log?: (level: LogLevel, ta: string, message: string, fields?: Record<string, unknown>) => void;
  /** Called once the bundle is admitted and the root of trust is open, before the enclave starts (and the TA's onCreate logs). */
  onAdmitted?: (bundle: VerifiedBundle, rootOfTrust: LocalRootOfTrust) => void;
  /** Trust-service diagnostics (storage, device identity). Opening the development root is not logged here: say so yourself. */
  trustLog?: RotLog;
  /** Debug TAs only: open an inspector in the enclave (the backend refuses it for a release TA); see docs/debugging.md. */
  inspect?: EnclaveCreateOptions['inspect'];
  onInspector?: EnclaveCreateOptions['onInspector'];
}

export interface LocalRootOfTrust {
  kind: string;
  developmentGrade: boolean;
  stateDir: string;
  keyFile: string;
  /** The development device CA: verifiers' trust anchor for this TA's evidence (software: created on the first attest). */
  deviceCaPath: string;
}

export interface LocalTA {
  bundle: VerifiedBundle;
  enclave: Enclave;
  rootOfTrust: LocalRootOfTrust;
  /** Destroy the enclave and close the root of trust (idempotent). */
  close(): Promise<void>;
}

const STATE_README = `DEVELOPMENT-GRADE enclave-edge state (written by \`enclave-edge ta run\`).

${SOFTWARE_KEY_FILE} holds the seal secret and the attestation key in plain form: anyone who can
read this directory can unseal everything in storage/ and forge attestation evidence.
Never commit it, never copy it to a device, never use it for production data.
Delete the directory to start over (sealed data in it is then lost).
`;

/** Create the state dir (0700) with a README saying what it is and a .gitignore that ignores all of it. */
function prepareStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const readme = join(dir, 'README.txt');
  if (!existsSync(readme)) writeFileSync(readme, STATE_README, { mode: 0o600 });
  const ignore = join(dir, '.gitignore');
  if (!existsSync(ignore)) writeFileSync(ignore, '# development keys and sealed data: never commit\n*\n');
}

export async function openLocalTA(bytes: Uint8Array, opts: LocalRunOptions): Promise<LocalTA> {
  const bundle = await admitLocal(bytes, opts);
  // The registry's emulated backend, as ta-runtime picks it; one enclave, one run: no standby
  // worker to keep warm for a next TA.
  const probe = probeBackend('emulated');
  if (!probe.available) throw new EnclaveEdgeError('NOT_SUPPORTED', `the emulated enclave backend is not available here: ${probe.reason ?? 'no reason given'}`);
  const stateDir = resolve(opts.stateDir ?? DEFAULT_DEV_STATE_DIR);
  prepareStateDir(stateDir);
  const root = await createRootOfTrust(opts.rot === 'tpm' ? { kind: 'tpm', stateDir, ...(opts.tcti ? { tcti: opts.tcti } : {}) } : { kind: 'software', stateDir });
  const keyFile = join(stateDir, root.kind === 'tpm' ? TPM_ROOT_FILE : SOFTWARE_KEY_FILE);
  const rootOfTrust: LocalRootOfTrust = { kind: root.kind, developmentGrade: root.developmentGrade, stateDir, keyFile, deviceCaPath: devicePaths(stateDir).ca };
  let services: TrustServicesImpl | undefined;
  const backend = createBackend('emulated', { standby: 0 });
  try {
    opts.onAdmitted?.(bundle, rootOfTrust);
    services = createTrustServices({ rootOfTrust: root, ...(opts.trustLog ? { log: opts.trustLog } : {}) });
    const enclave = await backend.create(bundle, {
      services,
      ...(opts.log ? { log: opts.log } : {}),
      ...(opts.inspect ? { inspect: opts.inspect } : {}),
      ...(opts.onInspector ? { onInspector: opts.onInspector } : {}),
    });
    let closed: Promise<void> | undefined;
    const svc = services;
    return {
      bundle,
      enclave,
      rootOfTrust,
      close: () =>
        (closed ??= (async () => {
          try {
            await enclave.destroy();
          } finally {
            await backend.close?.().catch(() => undefined);
            await svc.close();
          }
        })()),
    };
  } catch (err) {
    await backend.close?.().catch(() => undefined);
    if (services) await services.close().catch(() => undefined);
    else await root.close().catch(() => undefined);
    throw err;
  }
}
