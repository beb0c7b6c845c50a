/** A repeating timer whose period can change (the metrics interval from desired properties). */
export class IntervalTimer {
  private timer: NodeJS.Timeout | undefined;
  private every = 0;

  constructor(private readonly tick: () => void) {}

  get seconds(): number {
    return this.every;
  }

  /** Run every `sec` seconds from now; unchanged periods keep the running timer. */
  set(sec: number): void {
    if (this.timer && sec === this.every) return;
    this.stop();
    this.every = sec;
    this.timer = setInterval(this.tick, sec * 1000);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
