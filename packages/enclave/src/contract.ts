/**
 * The one backend contract. `emulated` implements it first; an `sgx` or `optee`
 * adapter plugs in behind it without touching callers (as Enarx's backends do).
 */
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import type { SealPolicy, Value, JsonWebKeyPublic, TAInfo } from '@enclave-edge/ta-sdk';

/** The identity the runtime binds sealing and attestation to: the TA as measured and verified (ta-sdk's TAInfo). */
export type TAIdentity = TAInfo;

export interface SealedStore {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<boolean>;
  list(prefix?: string): Promise<string[]>;
}

/**
 * Sealing, storage and attestation, provided by the ta-runtime from its root of trust.
 * The backend calls these on a TA's behalf; the TA never sees keys.
 */
export interface TrustServices {
  seal(id: TAIdentity, data: Uint8Array, opts: { policy: SealPolicy; context?: Uint8Array }): Promise<Uint8Array>;
  unseal(id: TAIdentity, blob: Uint8Array, opts: { context?: Uint8Array }): Promise<Uint8Array>;
  storage(id: TAIdentity): SealedStore;
  attest(
    id: TAIdentity,
    opts: { nonce: Uint8Array; claims?: Record<string, Value>; publicKey?: JsonWebKeyPublic; tee: string },
  ): Promise<string>;
}

export type HostCallHandler = (ta: TAIdentity, args: Value) => Value | Promise<Value>;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface EnclaveCreateOptions {
  /** Absent: seal/unseal/storage/attest fail NOT_SUPPORTED inside the TA. */
  services?: TrustServices;
  /** The runtime's host calls; a TA reaches only those its manifest's `hostCalls` names. */
  hostCalls?: Record<string, HostCallHandler>;
  log?: (level: LogLevel, ta: string, message: string, fields?: Record<string, unknown>) => void;
  /** Sessions idle longer than this are closed (default 10 minutes). */
  sessionIdleTimeoutMs?: number;
  /** The operator's cap on instances of this TA at once; the manifest's limits.maxInstances is capped by it. */
  maxInstances?: number;
  /** Calls waiting beyond maxConcurrency before BUSY (default 64). */
  queueLimit?: number;
  /** Largest params/result in bytes (default 1 MiB). */
  maxPayloadBytes?: number;
  /**
   * Debug TAs only (a release TA is refused POLICY_VIOLATION, see inspectRefusal): each instance
   * opens a V8 inspector on 127.0.0.1. `true` listens; `'wait'` also waits for a debugger and
   * pauses before the TA's first line, and create() returns once the inspector listens.
   * Inspected instances have no call or start deadline of their own (a breakpoint would hit
   * it); a caller's own timeoutMs still applies. See docs/debugging.md.
   */
  inspect?: boolean | 'wait';
  /** With inspect: told each instance's inspector URL as soon as it listens, before the TA's code runs. */
  onInspector?: (url: string, info: { waiting: boolean }) => void;
}

export type EnclaveEvent =
  | { type: 'crashed'; reason: string; code: string }
  | { type: 'restarted'; attempt: number }
  | { type: 'failed'; reason: string; retryInMs: number }
  /** A failed TA serves again: after its back-off, or an operator's reset. */
  | { type: 'recovering'; after: 'back-off' | 'reset'; failures: number };

export interface EnclaveStats {
  state: 'ready' | 'restarting' | 'failed' | 'destroyed';
  instances: number;
  sessions: number;
  inFlight: number;
  queued: number;
  calls: number;
  errors: number;
  restarts: number;
  /** Failed TAs: when the next retry is due (ms from now), and failures in a row. */
  retryInMs?: number;
  failures?: number;
}

export type BatchItemOutcome = { ok: true; value: Value } | { ok: false; error: Error };

export interface InvokeOptions {
  timeoutMs?: number;
}

export interface Enclave {
  readonly id: string;
  readonly identity: TAIdentity;
  readonly backend: string;
  openSession(params?: Value): Promise<string>;
  /**
   * Without a session id the call runs in an implicit, short-lived session. `timeoutMs` bounds
   * only how long this caller waits (TIMEOUT to it); only the TA's own callTimeoutMs ends an instance.
   */
  invoke(sessionId: string | undefined, command: string, params?: Value, opts?: InvokeOptions): Promise<Value>;
  /**
   * Optional: several session-less invokes of one command, each item answered as invoke() would
   * answer it (its value, or the error it would throw). Rejects only for bad `opts`.
   */
  invokeBatch?(command: string, params: Array<Value | undefined>, opts?: InvokeOptions): Promise<BatchItemOutcome[]>;
  closeSession(sessionId: string): Promise<void>;
  destroy(): Promise<void>;
  /** Operator reset: a failed TA serves again at once (no-op otherwise). */
  reset?(): Promise<void>;
  stats(): EnclaveStats;
  on(event: 'event', listener: (e: EnclaveEvent) => void): this;
  off(event: 'event', listener: (e: EnclaveEvent) => void): this;
}

export interface EnclaveBackend {
  /** `emulated`, later `sgx`, `optee`: also the `tee` claim of evidence. */
  readonly kind: string;
  create(bundle: VerifiedBundle, options?: EnclaveCreateOptions): Promise<Enclave>;
  /** Release what the backend holds itself (standby processes, …); enclaves already created are the caller's to destroy. */
  close?(): Promise<void>;
}
