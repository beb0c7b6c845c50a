/**
 * An append-only journal of JSON lines, the one owner of that format for the project (the module
 * frame's input journal, the simulator's store and forward). Appends are plain writes — the page
 * cache survives a kill -9 of the writer — made durable against a power cut by `appendSync`'s
 * fdatasync or by `sync`, which shares one fdatasync among the callers that come while it runs.
 * `appendDeferred` keeps a line in memory until the next write or `sync` (one write for many
 * lines, for a caller that does not let its effect out before that sync). `rewrite` replaces
 * the whole file with the durable write (compaction). A last line a crash cut short is skipped
 * when the file is read.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from './index.js';

export class LineJournal<E> {
  private fd: number | undefined;
  private written = 0;
  private syncing = false;
  private unsynced = false;
  private waiting: Array<(err: Error | null) => void> = [];
  /** Lines of appendDeferred not yet written. */
  private deferred = '';
  /** Descriptors a rewrite replaced while their fdatasync ran. */
  private retired: number[] = [];

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  }

  /** The entries on disk, in order, and how many lines could not be read (cut short by a crash). */
  read(): { entries: E[]; torn: number } {
    if (!existsSync(this.path)) return { entries: [], torn: 0 };
    const entries: E[] = [];
    let torn = 0;
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        entries.push(JSON.parse(line) as E);
      } catch {
        torn++;
      }
    }
    return { entries, torn };
  }

  /** Bytes appended since the last rewrite (plus what it wrote). */
  get bytes(): number {
    return this.written;
  }

  /**
   * Replace the file with exactly `entries` (durably; lines still deferred are dropped), and
   * append after them from now on. While a sync runs, its descriptor is closed once it ends.
   */
  rewrite(entries: Iterable<E>): void {
    const lines: string[] = [];
    for (const e of entries) lines.push(JSON.stringify(e));
    const text = lines.length ? `${lines.join('\n')}\n` : '';
    writeFileAtomicSync(this.path, text, 0o600);
    this.deferred = '';
    if (this.fd !== undefined) {
      if (this.syncing) this.retired.push(this.fd);
      else closeSync(this.fd);
    }
    this.fd = openSync(this.path, 'a', 0o600);
    this.written = Buffer.byteLength(text);
    this.unsynced = false;
  }

  /** Written at once (survives a kill -9); durable against a power cut after the next `sync`. Throws when the write fails. */
  append(e: E): void {
    this.write(`${JSON.stringify(e)}\n`);
  }

  /**
   * Kept in memory, in order, until the next append, `appendSync` or `sync` writes it: a kill -9
   * before then loses it, so the caller lets nothing depend on it out before that sync.
   */
  appendDeferred(e: E): void {
    if (this.fd === undefined) throw new Error('rewrite() first');
    this.deferred += `${JSON.stringify(e)}\n`;
    this.unsynced = true;
  }

  private write(text: string): void {
    if (this.fd === undefined) throw new Error('rewrite() first');
    const b = Buffer.from(this.deferred + text);
    writeSync(this.fd, b);
    this.deferred = '';
    this.written += b.length;
    this.unsynced = true;
  }

  /** append, then fdatasync before returning. */
  appendSync(e: E): void {
    this.append(e);
    fdatasyncSync(this.fd!);
    this.unsynced = false;
  }

  get busy(): boolean {
    return this.syncing;
  }

  /** `cb` once everything appended so far is durable; callers that come while a sync runs share the next one. */
  sync(cb: (err: Error | null) => void): void {
    if (!this.unsynced && !this.syncing) return cb(null);
    this.waiting.push(cb);
    if (!this.syncing) this.flush();
  }

  close(): void {
    if (this.fd !== undefined) {
      if (this.syncing) this.retired.push(this.fd);
      else closeSync(this.fd);
    }
    this.fd = undefined;
  }

  private flush(): void {
    const waiters = this.waiting;
    this.waiting = [];
    try {
      if (this.fd === undefined) throw new Error('the journal is closed');
      if (this.deferred) this.write('');
    } catch (err) {
      // Not kept (as a failed append); the caller reports it. Dropped, so a full disk does not grow memory.
      this.deferred = '';
      for (const w of waiters) w(err as Error);
      return;
    }
    this.syncing = true;
    this.unsynced = false;
    fdatasync(this.fd!, (err) => {
      this.syncing = false;
      for (const fd of this.retired.splice(0)) closeSync(fd);
      for (const w of waiters) w(err);
      if (this.waiting.length > 0) this.flush();
    });
  }
}
