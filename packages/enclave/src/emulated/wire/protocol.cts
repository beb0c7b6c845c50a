/** Messages between the enclave host (parent thread) and an enclave worker. Internal. */
import type { TAManifest } from '@enclave-edge/bundle/types';
import type { TAInfo, Value } from '@enclave-edge/ta-sdk';
import type { ErrorCode } from '@enclave-edge/errors';
import type { LogLevel } from '../../contract.js';

export interface WireError {
  code: ErrorCode;
  message: string;
  /** Debug TAs only: the raw stack (mapped to TS lines by the parent). */
  stack?: string;
}

export interface WorkerInit {
  manifest: TAManifest;
  ta: TAInfo;
  code: Uint8Array;
  maxPayloadBytes: number;
  inspect: boolean;
  /** With inspect: wait for a debugger, then pause before the TA's first line. */
  inspectWait?: boolean;
  /** With inspect: the bundle's source map, inlined into the evaluated script for the debugger. */
  sourceMap?: Uint8Array;
  /** Wasm TAs: pages the linear memory may reach. */
  wasmMaxPages?: number;
}

/** What a worker does before it knows its TA: the same for every TA of one shape (see standby-pool). */
export interface WorkerPrep {
  /** JS: where the SES script is, and a V8 code cache for it (cold-start speed); absent → no lockdown (Wasm). */
  ses?: { filename: string; cache?: Uint8Array };
  /** lockdown's errorTaming: debug TAs keep stacks. */
  debug: boolean;
}

/** workerData. Without `init` the worker is a standby: it prepares, says `standby`, and waits for one `init` message. */
export interface WorkerBoot {
  prep: WorkerPrep;
  init?: WorkerInit;
  /** In a TA's own process: talk to the runtime over this socket instead of the parent port (see frame-channel). */
  channel?: { path: string; wid: number; token: string };
}

/** What the worker's side needs of its link to the host: a worker's parent port, or a frame channel. */
export interface HostPort {
  postMessage(m: unknown): void;
  on(event: 'message', listener: (m: any) => void): unknown;
}

/** Wall-clock marks (ms since the epoch, sub-ms precision) of a worker's start-up steps. */
export interface StartupTimings {
  /** The worker's first line of runtime code ran. */
  entered: number;
  /** SES loaded and lockdown() done (JS TAs; equals `entered` for Wasm). */
  lockedDown: number;
  /** The worker had its TA (workerData, or the `init` message of a standby). */
  assigned: number;
  /** TA code evaluated / compiled. */
  loaded: number;
  /** onCreate / ta_create finished. */
  created: number;
}

export type CallKind = 'invoke' | 'open' | 'close';

export type ToWorker =
  | { t: 'call'; id: number; kind: CallKind; sid: string | undefined; cmd: string; params: Value }
  /** Session-less invokes of one command, run in order; answered by `batchPart` messages. */
  | { t: 'batch'; id: number; cmd: string; items: Value[]; reportMs: number }
  | { t: 'svcReply'; id: number; ok: true; value: Value | undefined }
  | { t: 'svcReply'; id: number; ok: false; error: WireError }
  | { t: 'destroy' }
  | { t: 'init'; init: WorkerInit };

export type BatchOutcome = { ok: true; value: Value } | { ok: false; error: WireError };

/** A worker reports a batch's answers so far before starting an item once this many bytes of results wait. */
export const BATCH_REPORT_BYTES = 8 * 1024 * 1024;

/** How long a batch's answers may wait in the worker before the next item starts (see Instance.callBatch). */
export function batchReportMs(callTimeoutMs: number): number {
  return Math.min(5, callTimeoutMs / 20);
}

export type SvcOp =
  | 'seal'
  | 'unseal'
  | 'storage.get'
  | 'storage.put'
  | 'storage.delete'
  | 'storage.list'
  | 'attest'
  | 'host'
  | 'hpkeKey.get'
  | 'hpkeKey.swap';

export type FromWorker =
  | { t: 'ready'; sesCache?: Uint8Array; startup: StartupTimings }
  /** Inspected instances, before the TA's code runs: where the inspector listens. */
  | { t: 'inspector'; url: string }
  | { t: 'standby'; sesCache?: Uint8Array }
  | { t: 'initError'; error: WireError }
  | { t: 'done'; id: number; ok: true; value: Value }
  | { t: 'done'; id: number; ok: false; error: WireError }
  /** Outcomes of batch items `from`… in order; `last` answers the rest; `restart`: sent between items (none of the batch runs). */
  | { t: 'batchPart'; id: number; from: number; outcomes: BatchOutcome[]; last: boolean; restart: boolean }
  | { t: 'svc'; id: number; op: SvcOp; args: Value[] }
  | { t: 'log'; level: LogLevel; message: string; fields?: Record<string, Value> }
  | { t: 'destroyed' };

/** Codes a TA's own error may carry out of the enclave; runtime-state codes (TIMEOUT, BUSY…) it may not forge. */
export const TA_PASSABLE_CODES: ReadonlySet<string> = new Set([
  'BAD_PARAMETERS',
  'BAD_FORMAT',
  'ITEM_NOT_FOUND',
  'ACCESS_DENIED',
  'CONFLICT',
  'TA_ERROR',
  'SEAL_INTEGRITY',
  'ROLLBACK_DETECTED',
  'NOT_SUPPORTED',
  'QUOTA_EXCEEDED',
  'STORAGE_UNAVAILABLE',
  'PAYLOAD_TOO_LARGE',
  'UNAVAILABLE',
  // A confidential envelope sealed for an older measurement: the caller fetches fresh evidence.
  'MEASUREMENT_MISMATCH',
]);
