/** Remembers tokens already accepted until they expire, so a replayed token is refused. */
import { createHash } from 'node:crypto';

export interface ReplayCache {
  /** True if `id` was seen before (and records it otherwise) until `expiresAt` (ms). */
  checkAndRemember(id: string, expiresAt: number, now: number): boolean;
}

export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();
  constructor(private readonly maxEntries = 100_000) {}

  checkAndRemember(id: string, expiresAt: number, now: number): boolean {
    const until = this.seen.get(id);
    if (until !== undefined && until >= now) return true;
    if (this.seen.size >= this.maxEntries) this.sweep(now);
    if (this.seen.size >= this.maxEntries) {
      // Full of live entries: drop the oldest inserted (Map keeps insertion order).
      const first = this.seen.keys().next();
      if (!first.done) this.seen.delete(first.value);
    }
    this.seen.set(id, expiresAt);
    return false;
  }

  private sweep(now: number): void {
    for (const [k, until] of this.seen) if (until < now) this.seen.delete(k);
  }

  get size(): number {
    return this.seen.size;
  }
}

/**
 * Replay identity of a token: its signed content (header.payload). Not the signature: ECDSA
 * signatures are malleable (s and n−s both verify), so a replayer could alter it.
 */
export function replayId(token: string): string {
  return createHash('sha256').update(token.slice(0, token.lastIndexOf('.'))).digest('base64url');
}
