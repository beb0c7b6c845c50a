/**
 * Socket tuning for the module's TLS connections to edgeHub. The SDK does not expose its
 * socket, so it is applied where TLS sockets are created. Call once at module start, before
 * connecting.
 *  - TCP_NODELAY: edgeHub traffic is small request/response messages; with Nagle on, a message
 *    written right after an MQTT PUBACK waits for the peer's delayed ACK (~40 ms per hop).
 *  - Write coalescing: MQTT packets written while one batch of input is handled (its PUBACKs,
 *    the requests or answers it causes) leave as one TLS write at the end of that event-loop
 *    turn instead of one TLS record and one syscall each. This costs no added latency beyond
 *    the current turn. EDGE_COALESCE_WRITES=0 turns it off.
 */
import tls from 'node:tls';

let patched = false;

function coalesceWrites(socket: tls.TLSSocket): void {
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    if (!socket.destroyed) socket.uncork();
  };
  socket.write = function (this: tls.TLSSocket, ...args: unknown[]) {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(flush);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof socket.write;
}

export function enableLowLatencySockets(): void {
  if (patched) return;
  patched = true;
  const coalesce = process.env.EDGE_COALESCE_WRITES !== '0';
  const original = tls.connect;
  const wrapped = function (this: unknown, ...args: unknown[]) {
    const socket = (original as (...a: unknown[]) => tls.TLSSocket).apply(this, args);
    socket.setNoDelay(true);
    if (coalesce) coalesceWrites(socket);
    return socket;
  };
  (tls as { connect: typeof tls.connect }).connect = wrapped as typeof tls.connect;
}
