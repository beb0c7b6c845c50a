/**
 * The input journal on real files: what one instance took and did not finish is what the next
 * one gets back, in order, with its body and properties; a re-sent copy (same messageId) is not
 * taken twice, before or after a restart; a line cut short by a crash is skipped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Message } from 'azure-iot-device';
import { InputJournal, INPUT_JOURNAL_FILE } from '../src/input-journal.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'ee-journal-'));
  dirs.push(d);
  return d;
};
const reading = (seq: number, id?: string) => {
  const m = new Message(JSON.stringify({ seq }));
  m.properties.add('sequenceNumber', String(seq));
  m.contentType = 'application/json';
  if (id) m.messageId = id;
  return m;
};

describe('InputJournal', () => {
  it('hands the next instance what was taken and not finished, in order, with body and properties', () => {
    const dir = tempDir();
    const a = new InputJournal(dir);
    const k1 = a.take('sensor', reading(1))!;
    a.take('sensor', reading(2));
    a.take('other', reading(3));
    a.done(k1);
    // No close: the process dies here.
    const b = new InputJournal(dir);
    const back = b.recovered();
    expect(back.map((j) => [j.input, j.msg.properties.getValue('sequenceNumber'), JSON.parse(j.msg.data.toString())])).toEqual([
      ['sensor', '2', { seq: 2 }],
      ['other', '3', { seq: 3 }],
    ]);
    expect((back[0]!.msg as { contentType?: string }).contentType).toBe('application/json');
    expect(b.recovered()).toEqual([]);
    for (const j of back) b.done(j.key);
    expect(new InputJournal(dir).recovered()).toEqual([]);
  });

  it('does not take a re-sent copy again (same messageId), also after a restart', () => {
    const dir = tempDir();
    const a = new InputJournal(dir);
    const k = a.take('sensor', reading(1, 'm-1'))!;
    expect(a.take('sensor', reading(1, 'm-1'))).toBeUndefined();
    const b = new InputJournal(dir);
    expect(b.recovered().map((j) => j.msg.messageId)).toEqual(['m-1']);
    expect(b.take('sensor', reading(1, 'm-1'))).toBeUndefined();
    expect(k).toBeGreaterThan(0);
    const finished = b.take('sensor', reading(2, 'm-2'))!;
    b.done(finished);
    const c = new InputJournal(dir);
    expect(c.take('sensor', reading(2, 'm-2'))).toBeUndefined();
    expect(c.take('sensor', reading(3, 'm-3'))).toBeGreaterThan(0);
  });

  it('skips a line a crash cut short and keeps the rest', () => {
    const dir = tempDir();
    const a = new InputJournal(dir);
    a.take('sensor', reading(1));
    appendFileSync(join(dir, INPUT_JOURNAL_FILE), '{"t":"in","k":99,"input":"sensor","msg":{"da');
    const back = new InputJournal(dir).recovered();
    expect(back.map((j) => j.msg.properties.getValue('sequenceNumber'))).toEqual(['1']);
    expect(readFileSync(join(dir, INPUT_JOURNAL_FILE), 'utf8')).not.toContain('"k":99');
  });

  it('with group commits: what was taken is on disk once sync ends, for the next instance, and done marks need no sync', async () => {
    const dir = tempDir();
    const a = new InputJournal(dir);
    const barrier = a.groupCommits();
    expect(barrier.durable()).toBe(true);
    const k1 = a.take('sensor', reading(1, 'g-1'))!;
    a.take('sensor', reading(2, 'g-2'));
    expect(barrier.durable()).toBe(false);
    expect(a.take('sensor', reading(1, 'g-1'))).toBeUndefined(); // a re-sent copy, before the sync too
    await new Promise<void>((resolve, reject) => barrier.sync((err) => (err ? reject(err) : resolve())));
    expect(barrier.durable()).toBe(true);
    a.done(k1);
    expect(barrier.durable()).toBe(true);
    const back = new InputJournal(dir).recovered();
    expect(back.map((j) => j.msg.messageId)).toEqual(['g-2']);
  });

  it('with group commits: a message taken while a sync runs waits for the next one, and compaction may run meanwhile', async () => {
    const dir = tempDir();
    const a = new InputJournal(dir);
    const barrier = a.groupCommits();
    const keys = [a.take('sensor', reading(1))!];
    const first = new Promise<void>((resolve, reject) => barrier.sync((err) => (err ? reject(err) : resolve())));
    keys.push(a.take('sensor', reading(2))!);
    // Enough done marks to pass the compaction bound while the first sync may still run.
    const big = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 80; i++) a.done(a.take('bulk', new Message(big))!);
    await first;
    expect(barrier.durable()).toBe(false);
    await new Promise<void>((resolve, reject) => barrier.sync((err) => (err ? reject(err) : resolve())));
    expect(barrier.durable()).toBe(true);
    expect(readFileSync(join(dir, INPUT_JOURNAL_FILE)).byteLength).toBeLessThan(4 * 1024 * 1024);
    const back = new InputJournal(dir).recovered();
    expect(back.map((j) => j.msg.properties.getValue('sequenceNumber'))).toEqual(['1', '2']);
    expect(keys.every((k) => k > 0)).toBe(true);
  });

  it('with group commits: overlapping syncs each cover what was taken before they were asked', async () => {
    const a = new InputJournal(tempDir());
    const barrier = a.groupCommits();
    const synced = () => new Promise<void>((resolve, reject) => barrier.sync((err) => (err ? reject(err) : resolve())));
    a.take('sensor', reading(1));
    const first = synced();
    a.take('sensor', reading(2));
    const second = synced();
    await first;
    expect(barrier.durable()).toBe(false); // the second message waits for the second sync
    await second;
    expect(barrier.durable()).toBe(true);
    a.take('sensor', reading(3));
    expect(barrier.durable()).toBe(false);
    await synced();
    expect(barrier.durable()).toBe(true);
  });
});
