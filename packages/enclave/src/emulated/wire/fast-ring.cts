/**
 * The fast path's shared-memory ring (switchless-style calls). Layout of the SharedArrayBuffer:
 *
 *   Int32 [0]            SUBMIT: bumped by the host after it publishes requests (worker waits on it)
 *   Int32 [1]            DONE:   bumped by the worker after it publishes responses (host waits on it)
 *   Int32 [2], [3]       slot count, slot size
 *   Int32 [4], [5]       HOST_WAITING, WORKER_WAITING: a side sets its flag before parking, so the
 *                        other pays for Atomics.notify only when someone is actually asleep
 *   Int32 [16 .. 16+N)   slot states: FREE → REQ (host) → TAKEN (worker) → RESP (worker) → FREE (host)
 *   bytes [DATA ..)      N slots of SLOT_BYTES: u32 length, then the payload
 *
 * A request payload is u16 command length, the UTF-8 command, then UTF-8 JSON params. A response
 * payload is u8 status (0 ok, 1 error), then UTF-8 JSON (the value, or {code,message,stack}).
 * Each slot has one writer at a time, handed over by its state word (Atomics.store / load give
 * the ordering). Anything that does not fit (large, or binary) goes by postMessage instead.
 */
export const SUBMIT = 0;
export const DONE = 1;
/** 1 while the host is parked on DONE (the worker notifies only then). */
export const HOST_WAITING = 4;
/** 1 while the worker is parked on SUBMIT (the host notifies only then). */
export const WORKER_WAITING = 5;
export const STATE_BASE = 16;

export const FREE = 0;
export const REQ = 1;
export const TAKEN = 2;
export const RESP = 3;
/** The worker sent the result by postMessage ("fastDone"); the slot is freed on that message. */
export const RESP_MSG = 4;

export interface RingLayout {
  slots: number;
  slotBytes: number;
}

export const DEFAULT_RING: RingLayout = { slots: 64, slotBytes: 4096 };

export function ringBytes(l: RingLayout): number {
  return dataOffset(l) + l.slots * l.slotBytes;
}

export function dataOffset(l: RingLayout): number {
  return (STATE_BASE + l.slots) * 4;
}

export function layoutOf(sab: SharedArrayBuffer): RingLayout {
  const header = new Int32Array(sab, 0, STATE_BASE);
  return { slots: header[2]!, slotBytes: header[3]! };
}

export function createRing(l: RingLayout = DEFAULT_RING): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(ringBytes(l));
  const header = new Int32Array(sab, 0, STATE_BASE);
  header[2] = l.slots;
  header[3] = l.slotBytes;
  return sab;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One side's view of a ring. */
export class RingView {
  readonly i32: Int32Array;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly layout: RingLayout;
  private readonly data: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.layout = layoutOf(sab);
    this.i32 = new Int32Array(sab);
    this.bytes = new Uint8Array(sab);
    this.view = new DataView(sab);
    this.data = dataOffset(this.layout);
  }

  state(slot: number): number {
    return Atomics.load(this.i32, STATE_BASE + slot);
  }

  setState(slot: number, s: number): void {
    Atomics.store(this.i32, STATE_BASE + slot, s);
  }

  private base(slot: number): number {
    return this.data + slot * this.layout.slotBytes;
  }

  /** Write a request; false when it does not fit. */
  writeRequest(slot: number, command: string, json: string): boolean {
    const b = this.base(slot);
    const cap = this.layout.slotBytes - 6;
    if (command.length * 3 + json.length * 3 > cap && command.length + json.length > cap) return false;
    const c = encoder.encodeInto(command, this.bytes.subarray(b + 6, b + this.layout.slotBytes));
    if (c.read !== command.length || c.written > 0xffff) return false;
    const start = b + 6 + c.written;
    const j = encoder.encodeInto(json, this.bytes.subarray(start, b + this.layout.slotBytes));
    if (j.read !== json.length) return false;
    this.view.setUint32(b, 2 + c.written + j.written, true);
    this.view.setUint16(b + 4, c.written, true);
    return true;
  }

  readRequest(slot: number): { command: string; json: string } {
    const b = this.base(slot);
    const len = this.view.getUint32(b, true);
    const clen = this.view.getUint16(b + 4, true);
    // decode from a copy: TextDecoder refuses views of shared memory
    const raw = this.bytes.slice(b + 6, b + 4 + len);
    return { command: decoder.decode(raw.subarray(0, clen)), json: decoder.decode(raw.subarray(clen)) };
  }

  /** Write a response; false when it does not fit. */
  writeResponse(slot: number, ok: boolean, json: string): boolean {
    const b = this.base(slot);
    const cap = this.layout.slotBytes - 5;
    if (json.length > cap) return false;
    const r = encoder.encodeInto(json, this.bytes.subarray(b + 5, b + this.layout.slotBytes));
    if (r.read !== json.length) return false;
    this.view.setUint32(b, 1 + r.written, true);
    this.bytes[b + 4] = ok ? 0 : 1;
    return true;
  }

  /**
   * Read a response; undefined when the slot's length or status could not have been written by
   * writeResponse (the host does not trust the worker's side of shared memory).
   */
  readResponse(slot: number): { ok: boolean; json: string } | undefined {
    const b = this.base(slot);
    const len = this.view.getUint32(b, true);
    const status = this.bytes[b + 4];
    if (len < 1 || len > this.layout.slotBytes - 4 || (status !== 0 && status !== 1)) return undefined;
    return { ok: status === 0, json: decoder.decode(this.bytes.slice(b + 5, b + 4 + len)) };
  }

  /**
   * Publish: bump the counter, then wake the other side only if it is parked. Safe without a lost
   * wake-up because the sleeper sets its flag before it waits on the counter's old value, and
   * the counter changes before the flag is read (all sequentially consistent).
   */
  bump(counter: number, sleeperFlag: number): void {
    Atomics.add(this.i32, counter, 1);
    // Clearing the flag as we wake the sleeper: until it parks again, further bumps skip notify.
    if (Atomics.compareExchange(this.i32, sleeperFlag, 1, 0) === 1) Atomics.notify(this.i32, counter);
  }

  /** Park on `counter` while it still equals `seen`; resolves when it changes. */
  park(counter: number, seen: number, myFlag: number, wake: () => void): void {
    Atomics.store(this.i32, myFlag, 1);
    const w = Atomics.waitAsync(this.i32, counter, seen);
    const done = () => {
      Atomics.store(this.i32, myFlag, 0); // (a waker may have cleared it already)
      wake();
    };
    if (w.async) void w.value.then(done);
    else queueMicrotask(done);
  }
}
