/**
 * Sealed key-value storage, one directory per TA. Each value is one file, sealed with the
 * `product` policy (so it survives upgrades of the same signer/product) and with the TA uuid and
 * key as AAD context (so files cannot be swapped between keys or TAs). Writes are atomic.
 */
import { mkdir, open, readdir, readFile, stat, statfs, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { EnclaveEdgeError, storageFault } from '@enclave-edge/errors';
import { writeFilesAtomic, fsyncDir, TEMP_PREFIX } from '@enclave-edge/durable-files';
import { SEAL_OVERHEAD, SEAL_TAG_BYTES, type Sealer } from './seal.js';
import type { StoreFreshnessHook } from './freshness.js';
import type { TAIdentity } from './identity.js';

export const STORAGE_KEY_RE = /^[A-Za-z0-9._-]{1,128}$/;
const FILE_PREFIX = 'k_';

/** Default cap on the number of keys (files, inodes) per TA. */
export const DEFAULT_MAX_KEYS = 4096;
/** Charged per entry besides its data blocks: the inode and the directory entry. */
export const ENTRY_OVERHEAD_BYTES = 512;
/** Smallest allocation unit assumed, also when the filesystem reports a smaller one. */
const MIN_BLOCK_BYTES = 4096;

/**
 * What one entry costs against the quota: its sealed size rounded up to whole filesystem blocks,
 * plus the inode and directory entry, so an empty value is not free on disk.
 */
export function storageEntryCost(sealedBytes: number, blockBytes: number): number {
  return Math.max(1, Math.ceil(sealedBytes / blockBytes)) * blockBytes + ENTRY_OVERHEAD_BYTES;
}

export interface SealedStore {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<boolean>;
  list(prefix?: string): Promise<string[]>;
}

/** The directory of a TA's store: stable across versions of the same signer, product and uuid; debug builds apart. */
export function taStorageDirName(id: Pick<TAIdentity, 'signerId' | 'productId' | 'uuid' | 'debug'>): string {
  return 'ta-' + createHash('sha256').update(`${id.signerId}/${id.productId}/${id.uuid}${id.debug ? '/debug' : ''}`).digest('hex').slice(0, 32);
}

/** Called first in async methods, so a bad key is a rejected promise like every other failure. */
function checkKey(key: string): void {
  if (typeof key !== 'string' || !STORAGE_KEY_RE.test(key)) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'storage keys are 1..128 characters of [A-Za-z0-9._-]');
  }
}

