/**
 * The `$upstream` stream as an Event Hub keeps it: partitions (a device's messages all land in
 * the one its id hashes to, as IoT Hub partitions by device), per-partition sequence numbers and
 * byte offsets, enqueued times. Held in memory and bounded per partition (the oldest events
 * expire first, as retention would expire them); with a journal, also on disk, so a restart
 * keeps what was acknowledged, its positions included.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { UpstreamMessage } from '../hub/edge-hub.js';
import type { EventsJournal } from '../state/hub-state-events.js';

export interface StoredEvent {
  sequenceNumber: number;
  /** Byte position in the partition, as a decimal string on the wire. */
  offset: number;
  enqueuedTimeMs: number;
  message: UpstreamMessage;
}

export interface EventStoreLimits {
  maxEventsPerPartition: number;
  maxBytesPerPartition: number;
}

export const DEFAULT_EVENT_LIMITS: EventStoreLimits = { maxEventsPerPartition: 10_000, maxBytesPerPartition: 64 * 1024 * 1024 };
/** Room for headers, as Event Hubs' offsets count more than the body. */
const OFFSET_HEADROOM = 512;
const COMPACT_SLACK = 4 * 1024 * 1024;
/** IoT Hub's default partition count for the built-in endpoint. */
export const DEFAULT_PARTITIONS = 4;

interface Partition {
  events: StoredEvent[];
  bytes: number;
  nextSequence: number;
  nextOffset: number;
}

export class EventStore extends EventEmitter<{ appended: [string] }> {
  private readonly partitions: Partition[];
  readonly createdAt = new Date();
  private readonly limits: EventStoreLimits;

  constructor(
    readonly partitionCount = DEFAULT_PARTITIONS,
    limits: Partial<EventStoreLimits> = {},
    private readonly journal?: EventsJournal,
    private readonly log: (line: string) => void = () => {},
  ) {
    super();
    this.limits = { ...DEFAULT_EVENT_LIMITS, ...limits };
    this.partitions = Array.from({ length: partitionCount }, () => ({ events: [], bytes: 0, nextSequence: 0, nextOffset: 0 }));
    if (journal) {
      let elsewhere = 0;
      for (const { partition, event } of journal.takeRestored()) {
        const p = this.partitions[partition];
        // Positions only grow: a line out of order (never written so) is not taken.
        if (!p || event.sequenceNumber < p.nextSequence) {
          elsewhere++;
          continue;
        }
        p.nextSequence = event.sequenceNumber + 1;
        p.nextOffset = event.offset + event.message.body.length + OFFSET_HEADROOM;
        this.keep(p, event);
      }
      if (elsewhere) this.log(`event store: ${elsewhere} stored event(s) do not fit ${partitionCount} partition(s) and were not kept`);
      this.compact();
    }
  }

  partitionIds(): string[] {
    return this.partitions.map((_, i) => String(i));
  }

  /** Device id → partition, so a message does not hash its sender again (a simulator has few devices). */
  private readonly partitionByDevice = new Map<string, string>();

  /** The partition a device's messages go to (stable across runs). */
  partitionOf(deviceId: string): string {
    let id = this.partitionByDevice.get(deviceId);
    if (id === undefined) {
      id = String(createHash('sha256').update(deviceId).digest().readUInt32BE(0) % this.partitionCount);
      if (this.partitionByDevice.size >= 1024) this.partitionByDevice.clear();
      this.partitionByDevice.set(deviceId, id);
    }
    return id;
  }

  append(message: UpstreamMessage, now = Date.now()): StoredEvent {
    const id = this.partitionOf(message.deviceId);
    const p = this.partitions[Number(id)]!;
    const ev: StoredEvent = { sequenceNumber: p.nextSequence++, offset: p.nextOffset, enqueuedTimeMs: now, message };
    p.nextOffset += message.body.length + OFFSET_HEADROOM;
    this.keep(p, ev);
    if (this.journal) {
      try {
        this.journal.add(Number(id), ev);
        if (this.journal.bytes > 4 * this.retainedBytes() + COMPACT_SLACK && !this.journal.busy) this.compact();
      } catch (err) {
        // Said, and the message still reaches readers now; only a restart would lose it.
        this.log(`warning: upstream event not written to disk: ${(err as Error).message}`);
      }
    }
    this.emit('appended', id);
    return ev;
  }

