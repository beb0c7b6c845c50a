/**
 * Store and forward: per destination (module input) FIFO of messages kept until their TTL runs out.
 * Each destination is bounded by a message count and a byte total; past either bound the oldest
 * messages go first, so a module that never connects cannot grow the simulator without limit.
 */

export interface Queued<T> {
  item: T;
  bytes: number;
  expiresAt: number;
}

export interface StoreLimits {
  /** Messages kept per destination. */
  maxMessages: number;
  /** Body bytes kept per destination. */
  maxBytes: number;
}

/** 10,000 messages / 64 MiB per destination. */
export const DEFAULT_STORE_LIMITS: StoreLimits = { maxMessages: 10_000, maxBytes: 64 * 1024 * 1024 };

interface Queue<T> {
  items: Queued<T>[];
  /** Index of the first live item (items before it were taken or dropped). */
  head: number;
  bytes: number;
}

export class StoreAndForward<T> {
  private readonly queues = new Map<string, Queue<T>>();
  private readonly dropped = new Map<string, number>();
  private readonly limits: StoreLimits;

  constructor(limits: Partial<StoreLimits> = {}) {
    this.limits = { ...DEFAULT_STORE_LIMITS, ...limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`store limit ${k} must be a positive integer (got ${v})`);
    }
  }

  /** Number of messages waiting for `key` (expired ones included until the next take). */
  size(key: string): number {
    const q = this.queues.get(key);
    return q ? q.items.length - q.head : 0;
  }

  /** Body bytes waiting for `key`. */
  bytes(key: string): number {
    return this.queues.get(key)?.bytes ?? 0;
  }

  keys(): IterableIterator<string> {
    return this.queues.keys();
  }

  total(): number {
    let n = 0;
    for (const k of this.queues.keys()) n += this.size(k);
    return n;
  }

  /** Messages dropped because a destination was full, by destination key, since start. */
  droppedCounts(): Map<string, number> {
    return new Map(this.dropped);
  }

  /**
   * Store one message. Returns how many older messages of this destination were dropped to make
   * room (0 normally). A message bigger than the byte bound replaces everything stored there.
   */
  push(key: string, item: T, bytes: number, ttlSecs: number, now = Date.now()): number {
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = { items: [], head: 0, bytes: 0 }));
    q.items.push({ item, bytes, expiresAt: now + ttlSecs * 1000 });
    q.bytes += bytes;
    let dropped = 0;
    while (q.items.length - q.head > 1 && (q.items.length - q.head > this.limits.maxMessages || q.bytes > this.limits.maxBytes)) {
      q.bytes -= q.items[q.head]!.bytes;
      q.items[q.head++] = undefined as unknown as Queued<T>; // release the body now
      dropped++;
    }
    compact(q);
    if (dropped) this.dropped.set(key, (this.dropped.get(key) ?? 0) + dropped);
    return dropped;
  }

  /** Remove and return, in order, the unexpired messages for keys matching `prefix`, at most `max`; the rest stay queued. */
  takeAll(prefix: string, now = Date.now(), max = Infinity): Array<{ key: string; item: T }> {
    const out: Array<{ key: string; item: T }> = [];
    for (const [key, q] of this.queues) {
      if (!key.startsWith(prefix)) continue;
      while (q.head < q.items.length && out.length < max) {
        const e = q.items[q.head]!;
        q.items[q.head++] = undefined as unknown as Queued<T>;
        q.bytes -= e.bytes;
        if (e.expiresAt > now) out.push({ key, item: e.item });
      }
      if (q.head >= q.items.length) this.queues.delete(key);
      else compact(q);
    }
    return out;
  }

  /** Drop expired messages everywhere (called periodically). */
  sweep(now = Date.now()): number {
    let expired = 0;
    for (const [key, q] of this.queues) {
      const kept = q.items.slice(q.head).filter((e) => e.expiresAt > now);
      expired += q.items.length - q.head - kept.length;
      if (kept.length) this.queues.set(key, { items: kept, head: 0, bytes: kept.reduce((n, e) => n + e.bytes, 0) });
      else this.queues.delete(key);
    }
    return expired;
  }
}

/** Compact once the taken or dropped prefix is large, so shifting stays amortised O(1). */
function compact<T>(q: Queue<T>): void {
  if (q.head > 1024 && q.head * 2 > q.items.length) {
    q.items = q.items.slice(q.head);
    q.head = 0;
  }
}
