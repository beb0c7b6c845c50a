/**
 * Rollback protection for sealed storage: one MACed manifest per storage directory, bound to a
 * hardware monotonic counter (a TPM NV counter) in commit epochs.
 *
 * The manifest records, per TA store, the digest of its entries (key and GCM tag of each sealed
 * file) at the last commit and whether an epoch is open (writes since). A commit writes the
 * manifest with `counter = N + 1`, then increments the NV counter to N + 1. On open:
 *   manifest.counter == NV      → committed state
 *   manifest.counter == NV + 1  → a crash between manifest write and increment: finish the increment
 *   manifest.counter <  NV      → ROLLBACK_DETECTED (an older copy of the directory)
 * A store closed at the last commit must match its digest exactly; a store with an open epoch is
 * taken as it is (the rollback window is the last open epoch). Before a store's first change in
 * an epoch the manifest marks it open (fsynced), so a crash anywhere never looks like a rollback.
 */
import { readFile, readdir, mkdir } from 'node:fs/promises';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { writeFileAtomic } from '@enclave-edge/durable-files';
import type { MonotonicCounter, RotLog } from './rot/types.js';

export const FRESHNESS_MANIFEST = 'freshness.json';
const MAC_INFO = 'enclave-edge/v1/storage-freshness';

export interface FreshnessOptions {
  /** Close an epoch (one counter increment) at most this long after its first write (default 15 min). */
  epochSeconds?: number;
  /** Wear bound: at most this many counter increments in any rolling hour (default 4). */
  maxIncrementsPerHour?: number;
}

export const FRESHNESS_DEFAULTS = { epochSeconds: 900, maxIncrementsPerHour: 4 } as const;

