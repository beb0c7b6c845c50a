/**
 * Durable file writes, the one owner for the whole project: temp file in the same folder,
 * fsync, rename over the target, fsync of the folder (for a group of files, one folder fsync). Readers see the old or the new content,
 * never a mix, even after kill -9 or a power cut; a failed write leaves the old file as it was.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, mkdir, unlink, link } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, basename } from 'node:path';

export const TEMP_PREFIX = '.tmp-';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replace `path` atomically: readers see the old or the new content, never a mix, even after a crash. */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o600): Promise<void> {
  await writeFilesAtomic([{ path, data, mode }]);
}

export interface FileWrite {
  path: string;
  data: Uint8Array;
  mode?: number;
}

/** A temp file beside `path`, written and fsynced; removed again if any step fails. */
async function stageTemp(f: FileWrite): Promise<string> {
  const tmp = join(dirname(f.path), `${TEMP_PREFIX}${basename(f.path)}.${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'wx', f.mode ?? 0o600);
  try {
    await fh.writeFile(f.data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  return tmp;
}

/**
 * Replace several files, each atomically (old or new content after a crash), as one group commit:
 * the temp files are fsynced concurrently (the filesystem merges them into one journal flush),
 * then renamed, then each folder is fsynced once for the whole group. When this resolves every
 * file of the group is durable; when it rejects, each file is old or new and leftovers are removed.
 * The group is not all-or-nothing: after a crash some files may be new and others old.
 */
export async function writeFilesAtomic(files: readonly FileWrite[]): Promise<void> {
  const staged = await Promise.allSettled(files.map(stageTemp));
  const failed = staged.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const temps = staged.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
  if (failed) {
    await Promise.all(temps.map((t) => t && unlink(t).catch(() => undefined)));
    throw failed.reason;
  }
  for (let i = 0; i < files.length; i++) {
    try {
      await rename(temps[i]!, files[i]!.path);
    } catch (err) {
      await Promise.all(temps.slice(i).map((t) => unlink(t!).catch(() => undefined)));
      throw err;
    }
  }
  for (const dir of new Set(files.map((f) => dirname(f.path)))) await fsyncDir(dir);
}

/**
 * Create `path` only if absent (first start); returns false if it already existed. Written to a
 * temp file and hard-linked into place, so a concurrent reader never sees a half-written file.
 */
export async function createFileExclusive(path: string, data: Uint8Array, mode = 0o600): Promise<boolean> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `${TEMP_PREFIX}${basename(path)}.${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
  return true;
}

/** writeFileAtomic for synchronous callers (start-up state, small JSON documents). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string, mode = 0o600): void {
  const dir = dirname(path);
  const tmp = join(dir, `${TEMP_PREFIX}${basename(path)}.${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
    closeSync(fd);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw err;
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
    throw err;
  }
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
export { LineJournal } from './line-journal.js';
