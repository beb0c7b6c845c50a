/**
 * Store and forward on disk: every message routed to a module input is written here before the
 * sender's PUBACK (one fdatasync shared by the messages written meanwhile), and marked done when
 * the receiving module acknowledges it. A simulator killed and started again forwards what no
 * module had acknowledged yet, in order, as edgeHub does from its store after a restart.
 * An append-only file of JSON lines, rewritten with the project's durable write on every start
 * and when it has grown large. Done marks are not synced: the page cache survives a kill -9;
 * after a power cut a message may be forwarded twice (at least once allows it).
 */
import { LineJournal } from '@enclave-edge/durable-files';

export const FORWARDING_FILE = 'hub-state-forwarding.journal';
const COMPACT_BYTES = 32 * 1024 * 1024;

export interface ForwardedMessage {
  module: string;
  input: string;
  topicBag: string;
  body: Buffer;
  /** ms since the epoch; past it the message is no longer forwarded. */
  expiresAt: number;
}

type Line =
  | { t: 'in'; k: number; module: string; input: string; bag: string; body: string; exp: number }
  | { t: 'out'; k: number };

interface Open {
  module: string;
  input: string;
  bag: string;
  body: string;
  exp: number;
}

export class ForwardingJournal {
  private readonly file: LineJournal<Line>;
  private nextKey = 1;
  private readonly open = new Map<number, Open>();

  constructor(path: string, private readonly log: (line: string) => void = () => {}) {
    this.file = new LineJournal<Line>(path);
    const { entries, torn } = this.file.read();
    const byKey = new Map<number, Open>();
    for (const l of entries) {
      if (l.t === 'in' && typeof l.k === 'number' && typeof l.body === 'string') byKey.set(l.k, { module: l.module, input: l.input, bag: l.bag, body: l.body, exp: l.exp });
      else if (l.t === 'out') byKey.delete(l.k);
    }
    for (const o of byKey.values()) this.open.set(this.nextKey++, o);
    // A line cut short by a crash: that message's sender never got its acknowledgement.
    if (torn) this.log(`${FORWARDING_FILE}: skipped ${torn} line(s) a crash cut short`);
    this.compact();
  }

  /** What no module acknowledged before the last stop, unexpired, in the order it was routed; with its keys. */
  pending(now = Date.now()): Array<{ key: number; message: ForwardedMessage }> {
    const out: Array<{ key: number; message: ForwardedMessage }> = [];
    for (const [key, o] of this.open) {
      if (o.exp <= now) {
        this.done(key);
        continue;
      }
      out.push({ key, message: { module: o.module, input: o.input, topicBag: o.bag, body: Buffer.from(o.body, 'base64'), expiresAt: o.exp } });
    }
    return out;
  }

  get size(): number {
    return this.open.size;
  }

  /** Record a routed message (written at once; durable after the next `sync`). Throws when the write fails. */
  add(m: ForwardedMessage): number {
    const key = this.nextKey++;
    const o: Open = { module: m.module, input: m.input, bag: m.topicBag, body: m.body.toString('base64'), exp: m.expiresAt };
    this.file.append({ t: 'in', k: key, ...o });
    this.open.set(key, o);
    return key;
  }

  /** The receiving module acknowledged it (or it expired): not forwarded again. */
  done(key: number): void {
    if (!this.open.delete(key)) return;
    try {
      this.file.append({ t: 'out', k: key });
    } catch {
      // Unmarked: forwarded once more after a restart (at least once).
    }
    if (this.file.bytes > COMPACT_BYTES && !this.file.busy) {
      try {
        this.compact();
      } catch (err) {
        this.log(`warning: ${FORWARDING_FILE} could not be compacted: ${(err as Error).message}`);
      }
    }
  }

  /** `cb` once everything added so far is on disk (one fdatasync shared by the callers meanwhile). */
  sync(cb: (err: Error | null) => void): void {
    this.file.sync(cb);
  }

  close(): void {
    this.file.close();
  }

  private compact(): void {
    const lines: Line[] = [];
    for (const [k, o] of this.open) lines.push({ t: 'in', k, ...o });
    this.file.rewrite(lines);
  }
}
