/** Reported properties: one merge patch, and a batcher so a burst of changes costs one twin update. */
import type { Twin } from 'azure-iot-device';

/** Patch reported properties (a merge patch: null deletes). */
export function reportProperties(twin: Twin, patch: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve()));
  });
}

/** Coalesces reported-property patches so a burst of changes costs one twin update. */
export class ReportedBatcher {
  private pending: Record<string, unknown> = {};
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly twin: Twin, private readonly delayMs = 50, private readonly onError: (err: Error) => void = () => undefined) {}

  patch(p: Record<string, unknown>): void {
    // Two patches of one key within the delay combine (as two twin updates would), not replace:
    // {runtime: {…all…}} then {runtime: {devSignerTrusted}} must keep the rest of `runtime`.
    for (const [k, v] of Object.entries(p)) this.pending[k] = isObject(v) && isObject(this.pending[k]) ? { ...this.pending[k], ...v } : v;
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.delayMs);
      this.timer.unref?.();
    }
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.pending;
    this.pending = {};
    if (Object.keys(p).length === 0) return this.flushing;
    this.flushing = this.flushing.then(() => reportProperties(this.twin, p)).catch((err: Error) => this.onError(err));
    return this.flushing;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
