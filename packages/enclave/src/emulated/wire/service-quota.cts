/**
 * Service calls (seal, storage, attest, host) one worker may have in flight. Each request is
 * copied into the host's message queue, outside the TA's heap limit: without a bound, a TA
 * issuing thousands of un-awaited 1 MiB storage writes grows the whole runtime by gigabytes.
 * The worker refuses calls over the bound (the TA gets BUSY); the host keeps its own count and
 * terminates a worker that goes over it anyway (only a worker escaped from SES can).
 */
export const SVC_MAX_IN_FLIGHT = 32;
/** Bytes of arguments in flight; one call alone may be larger (its bytes are the TA's own allocation). */
export const SVC_MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024;

/**
 * Approximate memory of a value as it crosses postMessage: binary length, two bytes per string
 * code unit, 8 per other item. Iterative, so a hostile deep value cannot overflow the stack;
 * both sides compute the same number for the same value.
 */
export function wireBytes(v: unknown): number {
  let n = 0;
  const stack: unknown[] = [v];
  while (stack.length) {
    const x = stack.pop();
    if (typeof x === 'string') n += 2 * x.length + 8;
    else if (x instanceof Uint8Array) n += x.byteLength + 8;
    else if (Array.isArray(x)) {
      n += 8;
      for (let i = 0; i < x.length; i++) stack.push(x[i]);
    } else if (x && typeof x === 'object') {
      n += 8;
      for (const k of Object.keys(x)) {
        n += 2 * k.length + 8;
        stack.push((x as Record<string, unknown>)[k]);
      }
    } else n += 8;
  }
  return n;
}

/** Count and bytes of service calls in flight. */
export class SvcBudget {
  inFlight = 0;
  bytes = 0;
  /** Highest count seen (diagnostics and tests). */
  peak = 0;

  admits(bytes: number): boolean {
    if (this.inFlight >= SVC_MAX_IN_FLIGHT) return false;
    return this.inFlight === 0 || this.bytes + bytes <= SVC_MAX_BYTES_IN_FLIGHT;
  }

  take(bytes: number): void {
    this.inFlight++;
    this.bytes += bytes;
    if (this.inFlight > this.peak) this.peak = this.inFlight;
  }

  release(bytes: number): void {
    this.inFlight--;
    this.bytes -= bytes;
  }
}
