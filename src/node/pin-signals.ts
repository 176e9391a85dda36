/**
 * Tells instance workflows about final steps, in chain order: first as soon as the tag is final
 * (so the workflow holds back every later step until this one's data arrives), then again once
 * the envelope is here and proven against the batch root. Runs after each listener pass and each
 * delivery. Serialised within the process; repeats are harmless, the workflow deduplicates.
 */
import type { NodeContext } from './context';
import { positionOf } from '../store/store';
import { notifyConfirmed } from './workflows';
import { dataWaiting } from '../events/hooks';
import { decideAfterEnd } from './late-steps';

export class PinSignaller {
  private running: Promise<void> = Promise.resolve();
  private allowed: () => boolean = () => true;

  constructor(private readonly ctx: NodeContext) {}

  /** Passes run only while `allowed` holds: with replicas, on the leading process alone (no double signals). */
  onlyWhile(allowed: () => boolean): void {
    this.allowed = allowed;
  }

  /** Queues a pass; resolves when it (and any pass before it) has finished. */
  flush(): Promise<void> {
    if (!this.allowed()) return this.running;
    this.running = this.running.then(() => this.pass()).catch((err: unknown) => {
      this.ctx.log.warn({ err }, 'signalling final pins failed; will retry on the next tick');
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    // Ended instances whose workflow is gone and whose earlier late step still lacks its data:
    // their later late steps wait, in chain order, as the workflow would have made them.
    const heldBack = new Set<string>();
    for (const slot of await this.ctx.store.slotsToSignal()) {
      if (heldBack.has(slot.instanceId)) continue;
      const level = slot.proven ? 'full' : 'bare';
      const alive = await notifyConfirmed(this.ctx, slot.instanceId, {
        slot: `${slot.author}/${slot.nonce}`,
        position: positionOf(slot.position!),
        ...(slot.proven ? { envelopeHash: slot.envelopeHash! } : {}),
      });
      if (!alive) {
        // No workflow: either the instance has ended, or this node has stored its invitation but not
        // yet started its workflow. Only in the first case is the signal moot; otherwise try again.
        if ((await this.ctx.store.instance(slot.instanceId))?.status !== 'ended') continue;
        if (slot.proven) await decideAfterEnd(this.ctx, slot);
        else heldBack.add(slot.instanceId);
      }
      if (alive && slot.proven) this.ctx.log.debug({ instanceId: slot.instanceId, envelopeHash: slot.envelopeHash }, 'final step signalled');
      await this.ctx.store.markSignaled(slot._id, level);
      // Final on chain, but the envelope (or its proof) is not here: the instance now waits for it,
      // and apps must be able to see that instead of a silent stall.
      if (level === 'bare') {
        await dataWaiting(this.ctx.store.events, {
          instanceId: slot.instanceId,
          ...(slot.envelopeHash ? { envelopeHash: slot.envelopeHash } : {}),
          pin: `${slot.author}/${slot.nonce}`,
          waitingFor: 'data',
        });
      }
    }
  }
}
