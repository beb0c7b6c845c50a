/**
 * `tpm` root of trust: the seal secret (an HMAC key) and the attestation key (restricted ECDSA
 * P-256) are created inside a TPM 2.0 as fixedTPM/fixedParent persistent objects, so they never
 * leave it; derivation (HKDF-Expand over the TPM's HMAC) and signing run in the TPM. An NV
 * monotonic counter anchors the freshness of sealed storage; quotes give platform evidence.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { EvidenceSigner } from '@enclave-edge/attestation';
import { TpmDriver, NON_EXPORTABLE_ATTRS, TPM_NT_COUNTER, hex32, parsePcrSelection, type TpmFixedInfo, type TpmKeyKind, type TpmPublicInfo } from '../tpm/driver.js';
import { createFileExclusive } from '@enclave-edge/durable-files';
import { withLockFile } from '../lock.js';
import type { MonotonicCounter, PlatformQuoter, RootOfTrust, RotLog } from './types.js';

export const TPM_ROOT_FILE = 'tpm-root.json';
export const TPM_DEFAULTS = {
  sealKeyHandle: 0x81010ee0,
  attestationKeyHandle: 0x81010ee1,
  counterIndex: 0x01500ee0,
  pcrs: 'sha256:0-7',
} as const;

export interface TpmRootOptions {
  stateDir: string;
  tcti: string;
  sealKeyHandle?: number;
  attestationKeyHandle?: number;
  counterIndex?: number;
  pcrs?: string;
  log?: RotLog;
}

const hexName = z.string().regex(/^[0-9a-f]{68}$/);
const FileSchema = z.object({
  version: z.literal(1),
  kind: z.literal('tpm'),
  sealKey: z.object({ handle: z.number().int(), name: hexName }),
  attestationKey: z.object({ handle: z.number().int(), name: hexName }),
  counterIndex: z.number().int(),
  createdAt: z.string(),
});
type TpmRootFile = z.infer<typeof FileSchema>;

function checkKey(info: TpmPublicInfo, kind: TpmKeyKind): void {
  const missing = [...NON_EXPORTABLE_ATTRS, 'sign', ...(kind === 'attestation' ? ['restricted'] : [])].filter((a) => !info.attributes.includes(a));
  if (missing.length) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `the TPM object at ${hex32(info.handle)} lacks ${missing.join(', ')}: it could be exported or misused; refusing it (use other handles, or evict it)`);
  }
  if (kind === 'attestation' && !info.spki) throw new EnclaveEdgeError('CONFIG_INVALID', `the TPM object at ${hex32(info.handle)} is not an ECC key`);
}

async function readRootFile(path: string): Promise<TpmRootFile | undefined> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return FileSchema.parse(JSON.parse(raw));
  } catch {
    throw new EnclaveEdgeError('CONFIG_INVALID', `TPM root-of-trust file ${path} is corrupt`);
  }
}

export interface TpmRootOfTrust extends RootOfTrust {
  readonly kind: 'tpm';
  readonly tcti: string;
  readonly counter: MonotonicCounter;
  readonly quoter: PlatformQuoter;
  /** Manufacturer and firmware, for `device show`. */
  fixedInfo(): Promise<TpmFixedInfo>;
}

