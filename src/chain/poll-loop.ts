/**
 * A loop that runs one pass at a time, every `intervalMs`, and whose next pass can be brought
 * forward: woken between passes it runs at once, woken during one it runs again right after.
 * The batcher is woken by a new step, the chain listener by a new block; both keep their interval
 * as the safety net.
 */
export class PollLoop {
  private timer?: NodeJS.Timeout;
  private stopped = true;
  private inPass = false;
  private woken = false;
  /** The pass under way, or the last one. */
  private current: Promise<void> = Promise.resolve();

  constructor(
    /** One pass; it handles its own errors (a rejection would only be lost here). */
    private readonly pass: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  /** Starts the loop (first pass after `delayMs`); does nothing if it runs already. */
  start(delayMs = 0): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(delayMs);
  }

  /** Brings the next pass forward. */
  wake(): void {
    if (this.stopped) return;
    if (this.inPass) {
      this.woken = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  /** Resolves once the pass under way, if any, has ended. */
  settled(): Promise<void> {
    return this.current;
  }

  /** No more passes; resolves once the one under way has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.inPass = true;
      this.woken = false;
      this.current = this.pass().finally(() => {
        this.inPass = false;
        this.schedule(this.woken ? 0 : this.intervalMs);
      });
    }, delayMs);
  }
}
