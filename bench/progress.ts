/** A one-line progress bar on stderr, redrawn at most every 200 ms; plain lines when not a terminal. */
export class ProgressBar {
  private lastDraw = 0;
  private lastDone = 0;
  private readonly startedAt = Date.now();
  /** Redraws even while no step completes, so a stall is visible. */
  private readonly ticker: NodeJS.Timeout;

  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {
    this.ticker = setInterval(() => this.update(this.lastDone), 1000);
    this.ticker.unref();
  }

  update(done: number, force = false): void {
    this.lastDone = done;
    const now = Date.now();
    const tty = process.stderr.isTTY;
    if (!force && now - this.lastDraw < (tty ? 200 : 5000)) return;
    this.lastDraw = now;
    const width = 30;
    const filled = Math.min(width, Math.round((done / Math.max(1, this.total)) * width));
    const seconds = (now - this.startedAt) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} steps final, ${rate.toFixed(1)}/s, ${seconds.toFixed(0)} s`;
    process.stderr.write(tty ? `\r${line}\u001b[K` : `${line}\n`);
  }

  done(done: number): void {
    clearInterval(this.ticker);
    this.update(done, true);
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}
