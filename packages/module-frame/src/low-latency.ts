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
 *  - Durability barriers (`holdWritesUntilDurable`): when a turn's writes are about to leave
 *    and a barrier has something not yet durable (the input journal: messages taken in that
 *    turn, whose PUBACKs are among those writes), they leave only once it is; writes made
 *    meanwhile wait behind them, in order. One fdatasync so covers every message of a turn.
 */
import tls from 'node:tls';

let patched = false;
let coalesce = false;

/** Something outgoing bytes may depend on: `durable()` false while an append awaits its sync. */
export interface DurabilityBarrier {
  durable(): boolean;
  /** `cb` once everything appended so far is durable (an error: the bytes leave all the same; the owner reports it). */
  sync(cb: (err: Error | null) => void): void;
}

const barriers = new Set<DurabilityBarrier>();

/**
 * TLS sockets connected from now on coalesce their writes (enableLowLatencySockets ran, and
 * EDGE_COALESCE_WRITES is not 0); without it holdWritesUntilDurable holds nothing, and a
 * caller must make each append durable before its effect can leave.
 */
export function writesCoalesced(): boolean {
  return patched && coalesce;
}

/**
 * From now on, bytes written on coalesced sockets after an append to `b` leave only once `b`
 * has made it durable. Returns a function that removes the barrier.
 */
export function holdWritesUntilDurable(b: DurabilityBarrier): () => void {
  barriers.add(b);
  return () => void barriers.delete(b);
}

function pendingBarriers(): DurabilityBarrier[] {
  let out: DurabilityBarrier[] | undefined;
  for (const b of barriers) if (!b.durable()) (out ??= []).push(b);
  return out ?? [];
}

type Held = { end: boolean; args: unknown[] };

function coalesceWrites(socket: tls.TLSSocket): void {
  const write = socket.write;
  const end = socket.end;
  let corked = false;
  /** Set while the corked writes wait for barriers: later writes queue here, in order. */
  let held: Held[] | undefined;
  const release = () => {
    const later = held!;
    held = undefined;
    corked = false;
    if (!socket.destroyed) socket.uncork();
    // Through the wrappers again: a new turn of writes, behind the next sync if it needs one.
    for (const h of later) ((h.end ? socket.end : socket.write) as (...a: unknown[]) => unknown).apply(socket, h.args);
  };
  const waitFor = (pending: DurabilityBarrier[], first?: Held) => {
    held = first ? [first] : [];
    let left = pending.length;
    for (const b of pending) b.sync(() => void (--left === 0 && release()));
  };
  const flush = () => {
    if (held) return;
    const pending = socket.destroyed ? [] : pendingBarriers();
    if (pending.length > 0) return waitFor(pending);
    corked = false;
    if (!socket.destroyed) socket.uncork();
  };
  socket.write = function (this: tls.TLSSocket, ...args: unknown[]) {
    if (held) {
      held.push({ end: false, args });
      return true;
    }
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(flush);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof socket.write;
  // end() flushes what is corked: it waits like a write.
  socket.end = function (this: tls.TLSSocket, ...args: unknown[]) {
    if (held) held.push({ end: true, args });
    else {
      const pending = corked && !socket.destroyed ? pendingBarriers() : [];
      if (pending.length === 0) return (end as (...a: unknown[]) => tls.TLSSocket).apply(this, args);
      waitFor(pending, { end: true, args });
    }
    return this;
  } as typeof socket.end;
}

export function enableLowLatencySockets(): void {
  if (patched) return;
  patched = true;
  coalesce = process.env.EDGE_COALESCE_WRITES !== '0';
  const original = tls.connect;
  const wrapped = function (this: unknown, ...args: unknown[]) {
    const socket = (original as (...a: unknown[]) => tls.TLSSocket).apply(this, args);
    socket.setNoDelay(true);
    if (coalesce) coalesceWrites(socket);
    return socket;
  };
  (tls as { connect: typeof tls.connect }).connect = wrapped as typeof tls.connect;
}
