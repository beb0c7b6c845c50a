/**
 * edgeHub delivers at least once: a request id seen before is answered from this cache
 * (or joins the call still running) and never runs the TA twice. Bounded LRU with a TTL.
 */
export class DedupeCache<T> {
  private entries = new Map<string, { value: Promise<T>; at: number }>();

  constructor(private readonly max = 4096, private readonly ttlMs = 5 * 60_000) {}

  /** The cached answer for `id`, or run `fn` once and cache its promise. */
  run(id: string, fn: () => Promise<T>): { value: Promise<T>; duplicate: boolean } {
    const now = Date.now();
    const hit = this.entries.get(id);
    if (hit && now - hit.at < this.ttlMs) return { value: hit.value, duplicate: true };
    const value = fn();
    this.entries.delete(id);
    this.entries.set(id, { value, at: now });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return { value, duplicate: false };
  }

  /** Forget `id` (its answer said nothing ran, so a retry under the same id must run). */
  forget(id: string): void {
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }
}
