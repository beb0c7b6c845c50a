/**
 * The TPM operations the `tpm` root of trust needs, on tpm2-tools: persistent non-exportable keys
 * (HMAC seal secret, restricted ECDSA P-256 attestation key), HMAC, signing, quotes and an NV
 * monotonic counter. Key material never passes through here: only public parts, MACs, signatures.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { TpmTools, TpmToolError, TPM_RC } from './tools.js';

/** TPMA_OBJECT bits every key of ours must have: it cannot leave this TPM (Part 2, §8.3). */
export const NON_EXPORTABLE_ATTRS = ['fixedtpm', 'fixedparent', 'sensitivedataorigin'] as const;
const HMAC_ATTRS = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign|noda';
// restricted: the TPM signs with it only digests it computed itself, so nothing signed with it can pass for a quote.
const AK_ATTRS = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign|noda';
const COUNTER_ATTRS = 'nt=counter|ownerwrite|ownerread|authread|authwrite|no_da';
/** TPM_NT_COUNTER (Part 2, §13.4). */
export const TPM_NT_COUNTER = 1;

export type TpmKeyKind = 'hmac' | 'attestation';

export interface TpmPublicInfo {
  handle: number;
  /** The TPM Name (nameAlg || H(TPMT_PUBLIC)) in hex: what identifies the key. */
  name: string;
  attributes: string[];
  /** SPKI DER of an ECC key. */
  spki?: Uint8Array;
}

export interface TpmFixedInfo {
  manufacturer: string;
  vendor: string;
  firmwareVersion: string;
  specRevision: string;
}

export interface TpmQuoteResult {
  /** The TPMS_ATTEST structure the TPM signed. */
  attest: Uint8Array;
  /** ECDSA P-256 signature over SHA-256(attest), raw r||s. */
  signature: Uint8Array;
  /** The quoted PCR values, `sha256:0` → hex. */
  pcrs: Record<string, string>;
}

export const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** DER ECDSA-Sig-Value → raw r||s (32 bytes each). */
export function derEcdsaToRaw(der: Uint8Array): Uint8Array {
  const b = Buffer.from(der);
  const fail = () => new EnclaveEdgeError('BAD_FORMAT', 'the TPM returned a malformed ECDSA signature');
  if (b[0] !== 0x30) throw fail();
  let off = b[1]! & 0x80 ? 2 + (b[1]! & 0x7f) : 2;
  const out = Buffer.alloc(64);
  for (let i = 0; i < 2; i++) {
    if (b[off] !== 0x02) throw fail();
    const len = b[off + 1]!;
    let v = b.subarray(off + 2, off + 2 + len);
    while (v.length > 32 && v[0] === 0) v = v.subarray(1);
    if (v.length > 32 || off + 2 + len > b.length) throw fail();
    v.copy(out, i * 32 + (32 - v.length));
    off += 2 + len;
  }
  return new Uint8Array(out);
}

/** Parse tpm2_pcrread/tpm2_quote YAML ("sha256:\n  0 : 0xABC…") into `sha256:0` → lowercase hex. */
export function parsePcrYaml(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  let bank: string | undefined;
  let inPcrs = false;
  for (const line of text.split('\n')) {
    if (/^pcrs:/.test(line)) { inPcrs = true; continue; }
    if (inPcrs && /^\S/.test(line)) inPcrs = false;
    if (!inPcrs && !/^\s/.test(line) && /^(sha1|sha256|sha384|sha512|sm3_256):\s*$/.test(line)) { bank = line.replace(':', '').trim(); continue; }
    const m = /^\s+(sha1|sha256|sha384|sha512|sm3_256):\s*$/.exec(line);
    if (m) { bank = m[1]; continue; }
    const v = /^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line);
    if (v && bank) out[`${bank}:${v[1]}`] = v[2]!.toLowerCase();
  }
  return out;
}

/** `sha256:0-7` / `sha256:0,1,2` → the tpm2-tools selection `sha256:0,1,…` (one SHA-256 bank). */
export function parsePcrSelection(sel: string): { bank: 'sha256'; indices: number[]; tool: string } {
  const m = /^sha256:([0-9,\- ]+)$/.exec(sel.trim());
  if (!m) throw new EnclaveEdgeError('CONFIG_INVALID', `PCR selection ${JSON.stringify(sel)}: expected sha256:<list>, e.g. sha256:0-7`);
  const set = new Set<number>();
  for (const part of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
    const r = /^(\d+)(?:-(\d+))?$/.exec(part);
    const a = r ? Number(r[1]) : NaN;
    const b = r?.[2] !== undefined ? Number(r[2]) : a;
    if (!r || a > b || b > 23) throw new EnclaveEdgeError('CONFIG_INVALID', `PCR selection ${JSON.stringify(sel)}: "${part}" is not a PCR index or range within 0-23`);
    for (let i = a; i <= b; i++) set.add(i);
  }
  if (!set.size) throw new EnclaveEdgeError('CONFIG_INVALID', `PCR selection ${JSON.stringify(sel)} selects no PCR`);
  const indices = [...set].sort((x, y) => x - y);
  return { bank: 'sha256', indices, tool: `sha256:${indices.join(',')}` };
}

