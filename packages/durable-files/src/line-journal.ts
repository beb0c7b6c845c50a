/**
 * An append-only journal of JSON lines, the one owner of that format for the project (the module
 * frame's input journal, the simulator's store and forward). Appends are plain writes — the page
 * cache survives a kill -9 of the writer — made durable against a power cut by `appendSync`'s
 * fdatasync or by `sync`, which shares one fdatasync among the callers that come while it runs.
 * `rewrite` replaces the whole file with the durable write (compaction). A last line a crash
 * cut short is skipped when the file is read.
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

  /** Replace the file with exactly `entries` (durably), and append after them from now on. */
  rewrite(entries: Iterable<E>): void {
    if (this.syncing) throw new Error('a sync is running');
    const lines: string[] = [];
    for (const e of entries) lines.push(JSON.stringify(e));
    const text = lines.length ? `${lines.join('\n')}\n` : '';
    writeFileAtomicSync(this.path, text, 0o600);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = openSync(this.path, 'a', 0o600);
    this.written = Buffer.byteLength(text);
    this.unsynced = false;
  }

  /** Written at once (survives a kill -9); durable against a power cut after the next `sync`. Throws when the write fails. */
  append(e: E): void {
    if (this.fd === undefined) throw new Error('rewrite() first');
    const b = Buffer.from(`${JSON.stringify(e)}\n`);
    writeSync(this.fd, b);
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
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private flush(): void {
    this.syncing = true;
    this.unsynced = false;
    const waiters = this.waiting;
    this.waiting = [];
    fdatasync(this.fd!, (err) => {
      this.syncing = false;
      for (const w of waiters) w(err);
      if (this.waiting.length > 0) this.flush();
    });
  }
}
