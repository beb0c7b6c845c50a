/**
 * What the instances of one enclave share for confidential calls: the sealed HPKE key blob
 * (kept in the TA's sealed store, replaced only compare-and-swap so instances starting together
 * agree on one key) and the replay memory of request ids (checked as the envelope enters the
 * enclave, without a round trip from the instance). Neither holds a plaintext key or
 * request: the blob is sealed `unique` by the enclave, ids are public.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { MemoryReplayCache } from '@enclave-edge/attestation/replay';
import type { SealedStore, TAIdentity } from '../contract.js';

/** One blob per measurement: a replaced TA's instances draining keep theirs, a new version makes its own. */
export function hpkeKeyStorageKey(id: TAIdentity): string {
  return `__ee_hpke_key.${id.measurement.slice(0, 32)}`;
}

/** Request ids the enclave remembers at once (each for at most the envelope lifetime). */
export const REPLAY_CACHE_ENTRIES = 50_000;

export class ConfidentialState {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly seen = new MemoryReplayCache(REPLAY_CACHE_ENTRIES);

  constructor(private readonly identity: TAIdentity, private readonly store: () => SealedStore) {}

  getKeyBlob(): Promise<Uint8Array | null> {
    return this.serial(async () => (await this.store().get(hpkeKeyStorageKey(this.identity))) ?? null);
  }

  /** Store `blob` if the current one is still `expected`; returns the blob now in force. */
  swapKeyBlob(blob: Uint8Array, expected: Uint8Array | null): Promise<Uint8Array> {
    return this.serial(async () => {
      const key = hpkeKeyStorageKey(this.identity);
      const current = (await this.store().get(key)) ?? null;
      const same = current === null ? expected === null : expected !== null && Buffer.from(current).equals(Buffer.from(expected));
      if (!same) return current!;
      await this.store().put(key, blob);
      return blob;
    });
  }

  /**
   * 'fresh' the first time `rid` is presented before `expiresAt` (ms), and it is reserved from
   * then on; then 'replay'; 'full' fails closed. Taken before the envelope reaches an instance,
   * so a copy in flight counts too; released only if the enclave says the envelope did not open.
   */
  reserveRequestId(rid: string, expiresAt: number): 'fresh' | 'replay' | 'full' {
    if (typeof rid !== 'string' || !/^[A-Za-z0-9_-]{16,64}$/.test(rid) || !Number.isSafeInteger(expiresAt)) {
      throw new EnclaveEdgeError('BAD_PARAMETERS', 'request id check needs an id and an expiry');
    }
    const r = this.seen.checkAndRemember(rid, expiresAt, Date.now());
    return r === 'full' ? 'full' : r ? 'replay' : 'fresh';
  }

  releaseRequestId(rid: string): void {
    this.seen.forget(rid);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