export class TpmDriver {
  private readonly tools: TpmTools;
  private work: Promise<string> | undefined;

  constructor(readonly tcti: string) {
    this.tools = new TpmTools(tcti);
  }

  /** A private 0700 directory for the files the tools read and write (messages, signatures). */
  private async file(name: string): Promise<string> {
    this.work ??= mkdtemp(join(tmpdir(), 'ee-tpm-'));
    return join(await this.work, `${name}-${randomBytes(6).toString('hex')}`);
  }

  private async withFiles<T>(names: string[], fn: (paths: string[]) => Promise<T>): Promise<T> {
    const paths = await Promise.all(names.map((n) => this.file(n)));
    try {
      return await fn(paths);
    } finally {
      await Promise.all(paths.map((p) => rm(p, { force: true })));
    }
  }

  async fixedInfo(): Promise<TpmFixedInfo> {
    const { stdout } = await this.tools.run('tpm2_getcap', ['properties-fixed']);
    const text = stdout.toString('utf8');
    const prop = (name: string) => {
      const m = new RegExp(`^${name}:\\s*\\n\\s+raw: 0x([0-9A-Fa-f]+)(?:\\s*\\n\\s+value: ([^\\n]*))?`, 'm').exec(text);
      return { raw: m ? parseInt(m[1]!, 16) : 0, value: m?.[2]?.replace(/^"|"$/g, '').trim() ?? '' };
    };
    const fw1 = prop('TPM2_PT_FIRMWARE_VERSION_1').raw;
    const fw2 = prop('TPM2_PT_FIRMWARE_VERSION_2').raw;
    const vendor = [1, 2, 3, 4].map((i) => prop(`TPM2_PT_VENDOR_STRING_${i}`).value).join('').trim();
    return {
      manufacturer: prop('TPM2_PT_MANUFACTURER').value || hex32(prop('TPM2_PT_MANUFACTURER').raw),
      vendor,
      firmwareVersion: `${fw1.toString(16).padStart(8, '0')}.${fw2.toString(16).padStart(8, '0')}`,
      specRevision: prop('TPM2_PT_REVISION').value,
    };
  }

  /** The public part of a persistent key, or undefined if no object is at `handle`. */
  async readPublic(handle: number): Promise<TpmPublicInfo | undefined> {
    return this.withFiles(['name', 'pub'], async ([namePath, pubPath]) => {
      let text: string;
      let ecc = false;
      try {
        text = (await this.tools.run('tpm2_readpublic', ['-c', hex32(handle), '-n', namePath!])).stdout.toString('utf8');
        ecc = /^type:\s*\n\s+value: ecc/m.test(text);
        if (ecc) await this.tools.run('tpm2_readpublic', ['-c', hex32(handle), '-f', 'der', '-o', pubPath!]);
      } catch (err) {
        if (err instanceof TpmToolError && err.rc === TPM_RC.HANDLE) return undefined;
        throw err;
      }
      const attrs = /^attributes:\s*\n\s+value: ([^\n]*)/m.exec(text)?.[1]?.trim().split('|') ?? [];
      return {
        handle,
        name: (await readFile(namePath!)).toString('hex'),
        attributes: attrs,
        ...(ecc ? { spki: new Uint8Array(await readFile(pubPath!)) } : {}),
      };
    });
  }

