/** Process isolation as the emulated backend configures it: bounds per manifest, a uid per TA (as root). */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { TAManifest } from '@enclave-edge/bundle/types';
import { addressSpaceBytes, probeOsLimits, residentBytes } from './os-limits.js';
import { shapeOf } from '../threads/worker-shape.js';
import { TaProcess, type ProcessIsolation, type RunAs, type TaProcessLimits } from './ta-process.js';

export interface TaUidRange {
  /** First uid (and gid) handed out; each TA name gets the next one, for the backend's lifetime. */
  from: number;
  count: number;
}

/** Instances one process hosts at most: the TA's own, plus one starting while a dead one is replaced. */
export function processInstances(m: Pick<TAManifest, 'session'>, maxInstances: number): number {
  return (m.session.singleInstance ? 1 : maxInstances) + 1;
}

/**
 * The bounds of a process for TAs of this runtime. A Wasm TA's process runs with V8's Wasm trap
 * handler (bounds checked by guard pages, as in bare node) and room for each instance's guarded
 * memory; a JS TA's process keeps it off, as no TA code there needs it.
 */
export function limitsForProcess(runtime: 'js' | 'wasm', heapMb: number, instances: number): TaProcessLimits {
  const wasmTrapHandler = runtime === 'wasm';
  return { addressSpace: addressSpaceBytes(heapMb, instances, wasmTrapHandler), resident: residentBytes(heapMb, instances), wasmTrapHandler };
}

export function processIsolation(opts: { taUids?: TaUidRange; maxInstancesOf: (m: TAManifest) => number }): ProcessIsolation {
  const uids = new Map<string, number>();
  const range = opts.taUids;
  if (range) {
    const root = probeOsLimits().perTaUid;
    if (!root.possible) throw new EnclaveEdgeError('NOT_SUPPORTED', `taUids: a uid per TA process needs the runtime to run as root (${root.reason})`);
    if (!Number.isInteger(range.from) || !Number.isInteger(range.count) || range.from < 1000 || range.count < 1 || range.from + range.count > 2 ** 31) {
      throw new EnclaveEdgeError('BAD_PARAMETERS', 'taUids needs an integer range { from ≥ 1000, count ≥ 1 }');
    }
  }
  return {
    limitsFor: (m) => limitsForProcess(shapeOf(m).runtime, m.limits.heapMb, processInstances(m, opts.maxInstancesOf(m))),
    runAsFor(ta: string): RunAs | undefined {
      if (!range) return undefined;
      let uid = uids.get(ta);
      if (uid === undefined) {
        if (uids.size >= range.count) throw new EnclaveEdgeError('BUSY', `taUids: all ${range.count} uids from ${range.from} are taken by other TAs`);
        uid = range.from + uids.size;
        uids.set(ta, uid);
      }
      return { uid, gid: uid };
    },
    create: (limits) => new TaProcess(limits),
  };
}
