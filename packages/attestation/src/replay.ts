/** Remembers tokens already accepted until they expire, so a replayed token is refused. */
import { createHash } from 'node:crypto';

export interface ReplayCache {
  /**
   * True if `id` was seen before (and records it otherwise) until `expiresAt` (ms); `'full'`
   * if it cannot be recorded (the verifier then refuses the token: fail closed).
   */
  checkAndRemember(id: string, expiresAt: number, now: number): boolean | 'full';
}

export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();
  private lastSweep = -Infinity;
  /** Size it for (accepted tokens per second) × (token lifetime + clock tolerance). */
  constructor(private readonly maxEntries = 100_000) {}

  checkAndRemember(id: string, expiresAt: number, now: number): boolean | 'full' {
    const until = this.seen.get(id);
    if (until !== undefined && until >= now) return true;
    if (this.seen.size >= this.maxEntries) this.sweep(now);
    // O9: evicting a live entry would let that token be replayed once; refuse instead.
    if (this.seen.size >= this.maxEntries && !this.seen.has(id)) return 'full';
    this.seen.set(id, expiresAt);
    return false;
  }

  /** Forget `id` (a reservation whose token turned out not to be authentic). */
  forget(id: string): void {
    this.seen.delete(id);
  }

  /** Drop expired entries; when full, at most once per second (a sweep is O(entries)). */
  private sweep(now: number): void {
    if (now - this.lastSweep < 1000 && now >= this.lastSweep) return;
    this.lastSweep = now;
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
