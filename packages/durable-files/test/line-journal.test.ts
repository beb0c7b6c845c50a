/**
 * LineJournal on real files: deferred lines reach the file with the next write or sync, in
 * order with plain appends; a rewrite while an fdatasync runs replaces the file and later
 * appends land in the new one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineJournal } from '@enclave-edge/durable-files';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const journalIn = () => {
  const d = mkdtempSync(join(tmpdir(), 'ee-linejournal-'));
  dirs.push(d);
  const j = new LineJournal<{ n: number }>(join(d, 'j.journal'));
  j.rewrite([]);
  return j;
};
const synced = (j: LineJournal<{ n: number }>) => new Promise<void>((resolve, reject) => j.sync((err) => (err ? reject(err) : resolve())));
const lines = (j: LineJournal<{ n: number }>) => j.read().entries.map((e) => e.n);

describe('LineJournal', () => {
  it('writes deferred lines with the next sync, and before a later plain append', async () => {
    const j = journalIn();
    j.appendDeferred({ n: 1 });
    j.appendDeferred({ n: 2 });
    expect(lines(j)).toEqual([]);
    await synced(j);
    expect(lines(j)).toEqual([1, 2]);
    j.appendDeferred({ n: 3 });
    j.append({ n: 4 });
    expect(lines(j)).toEqual([1, 2, 3, 4]);
    j.close();
  });

  it('rewrites while an fdatasync runs; appends after it go to the new file and sync', async () => {
    const j = journalIn();
    j.append({ n: 1 });
    const first = synced(j);
    expect(j.busy).toBe(true);
    j.appendDeferred({ n: 2 }); // dropped by the rewrite: its caller put what it needs in the entries
    j.rewrite([{ n: 10 }]);
    j.appendDeferred({ n: 11 });
    await first;
    await synced(j);
    expect(lines(j)).toEqual([10, 11]);
    expect(readFileSync(j.path, 'utf8')).toBe('{"n":10}\n{"n":11}\n');
    j.close();
  });
});