  /** `cb` once every event appended so far is on disk (nothing to wait for without a journal). */
  sync(cb: (err: Error | null) => void): void {
    if (this.journal) this.journal.sync(cb);
    else cb(null);
  }

  private keep(p: Partition, ev: StoredEvent): void {
    p.events.push(ev);
    p.bytes += ev.message.body.length;
    while (p.events.length > this.limits.maxEventsPerPartition || (p.bytes > this.limits.maxBytesPerPartition && p.events.length > 1)) p.bytes -= p.events.shift()!.message.body.length;
  }

  private retainedBytes(): number {
    return this.partitions.reduce((n, p) => n + p.bytes + p.events.length * OFFSET_HEADROOM, 0);
  }

  private compact(): void {
    try {
      this.journal?.rewrite(this.partitions.flatMap((p, partition) => p.events.map((event) => ({ partition, event }))));
    } catch (err) {
      this.log(`warning: upstream events on disk could not be rewritten: ${(err as Error).message}`);
    }
  }

  has(partitionId: string): boolean {
    return /^\d+$/.test(partitionId) && Number(partitionId) < this.partitionCount;
  }

  events(partitionId: string): readonly StoredEvent[] {
    return this.partitions[Number(partitionId)]!.events;
  }

  info(partitionId: string): { beginSequenceNumber: number; lastSequenceNumber: number; lastOffset: number; lastEnqueuedTimeMs: number; empty: boolean } {
    const p = this.partitions[Number(partitionId)]!;
    const last = p.events.at(-1);
    return {
      beginSequenceNumber: p.events[0]?.sequenceNumber ?? p.nextSequence,
      lastSequenceNumber: last?.sequenceNumber ?? p.nextSequence - 1,
      lastOffset: last?.offset ?? -1,
      lastEnqueuedTimeMs: last?.enqueuedTimeMs ?? 0,
      empty: p.events.length === 0,
    };
  }

  /** Index into events(partition) of the first event after `position` (the receiver's filter). */
  startIndex(partitionId: string, position: EventPosition): number {
    const evs = this.events(partitionId);
    if (position.kind === 'latest') return evs.length;
    const pick = (e: StoredEvent): number => (position.kind === 'offset' ? e.offset : position.kind === 'sequence' ? e.sequenceNumber : e.enqueuedTimeMs);
    const i = evs.findIndex((e) => (position.inclusive ? pick(e) >= position.value : pick(e) > position.value));
    return i < 0 ? evs.length : i;
  }
}

export type EventPosition = { kind: 'latest' } | { kind: 'offset' | 'sequence' | 'enqueued'; value: number; inclusive: boolean };

/**
 * The receiver's `apache.org:selector-filter:string` as Event Hubs clients write it:
 * `amqp.annotation.x-opt-offset > '-1'` / `> '@latest'` / `>= '1024'`,
 * `amqp.annotation.x-opt-sequence-number > '41'`, `amqp.annotation.x-opt-enqueued-time > '1700000000000'`.
 */
export function parseSelector(filter: string | undefined): EventPosition {
  if (filter === undefined) return { kind: 'latest' };
  const m = /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/.exec(filter);
  if (!m) throw new RangeError(`unsupported selector filter: ${filter.slice(0, 200)}`);
  const [, field, op, raw] = m;
  if (field === 'x-opt-offset' && raw === '@latest') return { kind: 'latest' };
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new RangeError(`selector filter value is not a number: ${raw!.slice(0, 50)}`);
  return { kind: field === 'x-opt-offset' ? 'offset' : field === 'x-opt-sequence-number' ? 'sequence' : 'enqueued', value, inclusive: op === '>=' };
}
