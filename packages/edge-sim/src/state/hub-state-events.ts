/**
 * The built-in endpoint's events on disk: every upstream message is written here before its
 * sender's PUBACK (the same shared fdatasync as store and forward), so a message IoT Hub has
 * acknowledged is still readable after a simulator crash, with its partition, sequence number,
 * offset and enqueued time, as an Event Hub retains it. Rewritten with what retention keeps on
 * every start and when the file has grown well past what retention keeps.
 */
import { LineJournal } from '@enclave-edge/durable-files';
import type { UpstreamMessage } from '../hub/edge-hub.js';
import type { StoredEvent } from '../eventhub/event-store.js';

export const EVENTS_FILE = 'hub-state-events.journal';

interface Line {
  p: number;
  s: number;
  o: number;
  t: number;
  dev: string;
  mod: string;
  out?: string;
  sys: Record<string, string>;
  app: Record<string, string>;
  enq: string;
  body: string;
}

const toLine = (partition: number, e: StoredEvent): Line => ({
  p: partition,
  s: e.sequenceNumber,
  o: e.offset,
  t: e.enqueuedTimeMs,
  dev: e.message.deviceId,
  mod: e.message.moduleId,
  ...(e.message.output !== undefined ? { out: e.message.output } : {}),
  sys: e.message.systemProperties,
  app: e.message.properties,
  enq: e.message.enqueuedTimeUtc,
  body: e.message.body.toString('base64'),
});

const record = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

function fromLine(l: Line): { partition: number; event: StoredEvent } | undefined {
  if (![l.p, l.s, l.o, l.t].every(Number.isSafeInteger) || typeof l.dev !== 'string' || typeof l.mod !== 'string' || typeof l.body !== 'string') return undefined;
  if (!record(l.sys) || !record(l.app) || typeof l.enq !== 'string') return undefined;
  // Parsed JSON keys are own data properties; copied into null-prototype objects as the hub holds them.
  const message: UpstreamMessage = {
    deviceId: l.dev,
    moduleId: l.mod,
    ...(typeof l.out === 'string' ? { output: l.out } : {}),
    systemProperties: Object.assign(Object.create(null) as Record<string, string>, l.sys),
    properties: Object.assign(Object.create(null) as Record<string, string>, l.app),
    body: Buffer.from(l.body, 'base64'),
    enqueuedTimeUtc: l.enq,
  };
  return { partition: l.p, event: { sequenceNumber: l.s, offset: l.o, enqueuedTimeMs: l.t, message } };
}

export class EventsJournal {
  private readonly file: LineJournal<Line>;
  private readonly restored: Array<{ partition: number; event: StoredEvent }> = [];

  constructor(path: string, private readonly log: (line: string) => void = () => {}) {
    this.file = new LineJournal<Line>(path);
    const { entries, torn } = this.file.read();
    let bad = 0;
    for (const l of entries) {
      const r = fromLine(l);
      if (r) this.restored.push(r);
      else bad++;
    }
    // A line cut short by a crash: its sender never got a PUBACK, so it sends it again.
    if (torn || bad) this.log(`${EVENTS_FILE}: skipped ${torn + bad} line(s) a crash cut short or that could not be read`);
  }

  /** The events on disk from before this start, in the order they were appended. */
  takeRestored(): Array<{ partition: number; event: StoredEvent }> {
    return this.restored.splice(0);
  }

  get bytes(): number {
    return this.file.bytes;
  }

  get busy(): boolean {
    return this.file.busy;
  }

  /** Written at once; durable after the next `sync`. Throws when the write fails. */
  add(partition: number, e: StoredEvent): void {
    this.file.append(toLine(partition, e));
  }

  /** Replace the file with exactly these events (what retention still keeps). */
  rewrite(events: Iterable<{ partition: number; event: StoredEvent }>): void {
    const lines: Line[] = [];
    for (const { partition, event } of events) lines.push(toLine(partition, event));
    this.file.rewrite(lines);
  }

  sync(cb: (err: Error | null) => void): void {
    this.file.sync(cb);
  }

  close(): void {
    this.file.close();
  }
}
