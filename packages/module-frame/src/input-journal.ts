/**
 * The input journal: input messages a module has taken but not finished, on disk.
 *
 * The MQTT transport acknowledges an input message as it arrives (azure-iot-device's
 * complete() is a no-op), so from that moment edgeHub has forgotten it and a kill -9 of the
 * module would lose it. The frame therefore records each journaled message here inside the
 * SDK's `inputMessage` event — which it emits in the same call that later writes the PUBACK —
 * durable before that PUBACK leaves: with fdatasync in `take`, or, once `groupCommits()` is
 * called, in `sync`, which the frame's sockets await before letting the turn's writes out (one
 * write and fdatasync for all messages of the turn). It marks it done once the module has
 * finished with it (output sent, or reported dropped). On the next start, every message without
 * its done mark is handed to the module again, before anything new.
 *
 * At least once, without running a message twice where that can be told: a message that
 * carries a messageId and is already in the journal (edgeHub re-sends what was not yet
 * acknowledged when the module died) is not taken again. A message without a messageId cannot
 * be told apart from a new one; it is run again only if the module died in the instant between
 * this record and the PUBACK.
 *
 * Done marks are written without fsync: the page cache survives a kill -9; only a power cut
 * can lose one, and then a finished message runs again (at least once allows it).
 */
import { join } from 'node:path';
import device, { type Message } from 'azure-iot-device';
import { LineJournal } from '@enclave-edge/durable-files';
import type { DurabilityBarrier } from './low-latency.js';

export const INPUT_JOURNAL_FILE = 'inputs.journal';
/** Message ids remembered for duplicate detection (finished ones; unfinished ones always). */
const REMEMBER_IDS = 10_000;
/** Rewritten (compacted) once it grows past this and on every start. */
const COMPACT_BYTES = 4 * 1024 * 1024;

interface StoredMessage {
  data: string;
  messageId?: string;
  correlationId?: string;
  expiryTimeUtc?: string | number;
  contentType?: string;
  contentEncoding?: string;
  properties: Array<[string, string]>;
}

type Entry = { t: 'in'; k: number; input: string; msg: StoredMessage } | { t: 'done'; k: number } | { t: 'seen'; id: string };

export interface JournaledMessage {
  key: number;
  input: string;
  msg: Message;
}

function store(msg: Message): StoredMessage {
  const data = msg.data === undefined || msg.data === null ? Buffer.alloc(0) : Buffer.isBuffer(msg.data) ? msg.data : Buffer.from(msg.data as string);
  const properties: Array<[string, string]> = [];
  for (let i = 0; i < msg.properties.count(); i++) {
    const p = msg.properties.getItem(i);
    properties.push([p.key, p.value]);
  }
  const s: StoredMessage = { data: data.toString('base64'), properties };
  if (msg.messageId) s.messageId = String(msg.messageId);
  if (msg.correlationId) s.correlationId = String(msg.correlationId);
  if (msg.expiryTimeUtc !== undefined && msg.expiryTimeUtc !== null) s.expiryTimeUtc = msg.expiryTimeUtc instanceof Date ? msg.expiryTimeUtc.toISOString() : (msg.expiryTimeUtc as string | number);
  if (msg.contentType) s.contentType = String(msg.contentType);
  if (msg.contentEncoding) s.contentEncoding = String(msg.contentEncoding);
  return s;
}

function restore(s: StoredMessage): Message {
  const m = new device.Message(Buffer.from(s.data, 'base64'));
  for (const [k, v] of s.properties) m.properties.add(k, v);
  if (s.messageId !== undefined) m.messageId = s.messageId;
  if (s.correlationId !== undefined) m.correlationId = s.correlationId;
  if (s.expiryTimeUtc !== undefined) m.expiryTimeUtc = s.expiryTimeUtc;
  if (s.contentType !== undefined) (m as { contentType?: string }).contentType = s.contentType;
  if (s.contentEncoding !== undefined) (m as { contentEncoding?: string }).contentEncoding = s.contentEncoding;
  return m;
}

export class InputJournal {
  private readonly file: LineJournal<Entry>;
  private nextKey = 1;
  /** Unfinished messages by key, in the order taken. */
  private readonly open = new Map<number, { input: string; msg: StoredMessage }>();
  /** Message ids of finished messages, oldest first (a Map keeps insertion order). */
  private readonly finishedIds = new Map<string, true>();
  private readonly openIds = new Map<string, number>();
  /** take() leaves the write and fdatasync to `sync` (groupCommits). */
  private grouped = false;
  /** Messages taken so far, and how many of the first of them a finished sync covers (done marks need none). */
  private taken = 0;
  private durableUpTo = 0;
  /** What the previous instance left unfinished, in order; taken once by `recovered()`. */
  private leftOver: JournaledMessage[] = [];

