/**
 * Per-instance log budget: a token bucket of lines and of bytes. One TA logging 8 KiB lines in a
 * loop must not grow the runtime by gigabytes or drown other TAs' lines. Lines over the budget
 * are dropped; when a drop episode has been quiet for a second (or has lasted a minute), one
 * summary line says how many were dropped. The worker applies WORKER_LOG_LIMITS before posting;
 * the host applies twice that again, not trusting the worker.
 */
export interface LogLimits {
  linesPerSecond: number;
  bytesPerSecond: number;
  burstLines: number;
  burstBytes: number;
}

export const WORKER_LOG_LIMITS: LogLimits = { linesPerSecond: 100, bytesPerSecond: 128 * 1024, burstLines: 500, burstBytes: 1024 * 1024 };
export const HOST_LOG_LIMITS: LogLimits = { linesPerSecond: 200, bytesPerSecond: 256 * 1024, burstLines: 1000, burstBytes: 2 * 1024 * 1024 };

/** The levels a log line may have; anything else from a worker is a protocol violation. */
export const LOG_LEVELS: ReadonlySet<string> = new Set(['debug', 'info', 'warn', 'error']);

/** Longest message a worker sends (the context truncates to this) and largest fields. */
export const LOG_MAX_MESSAGE = 8192;
export const LOG_MAX_FIELDS_BYTES = 64 * 1024;

export class LogGate {
  private lines: number;
  private bytes: number;
  private last: number;
  private dropped = 0;
  private droppedBytes = 0;
  private droppedSinceTick = false;
  private episodeStart = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Lines dropped over the gate's life (diagnostics and tests). */
  totalDropped = 0;

  constructor(
    private readonly limits: LogLimits,
    private readonly summary: (lines: number, bytes: number, limits: LogLimits) => void,
    private readonly quietMs = 1000,
    private readonly maxEpisodeMs = 60_000,
  ) {
    this.lines = limits.burstLines;
    this.bytes = limits.burstBytes;
    this.last = performance.now();
  }

  /** True: post/emit the line. False: it was dropped (and counted for the summary). */
  pass(bytes: number): boolean {
    const now = performance.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    const l = this.limits;
    this.lines = Math.min(l.burstLines, this.lines + dt * l.linesPerSecond);
    this.bytes = Math.min(l.burstBytes, this.bytes + dt * l.bytesPerSecond);
    if (this.lines >= 1 && this.bytes >= bytes) {
      this.lines -= 1;
      this.bytes -= bytes;
      return true;
    }
    this.dropped++;
    this.droppedBytes += bytes;
    this.totalDropped++;
    this.droppedSinceTick = true;
    if (!this.timer) {
      this.episodeStart = now;
      this.timer = setInterval(() => this.tick(), this.quietMs);
      this.timer.unref?.();
    }
    return false;
  }

  private tick(): void {
    if (this.droppedSinceTick && performance.now() - this.episodeStart < this.maxEpisodeMs) {
      this.droppedSinceTick = false;
      return;
    }
    this.flush();
  }

  /** Emit the summary of the current episode now (if anything was dropped) and end it. */
  flush(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.droppedSinceTick = false;
    if (this.dropped === 0) return;
    const n = this.dropped;
    const b = this.droppedBytes;
    this.dropped = 0;
    this.droppedBytes = 0;
    this.summary(n, b, this.limits);
  }
}

export function droppedSummary(lines: number, bytes: number, l: LogLimits): string {
  return `${lines} log lines (${bytes} bytes) from this TA were dropped: over the log limit of ${l.linesPerSecond} lines and ${Math.round(l.bytesPerSecond / 1024)} KiB per second (bursts of ${l.burstLines} lines, ${Math.round(l.burstBytes / 1024)} KiB)`;
}
