/**
 * Tells instance workflows about final pins whose envelopes this node holds, in chain order.
 * Runs after each listener tick and after each envelope arrives (data and pin may come in either
 * order). Serialised within the process; repeats are harmless because the workflow deduplicates.
 */
import type { NodeContext } from './context';
import { positionOf } from '../store/store';
import { notifyConfirmed } from './workflows';

export class PinSignaller {
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: NodeContext) {}

  /** Queues a pass; resolves when it (and any pass before it) has finished. */
  flush(): Promise<void> {
    this.running = this.running.then(() => this.pass()).catch((err: unknown) => {
      this.ctx.log.warn({ err }, 'signalling final pins failed; will retry on the next tick');
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    for (const pin of await this.ctx.store.pinsToSignal()) {
      const position = positionOf(pin.position!);
      const alive = await notifyConfirmed(this.ctx, pin.instanceId!, { envelopeHash: pin.envelopeHash!, position });
      if (!alive) this.ctx.log.warn({ instanceId: pin.instanceId, envelopeHash: pin.envelopeHash }, 'final pin for an instance that has ended');
      await this.ctx.store.markSignaled(pin._id);
    }
  }
}
