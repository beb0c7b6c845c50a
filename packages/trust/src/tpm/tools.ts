/**
 * Runs tpm2-tools as child processes against one TPM (the TCTI) and turns their failures into
 * EnclaveEdgeErrors that name the problem. One call at a time per TCTI: without a resource
 * manager (swtpm, /dev/tpm0) the tools share the TPM's few object slots.
 */
import { execFile } from 'node:child_process';
import { EnclaveEdgeError, type ErrorCode } from '@enclave-edge/errors';

/** TPM response codes the callers react to (TPM 2.0 Part 2, §6.6). */
export const TPM_RC = {
  HANDLE: 0x08b,
  ATTRIBUTES: 0x082,
  NV_UNINITIALIZED: 0x14a,
  LOCKOUT: 0x921,
  RETRY: 0x922,
  NV_RATE: 0x920,
  TICKET: 0x0a0,
} as const;

/** What a TCTI string may look like: `device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`, `mssim:…`, `tabrmd:…`. */
const TCTI_RE = /^(device|swtpm|mssim|tabrmd|cmd)(:[\x20-\x7e]*)?$/;

export function checkTcti(tcti: string): string {
  if (typeof tcti !== 'string' || !TCTI_RE.test(tcti)) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `TCTI ${JSON.stringify(tcti)} is not understood; use device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321`);
  }
  return tcti;
}

export class TpmToolError extends EnclaveEdgeError {
  constructor(code: ErrorCode, message: string, readonly rc: number | undefined) {
    super(code, message, rc === undefined ? undefined : { detail: { tpmRc: `0x${rc.toString(16)}` } });
  }
}

/** The TPM response code in tpm2-tools' stderr ("ErrorCode (0x0000018b)"), format bits stripped to the base code. */
function responseCode(stderr: string): number | undefined {
  const all = [...stderr.matchAll(/ErrorCode \(0x([0-9a-fA-F]+)\)/g)];
  if (!all.length) return undefined;
  const rc = parseInt(all[all.length - 1]![1]!, 16);
  // Format-1 codes (bit 7) carry a parameter/handle number in bits 8-11: keep the error and the format bit.
  return rc & 0x80 ? rc & 0xbf : rc;
}

function lastToolError(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith('ERROR: ') && !l.startsWith('ERROR: Unable to run'));
  return (lines[0] ?? stderr.split('\n').find((l) => l.trim()) ?? 'no output').replace(/^ERROR: /, '').replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 300);
}

export function classifyToolFailure(tool: string, tcti: string, stderr: string): TpmToolError {
  const t = JSON.stringify(tcti);
  if (/Could not load tcti|Failed to instantiate TCTI/.test(stderr)) {
    if (/Connection refused|Cannot connect/.test(stderr)) return new TpmToolError('UNAVAILABLE', `no TPM answers at TCTI ${t} (connection refused): is swtpm or the TPM resource manager running?`, undefined);
    if (/Failed to open specified TCTI device file/.test(stderr)) return new TpmToolError('UNAVAILABLE', `TPM absent: the device of TCTI ${t} cannot be opened (${/: ([^:\n]+)\s*$/m.exec(stderr.split('\n').find((l) => l.includes('device file')) ?? '')?.[1] ?? 'no such device'}); pass /dev/tpmrm0 into the container`, undefined);
    return new TpmToolError('CONFIG_INVALID', `TCTI ${t} cannot be loaded; use device:/dev/tpmrm0 or swtpm:host=…,port=…`, undefined);
  }
  if (/Connection reset|Broken pipe|Failed to (send|receive)|read.*failed|tcti.*(receive|transmit)/i.test(stderr) && responseCode(stderr) === undefined) {
    return new TpmToolError('UNAVAILABLE', `the TPM at TCTI ${t} dropped the connection during ${tool} (TPM restarted?)`, undefined);
  }
  const rc = responseCode(stderr);
  const what = lastToolError(stderr);
  if (rc === TPM_RC.LOCKOUT) return new TpmToolError('UNAVAILABLE', `the TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT) during ${tool}; wait for the lockout to expire or reset it with the lockout authorization`, rc);
  if (rc === TPM_RC.RETRY || rc === TPM_RC.NV_RATE) return new TpmToolError('BUSY', `the TPM asked to retry ${tool} later (${rc === TPM_RC.NV_RATE ? 'NV write rate limit' : 'TPM_RC_RETRY'})`, rc);
  if (rc === TPM_RC.HANDLE) return new TpmToolError('ITEM_NOT_FOUND', `${tool}: the TPM has no object or NV index at that handle (${what})`, rc);
  return new TpmToolError('INTERNAL', `${tool} failed${rc === undefined ? '' : ` (TPM rc 0x${rc.toString(16)})`}: ${what}`, rc);
}

export interface ToolResult {
  stdout: Buffer;
  stderr: string;
}

export class TpmTools {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly tcti: string, private readonly timeoutMs = 30_000) {
    checkTcti(tcti);
  }

  /** Run `tool args…` (serialized); rejects with a classified TpmToolError. */
  run(tool: string, args: string[], input?: Uint8Array): Promise<ToolResult> {
    const next = this.queue.then(() => this.exec(tool, args, input));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private exec(tool: string, args: string[], input?: Uint8Array): Promise<ToolResult> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        tool,
        args,
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TPM2TOOLS_TCTI: this.tcti }, encoding: 'buffer', timeout: this.timeoutMs, maxBuffer: 1 << 20 },
        (err, stdout, stderrBuf) => {
          const stderr = stderrBuf.toString('utf8');
          if (!err) return resolve({ stdout, stderr });
          const e = err as NodeJS.ErrnoException & { killed?: boolean };
          if (e.code === 'ENOENT') return reject(new TpmToolError('NOT_SUPPORTED', `${tool} is not installed (apt-get install tpm2-tools)`, undefined));
          if (e.killed) return reject(new TpmToolError('TIMEOUT', `${tool} did not finish within ${this.timeoutMs} ms (TPM at TCTI ${JSON.stringify(this.tcti)} hung?)`, undefined));
          reject(classifyToolFailure(tool, this.tcti, stderr));
        },
      );
      child.stdin?.end(input ? Buffer.from(input) : undefined);
    });
  }
}