  /**
   * Create a key inside the TPM (random sensitive part, under the owner hierarchy's storage
   * primary) and make it persistent at `handle`. Flushes between steps: a TPM without resource
   * manager has three object slots.
   */
  async createPersistentKey(kind: TpmKeyKind, handle: number): Promise<void> {
    await this.withFiles(['parent', 'key'], async ([parent, key]) => {
      const alg = kind === 'hmac' ? ['-G', 'hmac', '-a', HMAC_ATTRS] : ['-G', 'ecc256:ecdsa-sha256:null', '-a', AK_ATTRS];
      try {
        await this.tools.run('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc256', '-c', parent!, '-Q']);
        await this.flushTransient();
        await this.tools.run('tpm2_create', ['-C', parent!, '-g', 'sha256', ...alg, '-c', key!, '-Q']);
        await this.flushTransient();
        await this.tools.run('tpm2_evictcontrol', ['-C', 'o', '-c', key!, hex32(handle)]);
      } finally {
        await this.flushTransient();
      }
    });
  }

  /** Without a resource manager, objects a tool loaded stay loaded after it exits: flush them. */
  async flushTransient(): Promise<void> {
    await this.tools.run('tpm2_flushcontext', ['-t']).catch(() => undefined);
  }

  /** Remove a persistent key (tests and `device init --force`). */
  async evict(handle: number): Promise<void> {
    await this.tools.run('tpm2_evictcontrol', ['-C', 'o', '-c', hex32(handle)]);
  }

  async hmacSha256(handle: number, data: Uint8Array): Promise<Uint8Array> {
    if (data.length > 1024) throw new EnclaveEdgeError('BAD_PARAMETERS', 'TPM HMAC input is limited to 1024 bytes');
    return this.withFiles(['in'], async ([input]) => {
      await writeFile(input!, data, { mode: 0o600 });
      const { stdout } = await this.tools.run('tpm2_hmac', ['-c', hex32(handle), '-g', 'sha256', '--hex', input!]);
      const mac = Buffer.from(stdout.toString('utf8').trim(), 'hex');
      if (mac.length !== 32) throw new EnclaveEdgeError('INTERNAL', 'tpm2_hmac returned no 32-byte MAC');
      return new Uint8Array(mac);
    });
  }

  /** ECDSA over SHA-256(data), hashed by the TPM (so a restricted key accepts it); raw r||s. */
  async signSha256(handle: number, data: Uint8Array): Promise<Uint8Array> {
    return this.withFiles(['msg', 'sig'], async ([msg, sig]) => {
      await writeFile(msg!, data, { mode: 0o600 });
      await this.tools.run('tpm2_sign', ['-c', hex32(handle), '-g', 'sha256', '-f', 'plain', '-o', sig!, msg!]);
      return derEcdsaToRaw(await readFile(sig!));
    });
  }

  async quote(handle: number, qualifyingData: Uint8Array, pcrSelection: string): Promise<TpmQuoteResult> {
    const sel = parsePcrSelection(pcrSelection);
    if (qualifyingData.length > 64) throw new EnclaveEdgeError('BAD_PARAMETERS', 'quote qualifying data is at most 64 bytes');
    // The tool prints the PCR values only when it also writes them (-o).
    return this.withFiles(['msg', 'sig', 'pcrs'], async ([msg, sig, pcrFile]) => {
      const { stdout } = await this.tools.run('tpm2_quote', [
        '-c', hex32(handle), '-l', sel.tool, '-q', Buffer.from(qualifyingData).toString('hex'), '-g', 'sha256', '-m', msg!, '-s', sig!, '-f', 'plain', '-o', pcrFile!,
      ]);
      const pcrs = parsePcrYaml(stdout.toString('utf8'));
      for (const i of sel.indices) {
        if (!Object.hasOwn(pcrs, `sha256:${i}`)) throw new EnclaveEdgeError('INTERNAL', `tpm2_quote did not report PCR sha256:${i}`);
      }
      return { attest: new Uint8Array(await readFile(msg!)), signature: derEcdsaToRaw(await readFile(sig!)), pcrs };
    });
  }

  /** Extend a PCR (tests, and measured-boot demos on swtpm). */
  async pcrExtend(index: number, sha256Hex: string): Promise<void> {
    await this.tools.run('tpm2_pcrextend', [`${index}:sha256=${sha256Hex}`]);
  }

  /** The NV index's type (TPM_NT), or undefined if it is not defined. */
  async nvType(index: number): Promise<number | undefined> {
    try {
      const { stdout } = await this.tools.run('tpm2_nvreadpublic', [hex32(index)]);
      const raw = /attributes:[\s\S]*?value: 0x([0-9A-Fa-f]+)/.exec(stdout.toString('utf8'))?.[1];
      if (!raw) throw new EnclaveEdgeError('INTERNAL', `tpm2_nvreadpublic printed no attributes for ${hex32(index)}`);
      return (parseInt(raw, 16) >>> 4) & 0xf;
    } catch (err) {
      if (err instanceof TpmToolError && err.rc === TPM_RC.HANDLE) return undefined;
      throw err;
    }
  }

  /** Define an NV counter and increment it once (a counter reads only after its first increment). */
  async nvDefineCounter(index: number): Promise<bigint> {
    await this.tools.run('tpm2_nvdefine', [hex32(index), '-C', 'o', '-s', '8', '-a', COUNTER_ATTRS]);
    return this.nvIncrement(index);
  }

  async nvUndefine(index: number): Promise<void> {
    await this.tools.run('tpm2_nvundefine', [hex32(index), '-C', 'o']);
  }

  async nvRead(index: number): Promise<bigint> {
    const { stdout } = await this.tools.run('tpm2_nvread', [hex32(index), '-C', hex32(index), '-s', '8']);
    if (stdout.length !== 8) throw new EnclaveEdgeError('INTERNAL', `NV index ${hex32(index)} returned ${stdout.length} bytes, expected an 8-byte counter`);
    return stdout.readBigUInt64BE(0);
  }

  async nvIncrement(index: number): Promise<bigint> {
    await this.tools.run('tpm2_nvincrement', [hex32(index), '-C', hex32(index)]);
    return this.nvRead(index);
  }

  async close(): Promise<void> {
    const w = this.work;
    this.work = undefined;
    if (w) await rm(await w, { recursive: true, force: true });
  }
}