interface PutRequest {
  id: TAIdentity;
  key: string;
  value: Uint8Array;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SealedFileStore implements SealedStore {
  readonly dir: string;
  private usage = 0;
  private blockBytes = MIN_BLOCK_BYTES;
  /** Key → what it costs against the quota (storageEntryCost). */
  private readonly costs = new Map<string, number>();
  private ready: Promise<void> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private scratch: Buffer = Buffer.alloc(0);
  /** The put batch still accepting joiners (see putAs). */
  private batch: PutRequest[] | undefined;
  private readonly views = new Map<string, SealedStore>();

  constructor(
    root: string,
    private readonly id: TAIdentity,
    private readonly sealer: Sealer,
    readonly quotaBytes: number,
    readonly maxKeys: number = DEFAULT_MAX_KEYS,
    /** Rollback protection (freshness.ts), when the root of trust has a monotonic counter. */
    private readonly freshness?: StoreFreshnessHook,
  ) {
    this.dir = join(root, taStorageDirName(id));
  }

  /** Scan once: sizes for the quota, and leftovers of writes interrupted by a crash. */
  private init(): Promise<void> {
    this.ready ??= (async () => {
      this.costs.clear();
      this.usage = 0;
      const tags = this.freshness && new Map<string, Uint8Array>();
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.blockBytes = Math.max(MIN_BLOCK_BYTES, (await statfs(this.dir)).bsize || 0);
      for (const name of await readdir(this.dir)) {
        if (name.startsWith(TEMP_PREFIX)) {
          await unlink(join(this.dir, name)).catch(() => undefined);
        } else if (name.startsWith(FILE_PREFIX)) {
          const size = tags ? await readTag(join(this.dir, name), tags, name.slice(FILE_PREFIX.length)) : (await stat(join(this.dir, name))).size;
          const cost = storageEntryCost(size, this.blockBytes);
          this.costs.set(name.slice(FILE_PREFIX.length), cost);
          this.usage += cost;
        }
      }
      if (tags) await this.freshness!.opened(tags);
    })();
    // A failed open (TPM unreachable, rollback) is tried again by the next call, not cached.
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  /** Any operation but a put: queued after the open put batch, which then takes no more joiners. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    this.batch = undefined;
    return this.enqueue(fn);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      await this.init();
      return fn();
    }).catch((err: unknown) => {
      // Disk full, read-only, I/O: a named code, never the host path of the raw error.
      throw storageFault(err, `storage of TA "${this.id.name}"`);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private context(key: string): Uint8Array {
    return Buffer.from(`enclave-edge/v1/storage/${this.id.uuid}/${key}`, 'utf8');
  }

  private path(key: string): string {
    return join(this.dir, FILE_PREFIX + key);
  }

  get usedBytes(): number {
    return this.usage;
  }

  /**
   * This store as the identity running now sees it: its seals carry that identity's SVN and it
   * opens only what that SVN may. One store (quota, queue, freshness) per directory, one view per
   * identity, so a replacement or downgrade in the same process never reads with another version's identity.
   */
  as(id: TAIdentity): SealedStore {
    if (taStorageDirName(id) !== taStorageDirName(this.id)) throw new EnclaveEdgeError('INTERNAL', `TA "${id.name}" is not the owner of store ${this.dir}`);
    const key = `${id.measurement}/${id.securityVersion}/${id.name}`;
    let view = this.views.get(key);
    if (!view) {
      view = {
        get: (k) => this.getAs(id, k),
        put: (k, value) => this.putAs(id, k, value),
        delete: (k) => this.delete(k),
        list: (prefix) => this.list(prefix),
      };
      this.views.set(key, view);
    }
    return view;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.getAs(this.id, key);
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.putAs(this.id, key, value);
  }

  private async getAs(id: TAIdentity, key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    return this.run(async () => {
      let blob: Buffer;
      try {
        blob = await readFile(this.path(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        this.freshness?.check(key, undefined);
        return undefined;
      }
      this.freshness?.check(key, blob.subarray(blob.length - SEAL_TAG_BYTES));
      return this.sealer.unseal(id, blob, { context: this.context(key) });
    });
  }

  /**
   * Puts are group-committed: puts issued while the store is busy join one batch that is sealed,
   * charged to the quota in call order and written with one writeFilesAtomic (one folder fsync
   * for all). Each caller is answered only once its batch is durable. A batch accepts joiners
   * only until another operation is queued behind it, so calls still take effect in call order.
   */
  private putAs(id: TAIdentity, key: string, value: Uint8Array): Promise<void> {
    try {
      checkKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!(value instanceof Uint8Array)) return Promise.reject(new EnclaveEdgeError('BAD_PARAMETERS', 'storage values are bytes (Uint8Array)'));
    return new Promise<void>((resolve, reject) => {
      const req: PutRequest = { id, key, value, resolve, reject };
      if (this.batch) {
        this.batch.push(req);
        return;
      }
      const batch = [req];
      this.batch = batch;
      this.enqueue(async () => {
        if (this.batch === batch) this.batch = undefined;
        await this.flush(batch);
      }).catch((err: unknown) => {
        for (const r of batch) r.reject(err);
      });
    });
  }

  /** Seal and charge each put in order, then write the survivors as one group; settles every request. */
  private async flush(batch: PutRequest[]): Promise<void> {
    const fault = (err: unknown) => storageFault(err, `storage of TA "${this.id.name}"`);
    const writes = new Map<string, { blob: Uint8Array; reqs: PutRequest[] }>();
    const charged = new Map<string, number>();
    let usage = this.usage;
    let newKeys = 0;
    for (const r of batch) {
      try {
        // A lone put reuses the store's scratch buffer (operations run one at a time); a group needs one buffer per entry.
        let output: Buffer | undefined;
        if (batch.length === 1) {
          const need = r.value.length + SEAL_OVERHEAD;
          if (this.scratch.length < need) this.scratch = Buffer.allocUnsafe(Math.max(need, Math.min(2 * this.scratch.length, 8 << 20)));
          output = this.scratch;
        }
        const blob = await this.sealer.seal(r.id, r.value, { policy: 'product', context: this.context(r.key), ...(output ? { output } : {}) });
        const old = charged.has(r.key) ? charged.get(r.key) : this.costs.get(r.key);
        if (old === undefined && this.costs.size + newKeys >= this.maxKeys) {
          throw new EnclaveEdgeError('QUOTA_EXCEEDED', `storage of TA "${r.id.name}" holds its maximum of ${this.maxKeys} keys (key "${r.key}" is new); delete keys first`, {
            detail: { maxKeys: this.maxKeys, keys: this.costs.size + newKeys },
          });
        }
        const cost = storageEntryCost(blob.length, this.blockBytes);
        const next = usage - (old ?? 0) + cost;
        if (next > this.quotaBytes) {
          throw new EnclaveEdgeError('QUOTA_EXCEEDED', `storage quota of TA "${r.id.name}" exceeded: ${next} of ${this.quotaBytes} bytes on disk (key "${r.key}", ${blob.length} bytes sealed, ${cost} with blocks and entry)`, {
            detail: { quotaBytes: this.quotaBytes, usedBytes: usage, requestedBytes: cost },
          });
        }
        if (old === undefined) newKeys++;
        charged.set(r.key, cost);
        usage = next;
        const w = writes.get(r.key);
        if (w) {
          w.blob = blob;
          w.reqs.push(r);
        } else writes.set(r.key, { blob, reqs: [r] });
      } catch (err) {
        r.reject(fault(err));
      }
    }
    if (!writes.size) return;
    const files = [...writes].map(([key, w]) => ({ path: this.path(key), data: w.blob }));
    try {
      if (this.freshness) {
        const tags = new Map([...writes].map(([key, w]) => [key, Buffer.from(w.blob.subarray(w.blob.length - SEAL_TAG_BYTES))] as const));
        await this.freshness.change(async () => ({ result: await writeFilesAtomic(files), tags }));
      } else {
        await writeFilesAtomic(files);
      }
    } catch (err) {
      // Which files of the group landed is unknown (each is old or new): rescan before the next operation.
      this.ready = undefined;
      for (const w of writes.values()) for (const r of w.reqs) r.reject(fault(err));
      return;
    }
    for (const [key, cost] of charged) this.costs.set(key, cost);
    this.usage = usage;
    for (const w of writes.values()) for (const r of w.reqs) r.resolve();
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    return this.run(async () => {
      const removed = this.freshness
        ? await this.freshness.change(async () => ({ result: await this.unlinkEntry(key), tags: new Map([[key, undefined]]) }))
        : await this.unlinkEntry(key);
      if (!removed) return false;
      this.usage -= this.costs.get(key) ?? 0;
      this.costs.delete(key);
      return true;
    });
  }

  private async unlinkEntry(key: string): Promise<boolean> {
    try {
      await unlink(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await fsyncDir(this.dir);
    return true;
  }

  list(prefix = ''): Promise<string[]> {
    if (typeof prefix !== 'string') return Promise.reject(new EnclaveEdgeError('BAD_PARAMETERS', 'prefix must be a string'));
    return this.run(async () => [...this.costs.keys()].filter((k) => k.startsWith(prefix)).sort());
  }
}

/** The GCM tag (last bytes) of a sealed file, for freshness digests; returns the file size. */
async function readTag(path: string, into: Map<string, Uint8Array>, key: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const tag = Buffer.alloc(SEAL_TAG_BYTES);
    if (size >= SEAL_TAG_BYTES) await fh.read(tag, 0, SEAL_TAG_BYTES, size - SEAL_TAG_BYTES);
    into.set(key, tag);
    return size;
  } finally {
    await fh.close();
  }
}