  constructor(dir: string) {
    this.file = new LineJournal<Entry>(join(dir, INPUT_JOURNAL_FILE));
    this.load(this.file.read().entries);
    this.compact();
    for (const [key, e] of this.open) this.leftOver.push({ key, input: e.input, msg: restore(e.msg) });
  }

  /** Messages taken by an earlier instance and never finished, oldest first. */
  recovered(): JournaledMessage[] {
    const r = this.leftOver;
    this.leftOver = [];
    return r;
  }

  get unfinished(): number {
    return this.open.size;
  }

  /**
   * From now on `take` only queues its line, and `sync` writes and fdatasyncs all taken so far.
   * For a caller that lets no acknowledgement out before that sync ends (the frame, through
   * holdWritesUntilDurable); returns what that caller awaits.
   */
  groupCommits(): DurabilityBarrier {
    this.grouped = true;
    return {
      durable: () => this.durableUpTo >= this.taken,
      sync: (cb) => {
        const upTo = this.taken;
        this.file.sync((err) => {
          // On a fault too: the caller lets its bytes out and reports it; the next take tries again.
          if (upTo > this.durableUpTo) this.durableUpTo = upTo;
          cb(err);
        });
      },
    };
  }

  /**
   * Record a message before its acknowledgement leaves; returns its key, or undefined when its
   * messageId is already in the journal (a re-sent copy: not to be run again). Throws when the
   * write fails (disk full, read-only): the caller decides. With groupCommits the write and its
   * fault come with the next `sync`.
   */
  take(input: string, msg: Message): number | undefined {
    const id = msg.messageId ? String(msg.messageId) : undefined;
    if (id !== undefined && (this.openIds.has(id) || this.finishedIds.has(id))) return undefined;
    const key = this.nextKey++;
    const stored = store(msg);
    const entry: Entry = { t: 'in', k: key, input, msg: stored };
    if (this.grouped) {
      this.file.appendDeferred(entry);
      this.taken++;
    } else this.file.appendSync(entry);
    this.open.set(key, { input, msg: stored });
    if (id !== undefined) this.openIds.set(id, key);
    return key;
  }

  /** The module is finished with the message (its output sent, or reported dropped). */
  done(key: number): void {
    const e = this.open.get(key);
    if (!e) return;
    this.open.delete(key);
    const id = e.msg.messageId;
    if (id !== undefined) {
      this.openIds.delete(id);
      this.remember(id);
    }
    try {
      this.file.append({ t: 'done', k: key });
      if (this.file.bytes > COMPACT_BYTES) this.compact();
    } catch {
      // Not marked (or not compacted): after a crash it runs again (at least once); the next take reports the fault.
    }
  }

  close(): void {
    this.file.close();
  }

  private remember(id: string): void {
    this.finishedIds.set(id, true);
    if (this.finishedIds.size > REMEMBER_IDS) this.finishedIds.delete(this.finishedIds.keys().next().value as string);
  }

  private load(entries: Entry[]): void {
    const byKey = new Map<number, { input: string; msg: StoredMessage }>();
    for (const e of entries) {
      if (e.t === 'in' && typeof e.k === 'number' && typeof e.input === 'string' && e.msg && typeof e.msg.data === 'string') byKey.set(e.k, { input: e.input, msg: e.msg });
      else if (e.t === 'done' && typeof e.k === 'number') {
        const m = byKey.get(e.k);
        byKey.delete(e.k);
        if (m?.msg.messageId !== undefined) this.remember(m.msg.messageId);
      } else if (e.t === 'seen' && typeof e.id === 'string') this.remember(e.id);
    }
    for (const e of byKey.values()) {
      const key = this.nextKey++;
      this.open.set(key, e);
      if (e.msg.messageId !== undefined) this.openIds.set(e.msg.messageId, key);
    }
  }

  /** Keep only what is still needed: open messages and remembered ids. */
  private compact(): void {
    const entries: Entry[] = [];
    for (const id of this.finishedIds.keys()) entries.push({ t: 'seen', id });
    for (const [k, e] of this.open) entries.push({ t: 'in', k, input: e.input, msg: e.msg });
    this.file.rewrite(entries);
  }
}
