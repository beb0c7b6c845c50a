/** Crash-loop control: restart with exponential backoff; too many crashes in a window → failed. */
export interface RestartPolicy {
  /** Crashes tolerated within `windowMs` before the TA is marked failed (default 5). */
  maxRestarts: number;
  windowMs: number;
  /** First backoff delay, doubled per recent crash, capped at backoffMaxMs. */
  backoffMs: number;
  backoffMaxMs: number;
  /** A failed TA is retried after this, doubled per failure in a row, capped at failedRetryMaxMs. */
  failedRetryMs: number;
  failedRetryMaxMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { maxRestarts: 5, windowMs: 60_000, backoffMs: 50, backoffMaxMs: 5_000, failedRetryMs: 30_000, failedRetryMaxMs: 600_000 };

export class CrashTracker {
  private crashes: number[] = [];

  constructor(private readonly policy: RestartPolicy) {}

  /** Record a crash; returns the delay before restarting, or undefined when the TA must be marked failed. */
  record(now = Date.now()): number | undefined {
    this.crashes = this.crashes.filter((t) => now - t < this.policy.windowMs);
    this.crashes.push(now);
    if (this.crashes.length > this.policy.maxRestarts) return undefined;
    return Math.min(this.policy.backoffMaxMs, this.policy.backoffMs * 2 ** (this.crashes.length - 1));
  }

  /** How long a TA that failed for the `failures`-th time in a row waits before it is retried. */
  retryDelay(failures: number): number {
    return Math.min(this.policy.failedRetryMaxMs, this.policy.failedRetryMs * 2 ** Math.max(0, failures - 1));
  }

  clear(): void {
    this.crashes = [];
  }

  get recent(): number {
    return this.crashes.length;
  }
}
