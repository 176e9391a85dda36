/**
 * The chain listener: follows the Sequencer's events, records where every pin was sequenced,
 * and marks pins final once they are `confirmations` blocks deep. Its checkpoint lives in the
 * party's MongoDB, so after a restart it resumes without missing an event; re-reading a block
 * is harmless (only a pin's first sequencing counts).
 */
import type { Logger } from 'pino';
import type { SequencerClient } from './sequencer';
import type { Store } from '../store/store';

export interface ListenerOptions {
  sequencer: SequencerClient;
  store: Store;
  confirmations: number;
  /** Block the Sequencer was deployed in: nothing before it can hold a pin. */
  startBlock: number;
  pollMs: number;
  log: Logger;
  /** Called after every tick that may have made pins final. */
  onProgress: () => Promise<void>;
}

export class ChainListener {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private ticking?: Promise<void>;
  /** Latest head seen, for status reporting. */
  head = 0;
  lastError?: string;

  constructor(private readonly opts: ListenerOptions) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick()
        .then(() => {
          this.lastError = undefined;
        })
        .catch((err: unknown) => {
          this.lastError = (err as Error).message;
          this.opts.log.warn({ err }, 'chain listener tick failed; retrying');
        })
        .finally(() => this.schedule(this.opts.pollMs));
    }, delay);
  }

  /** One pass: read new logs up to the head, then finalise what is deep enough. */
  async tick(): Promise<void> {
    const { sequencer, store, confirmations, startBlock } = this.opts;
    const head = await sequencer.head();
    this.head = head;
    const checkpoint = await store.checkpoint();
    const from = checkpoint ? checkpoint.scannedBlock + 1 : startBlock;
    if (from <= head) {
      const observed = await sequencer.pinsBetween(from, head);
      await store.observePins(observed);
      if (observed.length > 0) this.opts.log.debug({ from, to: head, pins: observed.length }, 'pins observed');
    }
    const finalBlock = head - confirmations + 1;
    await store.confirmPinsUpTo(finalBlock);
    await store.saveCheckpoint(Math.max(head, from - 1), finalBlock);
    await this.opts.onProgress();
  }
}
