/** Store and forward: per destination (module input) FIFO of messages kept until their TTL runs out. */

export interface Queued<T> {
  item: T;
  expiresAt: number;
}

export class StoreAndForward<T> {
  private readonly queues = new Map<string, Queued<T>[]>();

  /** Number of messages waiting for `key` (expired ones included until the next take). */
  size(key: string): number {
    return this.queues.get(key)?.length ?? 0;
  }

  total(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  push(key: string, item: T, ttlSecs: number, now = Date.now()): void {
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = []));
    q.push({ item, expiresAt: now + ttlSecs * 1000 });
  }

  /** Remove and return, in order, every unexpired message for keys matching `prefix`. */
  takeAll(prefix: string, now = Date.now()): Array<{ key: string; item: T }> {
    const out: Array<{ key: string; item: T }> = [];
    for (const [key, q] of this.queues) {
      if (!key.startsWith(prefix)) continue;
      for (const e of q) if (e.expiresAt > now) out.push({ key, item: e.item });
      this.queues.delete(key);
    }
    return out;
  }

  /** Drop expired messages everywhere (called periodically). */
  sweep(now = Date.now()): number {
    let dropped = 0;
    for (const [key, q] of this.queues) {
      const kept = q.filter((e) => e.expiresAt > now);
      dropped += q.length - kept.length;
      if (kept.length) this.queues.set(key, kept);
      else this.queues.delete(key);
    }
    return dropped;
  }
}
