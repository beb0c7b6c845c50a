/**
 * The runtime's end of the direct channels (../wire/frame-channel.cts): one listening socket in
 * the abstract namespace (no file, reachable across the per-TA uids), where each enclave worker
 * of a TA process connects and proves, on its first frame, which worker it is with a one-time
 * random token it got at spawn. Anything else is closed.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { FRAME_MAX_BYTES, FrameChannel, type ChannelAddress } from '../wire/frame-channel.cjs';

const HELLO_MAX_BYTES = 1024;
const HELLO_TIMEOUT_MS = 10_000;

interface Expected {
  token: Buffer;
  attach(ch: FrameChannel): void;
}

const expected = new Map<number, Expected>();
let server: Server | undefined;
let address = '';

/** Abstract unix sockets are Linux's; elsewhere messages go through the TA process's main thread. */
export function directChannels(): boolean {
  return process.platform === 'linux';
}

/** Where worker `wid` connects, and its token; `attach` gets the channel once it has proved itself. */
export function expectChannel(wid: number, attach: (ch: FrameChannel) => void): ChannelAddress {
  listen();
  const token = randomBytes(32);
  expected.set(wid, { token, attach });
  return { path: address, wid, token: token.toString('base64url') };
}

/** The worker ended (or was never reached): its token is no good any more. */
export function forgetChannel(wid: number): void {
  expected.delete(wid);
}

function listen(): void {
  if (server) return;
  address = `\0enclave-edge-${process.pid}-${randomBytes(12).toString('hex')}`;
  server = createServer(onConnection);
  server.on('error', () => undefined);
  server.listen(address);
  server.unref();
}

function onConnection(socket: Socket): void {
  socket.unref();
  const ch = new FrameChannel(socket, HELLO_MAX_BYTES);
  const timer = setTimeout(() => ch.close(), HELLO_TIMEOUT_MS).unref();
  ch.on('error', () => undefined);
  ch.once('message', (m: unknown) => {
    clearTimeout(timer);
    const h = m as { t?: unknown; wid?: unknown; token?: unknown } | null;
    const e = h && h.t === 'hello' && Number.isSafeInteger(h.wid) && typeof h.token === 'string' ? expected.get(h.wid as number) : undefined;
    const token = e && Buffer.from(h!.token as string, 'base64url');
    if (!e || !token || token.length !== e.token.length || !timingSafeEqual(token, e.token)) return ch.close();
    expected.delete(h!.wid as number);
    ch.maxFrame = FRAME_MAX_BYTES;
    e.attach(ch);
  });
}
