/**
 * Disable Nagle's algorithm on the module's TLS connections. edgeHub traffic here is small
 * request/response messages; with Nagle on, a message written right after an MQTT PUBACK waits
 * for the peer's delayed TCP ACK (~40 ms per hop). The SDK does not expose its socket, so we
 * set TCP_NODELAY where TLS sockets are created. Call once at module start, before connecting.
 */
import tls from 'node:tls';

let patched = false;

export function enableLowLatencySockets(): void {
  if (patched) return;
  patched = true;
  const original = tls.connect;
  const wrapped = function (this: unknown, ...args: unknown[]) {
    const socket = (original as (...a: unknown[]) => tls.TLSSocket).apply(this, args);
    socket.setNoDelay(true);
    return socket;
  };
  (tls as { connect: typeof tls.connect }).connect = wrapped as typeof tls.connect;
}