/** ENCLAVE_EDGE_TPM_EPOCH_SECONDS and ENCLAVE_EDGE_TPM_MAX_INCREMENTS_PER_HOUR, checked. */
export function freshnessOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): FreshnessOptions {
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new EnclaveEdgeError('CONFIG_INVALID', `${name} must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const epochSeconds = num('ENCLAVE_EDGE_TPM_EPOCH_SECONDS');
  const maxIncrementsPerHour = num('ENCLAVE_EDGE_TPM_MAX_INCREMENTS_PER_HOUR');
  return { ...(epochSeconds ? { epochSeconds } : {}), ...(maxIncrementsPerHour ? { maxIncrementsPerHour } : {}) };
}

/** What a sealed store calls: the narrow hook between storage and freshness. */
export interface StoreFreshnessHook {
  /** After the store scanned its directory (key → GCM tag of the file); throws ROLLBACK_DETECTED. */
  opened(entries: ReadonlyMap<string, Uint8Array>): Promise<void>;
  /** Wrap a change of one or more files (one group commit): `fn` returns each key's new tag (undefined: the key is gone). */
  change<T>(fn: () => Promise<{ result: T; tags: ReadonlyMap<string, Uint8Array | undefined> }>): Promise<T>;
  /** A value read from disk must carry the tag last written for its key (a file swapped under a running store is refused). */
  check(key: string, tag: Uint8Array | undefined): void;
}

interface StoreRecord {
  digest: string;
  open: boolean;
}

interface Manifest {
  version: 1;
  counter: string;
  stores: Record<string, StoreRecord>;
  /** ms timestamps of recent increments (the wear budget survives restarts). */
  increments: number[];
}

interface LiveStore {
  ta: string;
  entries: Map<string, string>;
  inflight: number;
}

function digestOf(entries: ReadonlyMap<string, string>): string {
  const h = createHash('sha256');
  for (const k of [...entries.keys()].sort()) h.update(k).update('\0').update(entries.get(k)!).update('\n');
  return h.digest('hex');
}

function rollback(ta: string, why: string): EnclaveEdgeError {
  return new EnclaveEdgeError('ROLLBACK_DETECTED', `sealed storage of TA "${ta}" refused: ${why}`, { detail: { ta } });
}

export class FreshnessLedger {
  private manifest: Manifest | undefined;
  private loading: Promise<void> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly live = new Map<string, LiveStore>();
  private timer: NodeJS.Timeout | undefined;
  private macKey: Uint8Array | undefined;
  private closed = false;
  readonly epochMs: number;
  readonly maxPerHour: number;
  /** Counter increments this process made (for tests and `device show`). */
  incrementsMade = 0;

  constructor(
    private readonly storageDir: string,
    private readonly counter: MonotonicCounter,
    private readonly deriveKey: (info: Uint8Array) => Promise<Uint8Array>,
    opts: FreshnessOptions = {},
    private readonly log?: RotLog,
  ) {
    this.epochMs = 1000 * (opts.epochSeconds ?? FRESHNESS_DEFAULTS.epochSeconds);
    this.maxPerHour = opts.maxIncrementsPerHour ?? FRESHNESS_DEFAULTS.maxIncrementsPerHour;
    if (!(this.epochMs > 0) || !Number.isInteger(this.maxPerHour) || this.maxPerHour < 1) {
      throw new EnclaveEdgeError('CONFIG_INVALID', 'freshness: epochSeconds must be > 0 and maxIncrementsPerHour an integer >= 1');
    }
  }

  private get path(): string {
    return join(this.storageDir, FRESHNESS_MANIFEST);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async mac(body: string): Promise<string> {
    this.macKey ??= await this.deriveKey(Buffer.from(MAC_INFO));
    return createHmac('sha256', this.macKey).update(body).digest('hex');
  }

  private async write(m: Manifest): Promise<void> {
    const body = JSON.stringify(m);
    await writeFileAtomic(this.path, Buffer.from(JSON.stringify({ body, mac: await this.mac(body) }) + '\n'));
  }

  /** Load and check the manifest against the counter, once per process (`ta` names who asked). */
  private load(ta: string): Promise<void> {
    this.loading ??= this.serial(async () => {
      await mkdir(this.storageDir, { recursive: true, mode: 0o700 });
      const nv = await this.counter.read();
      const raw = await this.readRaw();
      if (raw === undefined) {
        if (await this.anyStoreHasData()) throw rollback(ta, `the freshness manifest ${this.path} is missing while stores hold data (deleted or restored without it)`);
        this.manifest = { version: 1, counter: nv.toString(), stores: Object.create(null), increments: [] };
        await this.write(this.manifest);
        return;
      }
      const m = await this.parse(raw, ta);
      const mc = BigInt(m.counter);
      if (mc < nv) throw rollback(ta, `the state is from commit ${mc} but ${this.counter.description} is at ${nv}: an older copy of the state directory was restored`);
      if (mc > nv + 1n) {
        throw new EnclaveEdgeError('CONFIG_INVALID', `the freshness manifest is at commit ${mc} but ${this.counter.description} only at ${nv}: another TPM, or the counter was re-created`, { detail: { ta } });
      }
      this.manifest = m;
      if (mc === nv + 1n) {
        // The last commit wrote the manifest but died before the increment: finish it.
        const now = await this.counter.increment();
        this.incrementsMade++;
        if (now !== mc) throw new EnclaveEdgeError('CONFIG_INVALID', `finishing an interrupted commit moved ${this.counter.description} to ${now}, expected ${mc}`);
        this.log?.('info', `finished an interrupted storage commit (${this.counter.description} now ${now})`);
      }
    });
    // Not cached when it fails: a TPM that was down is asked again, a rollback is found again (naming the TA that asks).
    this.loading.catch(() => (this.loading = undefined));
    return this.loading;
  }

  private async readRaw(): Promise<string | undefined> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Verify the MAC and the shape; SEAL_INTEGRITY if either fails. */
  private async parse(raw: string, ta: string): Promise<Manifest> {
    let m: Manifest;
    try {
      const outer = JSON.parse(raw) as { body: string; mac: string };
      const expect = Buffer.from(await this.mac(String(outer.body)), 'hex');
      const got = Buffer.from(String(outer.mac), 'hex');
      if (got.length !== expect.length || !timingSafeEqual(got, expect)) throw new Error('mac');
      m = JSON.parse(outer.body) as Manifest;
      if (m.version !== 1 || !/^\d+$/.test(m.counter) || typeof m.stores !== 'object' || !Array.isArray(m.increments)) throw new Error('shape');
    } catch {
      throw new EnclaveEdgeError('SEAL_INTEGRITY', `the freshness manifest ${this.path} failed its integrity check (altered, or from another device)`, { detail: { ta } });
    }
    m.stores = Object.assign(Object.create(null), m.stores) as Record<string, StoreRecord>;
    return m;
  }

  /** For `device show`: the committed state on disk against the counter, without opening any store. */
  async inspect(): Promise<{ counter: string; manifestCounter?: string; stores: number; openEpochs: number; incrementsLastHour: number; maxIncrementsPerHour: number; state: string }> {
    const nv = await this.counter.read();
    const raw = await this.readRaw();
    const base = { counter: nv.toString(), maxIncrementsPerHour: this.maxPerHour };
    if (raw === undefined) return { ...base, stores: 0, openEpochs: 0, incrementsLastHour: 0, state: 'no sealed storage yet' };
    const m = await this.parse(raw, '(device show)');
    const mc = BigInt(m.counter);
    const recs = Object.values(m.stores);
    return {
      ...base,
      manifestCounter: m.counter,
      stores: recs.length,
      openEpochs: recs.filter((r) => r.open).length,
      incrementsLastHour: m.increments.filter((t) => t > Date.now() - 3_600_000).length,
      state: mc === nv ? 'committed' : mc === nv + 1n ? 'interrupted commit (finished on next open)' : mc < nv ? 'ROLLBACK: storage is older than the counter' : 'counter behind storage (another TPM?)',
    };
  }

  private async anyStoreHasData(): Promise<boolean> {
    for (const d of await readdir(this.storageDir, { withFileTypes: true })) {
      if (d.isDirectory() && d.name.startsWith('ta-') && (await readdir(join(this.storageDir, d.name))).some((f) => f.startsWith('k_'))) return true;
    }
    return false;
  }

  hookFor(storeName: string, ta: string): StoreFreshnessHook {
    const ledger = this;
    const st: LiveStore = { ta, entries: new Map(), inflight: 0 };
    return {
      async opened(found) {
        await ledger.load(ta);
        const m = ledger.manifest!;
        st.entries = new Map([...found].map(([k, tag]) => [k, Buffer.from(tag).toString('hex')]));
        const rec = Object.hasOwn(m.stores, storeName) ? m.stores[storeName] : undefined;
        if (!rec && st.entries.size) throw rollback(ta, 'the store holds data the freshness manifest does not know (its directory was restored or copied in)');
        if (rec && !rec.open && digestOf(st.entries) !== rec.digest) {
          throw rollback(ta, `its files differ from the last commit (${ledger.counter.description}): an older copy of the store was restored or files were swapped`);
        }
        ledger.live.set(storeName, st);
      },
      async change(fn) {
        if (ledger.closed) throw new EnclaveEdgeError('UNAVAILABLE', 'sealed storage is closed');
        st.inflight++;
        try {
          await ledger.serial(async () => {
            const m = ledger.manifest!;
            const rec = Object.hasOwn(m.stores, storeName) ? m.stores[storeName] : undefined;
            if (!rec?.open) {
              m.stores[storeName] = { digest: rec?.digest ?? digestOf(new Map()), open: true };
              await ledger.write(m);
            }
          });
          ledger.schedule();
          const { result, tags } = await fn();
          for (const [key, tag] of tags) {
            if (tag) st.entries.set(key, Buffer.from(tag).toString('hex'));
            else st.entries.delete(key);
          }
          return result;
        } finally {
          st.inflight--;
        }
      },
      check(key, tag) {
        const want = st.entries.get(key);
        const got = tag && Buffer.from(tag).toString('hex');
        if (want !== got) throw rollback(ta, `the file of key "${key}" is not the one last written (replaced while running)`);
      },
    };
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.commit().catch((err) => this.log?.('warn', `storage commit failed; the epoch stays open and is retried: ${(err as Error).message}`));
    }, this.epochMs);
    this.timer.unref();
  }

  /** Increments left in the rolling hour. */
  budget(now = Date.now()): number {
    const m = this.manifest;
    if (!m) return this.maxPerHour;
    return this.maxPerHour - m.increments.filter((t) => t > now - 3_600_000).length;
  }

  /**
   * Close the open epochs: every store without a change in flight gets its digest recorded, then
   * the counter is incremented. Skipped (epochs stay open, safely) when the wear budget is spent.
   * Returns whether the counter moved.
   */
  commit(opts: { force?: boolean } = {}): Promise<boolean> {
    return this.serial(async () => {
      const m = this.manifest;
      if (!m) return false;
      const openStores = Object.keys(m.stores).filter((s) => m.stores[s]!.open);
      if (!openStores.length) return false;
      const now = Date.now();
      if (!opts.force && this.budget(now) <= 0) {
        this.log?.('info', `storage commit deferred: ${this.maxPerHour} counter increments in the last hour (wear bound)`);
        if (!this.closed) {
          const oldest = Math.min(...m.increments.filter((t) => t > now - 3_600_000));
          clearTimeout(this.timer);
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.commit().catch(() => undefined);
          }, Math.max(1000, oldest + 3_600_000 - now)).unref();
        }
        return false;
      }
      const next: Manifest = { ...m, stores: Object.assign(Object.create(null), m.stores) as Record<string, StoreRecord>, increments: [...m.increments.filter((t) => t > now - 3_600_000), now] };
      for (const s of openStores) {
        const st = this.live.get(s);
        if (st && st.inflight === 0) next.stores[s] = { digest: digestOf(st.entries), open: false };
      }
      const target = BigInt(m.counter) + 1n;
      next.counter = target.toString();
      await this.write(next);
      this.manifest = next;
      const got = await this.counter.increment();
      this.incrementsMade++;
      if (got !== target) {
        // Someone else moved the counter: rebind to what it is, or the next open would see a rollback.
        this.log?.('warn', `${this.counter.description} moved to ${got} (expected ${target}): incremented outside enclave-edge; rebinding`);
        next.counter = got.toString();
        await this.write(next);
      }
      if (Object.values(next.stores).some((r) => r.open)) this.schedule();
      return true;
    });
  }

  /** Clean close: commit (within the wear budget), stop the timer. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.manifest) await this.commit();
    this.macKey = undefined;
  }
}
