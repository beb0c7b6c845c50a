/**
 * A message channel over a stream socket: each message is a 4-byte big-endian length and the
 * V8 serialisation of the value (what Node's own `serialization: 'advanced'` IPC channel sends).
 * It lets an enclave worker inside a TA's process talk to the runtime directly, without a relay
 * through that process's main thread. Internal.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { deserialize, serialize } from 'node:v8';

/** Bigger frames than this end the channel (a peer announcing more is broken or hostile). */
export const FRAME_MAX_BYTES = 64 * 1024 * 1024;
/** Under this a frame is sent as one buffer (one write); larger ones are not copied. */
const SMALL_FRAME = 64 * 1024;

/** Where a worker connects, and what it proves on its first frame. */
export interface ChannelAddress {
  path: string;
  wid: number;
  token: string;
}

export class FrameChannel extends EventEmitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1;
  private failed = false;

  constructor(
    readonly socket: Socket,
    /** Frames above this end the channel (the runtime keeps it small until the peer has proved who it is). */
    public maxFrame = FRAME_MAX_BYTES,
  ) {
    super();
    socket.setNoDelay?.(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.emit('close'));
  }

  postMessage(m: unknown): void {
    if (this.socket.destroyed) return;
    const body = serialize(m);
    if (body.length > this.maxFrame) throw new RangeError(`a message of ${body.length} bytes is over the channel's ${this.maxFrame}`);
    if (body.length < SMALL_FRAME) {
      const frame = Buffer.allocUnsafe(4 + body.length);
      frame.writeUInt32BE(body.length, 0);
      body.copy(frame, 4);
      this.socket.write(frame);
      return;
    }
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(body.length, 0);
    this.socket.cork();
    this.socket.write(head);
    this.socket.write(body);
    this.socket.uncork();
  }

  /** Resolves once everything posted so far has reached the kernel (the socket connected and written). */
  flushed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(Buffer.alloc(0), () => resolve());
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.emit('error', e);
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    while (!this.failed) {
      if (this.need < 0) {
        if (this.buffered < 4) return;
        this.need = this.take(4).readUInt32BE(0);
        if (this.need > this.maxFrame) return this.fail(new RangeError(`the peer announced a frame of ${this.need} bytes, over the channel's ${this.maxFrame}`));
      }
      if (this.buffered < this.need) return;
      const body = this.take(this.need);
      this.need = -1;
      let m: unknown;
      try {
        m = deserialize(body);
      } catch (err) {
        return this.fail(new Error(`a frame that does not deserialise (${(err as Error).message})`));
      }
      this.emit('message', m);
    }
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}
