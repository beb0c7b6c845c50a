/**
 * What the OS bounds for a TA's process, and how: RLIMIT_AS through util-linux `prlimit` where it
 * is installed, and the resident set watched from the runtime (another address space) everywhere
 * on Linux. cgroup v2 `memory.max` is probed and reported, not used (see docs/enclave-backends.md).
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { binaryLimitBytes } from '../wire/binary-memory.cjs';
import { WASM_PAGE_BYTES, wasmMaxPagesFor } from '../wire/wasm-memory.cjs';

export interface OsLimitsProbe {
  /** RLIMIT_AS on each TA process: `prlimit` (its path) or why not. */
  addressSpace: { enforced: true; prlimit: string } | { enforced: false; reason: string };
  /** The runtime reads each TA process's resident set and ends it past its bound. */
  residentWatch: { enforced: boolean; reason?: string };
  cgroupV2: { usable: false; reason: string };
  /** Each TA process under a uid of its own: possible only when the runtime runs as root. */
  perTaUid: { possible: boolean; reason?: string };
}

let probed: OsLimitsProbe | undefined;

function findOnPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).concat(['/usr/bin', '/bin', '/usr/sbin', '/sbin']);
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function probeOsLimits(): OsLimitsProbe {
  if (probed) return probed;
  const linux = process.platform === 'linux';
  const prlimit = linux ? findOnPath('prlimit') : undefined;
  let cg = 'cgroup v2 is not mounted at /sys/fs/cgroup';
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    try {
      accessSync('/sys/fs/cgroup/cgroup.subtree_control', constants.W_OK);
      cg = 'cgroup v2 is writable here but not used: RLIMIT_AS and the resident-set watch bound each TA process';
    } catch {
      cg = 'cgroup v2 is mounted but this process cannot write its subtree';
    }
  }
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  probed = {
    addressSpace: prlimit ? { enforced: true, prlimit } : { enforced: false, reason: linux ? 'util-linux prlimit is not installed' : `no prlimit on ${process.platform}` },
    residentWatch: linux && existsSync('/proc/self/statm') ? { enforced: true } : { enforced: false, reason: 'no /proc/<pid>/statm' },
    cgroupV2: { usable: false, reason: cg },
    perTaUid: root ? { possible: true } : { possible: false, reason: 'the runtime does not run as root' },
  };
  return probed;
}

const MB = 1024 * 1024;
/** A Node process with its relay thread, before any enclave worker (virtual, not resident). */
const PROCESS_ADDRESS_MB = 1024;
/** What one more worker thread reserves (isolate, heap reservations, stack, malloc arena). */
const WORKER_ADDRESS_MB = 1024;

/**
 * What V8 reserves for one Wasm memory while its trap handler is on, whatever the memory's
 * maximum: 4 GiB it can address plus guard regions, so that bounds are checked by the MMU.
 * Without the trap handler it reserves the memory's maximum only.
 */
export const WASM_GUARDED_RESERVATION_BYTES = 10 * 1024 * MB;

/**
 * RLIMIT_AS for a TA process hosting up to `instances` workers of this heap size. With the Wasm
 * trap handler each instance's one memory reserves the guarded size instead of its maximum
 * (at most `heapMb`): only that difference is added, so everything else in the process has the
 * same room as without it.
 */
export function addressSpaceBytes(heapMb: number, instances: number, wasmTrapHandler = false): number {
  const guards = wasmTrapHandler ? Math.max(0, WASM_GUARDED_RESERVATION_BYTES - wasmMaxPagesFor(heapMb) * WASM_PAGE_BYTES) : 0;
  return PROCESS_ADDRESS_MB * MB + instances * (WORKER_ADDRESS_MB * MB + heapMb * MB + binaryLimitBytes(heapMb) + guards);
}

/** The resident-set bound: per worker its heap (old space, plus young space and code), its binary data, and runtime overhead. */
export function residentBytes(heapMb: number, instances: number): number {
  return 96 * MB + instances * (48 * MB + 2 * heapMb * MB + binaryLimitBytes(heapMb));
}

const PAGE = 4096;
/** Resident bytes of a process, or undefined when it is gone. */
export function residentOf(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ');
    return Number(f[1]) * PAGE;
  } catch {
    return undefined;
  }
}