export async function openTpmRoot(opts: TpmRootOptions): Promise<TpmRootOfTrust> {
  const driver = new TpmDriver(opts.tcti);
  const pcrs = opts.pcrs ?? TPM_DEFAULTS.pcrs;
  parsePcrSelection(pcrs);
  const path = join(opts.stateDir, TPM_ROOT_FILE);
  try {
    const fixed = await driver.fixedInfo(); // fails first, and clearly, on a wrong TCTI or an absent TPM
    const file = await withLockFile(join(opts.stateDir, '.tpm-keygen.lock'), async () => {
      const have = await readRootFile(path);
      const sealHandle = have?.sealKey.handle ?? opts.sealKeyHandle ?? TPM_DEFAULTS.sealKeyHandle;
      const attHandle = have?.attestationKey.handle ?? opts.attestationKeyHandle ?? TPM_DEFAULTS.attestationKeyHandle;
      const counterIndex = have?.counterIndex ?? opts.counterIndex ?? TPM_DEFAULTS.counterIndex;
      const keys: Partial<Record<TpmKeyKind, TpmPublicInfo>> = {};
      for (const [kind, handle] of [['hmac', sealHandle], ['attestation', attHandle]] as const) {
        let info = await driver.readPublic(handle);
        const recorded = kind === 'hmac' ? have?.sealKey.name : have?.attestationKey.name;
        if (!info && recorded) {
          throw new EnclaveEdgeError('CONFIG_INVALID', `the ${kind === 'hmac' ? 'seal key' : 'attestation key'} this state directory was created with (TPM handle ${hex32(handle)}) is gone from the TPM (TPM cleared, or another TPM): data sealed under it cannot be opened`);
        }
        if (!info) {
          await driver.createPersistentKey(kind, handle);
          info = await driver.readPublic(handle);
          if (!info) throw new EnclaveEdgeError('INTERNAL', `created a TPM key at ${hex32(handle)} but cannot read it back`);
          opts.log?.('info', `created the TPM ${kind === 'hmac' ? 'seal key' : 'attestation key'} at ${hex32(handle)}`);
        }
        if (recorded && recorded !== info.name) {
          throw new EnclaveEdgeError('CONFIG_INVALID', `the TPM object at ${hex32(handle)} is not the ${kind === 'hmac' ? 'seal key' : 'attestation key'} this state directory was created with (another key was put there, or this is another TPM)`);
        }
        checkKey(info, kind);
        keys[kind] = info;
      }
      const type = await driver.nvType(counterIndex);
      if (type === undefined) {
        if (have) throw new EnclaveEdgeError('CONFIG_INVALID', `the rollback counter NV index ${hex32(counterIndex)} this state directory was created with is missing from the TPM (TPM cleared, or another TPM): freshness of sealed storage cannot be checked`);
        await driver.nvDefineCounter(counterIndex);
        opts.log?.('info', `defined the TPM NV monotonic counter ${hex32(counterIndex)}`);
      } else if (type !== TPM_NT_COUNTER) {
        throw new EnclaveEdgeError('CONFIG_INVALID', `NV index ${hex32(counterIndex)} is not a monotonic counter (TPM_NT ${type}, expected TPM_NT_COUNTER = 1); choose another index`);
      }
      const f: TpmRootFile = have ?? {
        version: 1,
        kind: 'tpm',
        sealKey: { handle: sealHandle, name: keys.hmac!.name },
        attestationKey: { handle: attHandle, name: keys.attestation!.name },
        counterIndex,
        createdAt: new Date().toISOString(),
      };
      if (!have) await createFileExclusive(path, Buffer.from(JSON.stringify(f, null, 2) + '\n'), 0o600);
      return { f, spki: keys.attestation!.spki! };
    });
    const { f } = file;
    const signer: EvidenceSigner = {
      spki: file.spki,
      sign: (data) => driver.signSha256(f.attestationKey.handle, data),
    };
    const counter: MonotonicCounter = {
      description: `TPM NV counter ${hex32(f.counterIndex)}`,
      read: () => driver.nvRead(f.counterIndex),
      increment: () => driver.nvIncrement(f.counterIndex),
    };
    const quoter: PlatformQuoter = {
      pcrSelection: pcrs,
      quote: (qualifyingData) => driver.quote(f.attestationKey.handle, qualifyingData, pcrs),
    };
    opts.log?.('info', `root of trust "tpm": ${fixed.manufacturer} ${fixed.vendor} firmware ${fixed.firmwareVersion} at ${opts.tcti}`);
    return {
      kind: 'tpm',
      tcti: opts.tcti,
      developmentGrade: false,
      stateDir: opts.stateDir,
      protects:
        `Keys created in the TPM (${fixed.manufacturer} ${fixed.vendor}) as fixedTPM/fixedParent objects: the seal secret and ` +
        'the attestation key cannot be exported, even by root, who can still use them while holding the TPM. Keys derived for ' +
        'each TA live in the runtime\'s memory while it runs. With swtpm the "TPM" is a process and a state file: development only.',
      rollbackProtection:
        `Sealed storage is bound to ${counter.description}: an older copy of the state directory is refused (ROLLBACK_DETECTED), ` +
        'except for writes of the last open commit epoch (see docs/sealing-and-attestation.md for the epoch bound).',
      async deriveKey(info) {
        // HKDF-Expand (RFC 5869 §2.3) with the PRK inside the TPM: T(i) = HMAC(PRK, T(i-1) || info || i).
        if (info.length + 33 > 1024) throw new EnclaveEdgeError('BAD_PARAMETERS', 'derivation info too long for the TPM HMAC');
        const t1 = await driver.hmacSha256(f.sealKey.handle, Buffer.concat([Buffer.from(info), Buffer.of(1)]));
        return t1;
      },
      attestationSigner: signer,
      counter,
      quoter,
      fixedInfo: () => driver.fixedInfo(),
      close: () => driver.close(),
    };
  } catch (err) {
    await driver.close();
    throw err;
  }
}

