/** One loaded TA: its enclave, and a count of calls in flight so a replacement can drain it. */
import type { Enclave } from '@enclave-edge/enclave';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';

/** `revoked`: it ran, and the policy now in force refuses it (`rule` names why); it stays retired until admitted again. */
export type TAStatus = 'loaded' | 'rejected' | 'failed' | 'disabled' | 'loading' | 'revoked';

export interface TAReport {
  status: TAStatus;
  origin: 'desired' | 'method';
  version?: string | null;
  measurement?: string | null;
  signerId?: string | null;
  svn?: number | null;
  debug?: boolean | null;
  runtime?: string | null;
  lastError?: string | null;
  errorCode?: string | null;
  /** The admission rule that refused it (revoked or rejected by policy). */
  rule?: string | null;
  /** Debug TAs with `inspect`: where the current instance's inspector listens (127.0.0.1). */
  inspectorUrl?: string | null;
  since: string;
}

/** What a TA was loaded from. Compared byte for byte: admission already hashes the bytes once, a second digest would double the cost of every load. */
export interface SourceIdentity {
  bytes: Uint8Array;
  pinned: string;
  /** The entry's `inspect` (debug TAs only): turning it on or off restarts this TA only. */
  inspect?: true | 'wait' | undefined;
}

export function sameSource(a: SourceIdentity, b: SourceIdentity): boolean {
  return a.pinned === b.pinned && a.inspect === b.inspect && a.bytes.byteLength === b.bytes.byteLength && Buffer.from(a.bytes.buffer, a.bytes.byteOffset, a.bytes.byteLength).equals(b.bytes);
}

export class LoadedTA {
  private active = 0;
  private drained: (() => void) | undefined;
  retiring = false;

  constructor(
    readonly name: string,
    readonly bundle: VerifiedBundle,
    readonly enclave: Enclave,
    /** The source bytes and pin it was loaded from: the same again → nothing to do. */
    readonly source: SourceIdentity,
    readonly origin: 'desired' | 'method',
    /** The measurement its configuration pins, re-checked on every policy change. */
    readonly pinned?: string,
    /** The policy's maxLimits.maxInstances it was started under. */
    readonly instanceCap?: number,
  ) {}

  /** Run a call against this enclave, counted for draining. */
  async use<T>(fn: (e: Enclave) => Promise<T>): Promise<T> {
    this.active++;
    try {
      return await fn(this.enclave);
    } finally {
      this.active--;
      if (this.active === 0 && this.drained) this.drained();
    }
  }

  /** Let calls in flight finish (bounded wait), then destroy the enclave. */
  async retire(maxWaitMs: number): Promise<void> {
    this.retiring = true;
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        setTimeout(resolve, maxWaitMs).unref?.();
      });
    }
    await this.enclave.destroy().catch(() => undefined);
  }

  get inFlight(): number {
    return this.active;
  }
}
