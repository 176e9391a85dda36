/**
 * Tells instance workflows about final steps, in chain order: first as soon as the tag is final
 * (so the workflow holds back every later step until this one's data arrives), then again once
 * the envelope is here and proven against the batch root. Runs after each listener pass and each
 * delivery. Serialised within the process; repeats are harmless, the workflow deduplicates.
 *
 * Chain order matters within an instance (one workflow); different instances are told side by
 * side, a few at a time; a pass writes down what it told once it has told it.
 *
 * A pin final before its data is the rule for peers, not a stall (the chain is usually quicker
 * than the author's delivery), so the `data.waiting` event, three writes, is recorded only when
 * the data is still missing DATA_WAIT_GRACE_MS after the bare signal.
 *
 * A pass looks for slots to signal only when something may have changed since the last complete
 * look (see `flush`): the look reads every final slot not yet decided, and the listener asks for
 * a pass after every poll, most of which find the same head.
 */
import type { NodeContext } from './context';
import type { SlotDoc } from '../store/documents';
import { positionOf } from '../store/store';
import { notifyConfirmed } from './workflows';
import { dataWaiting } from '../events/hooks';
import { decideAfterEnd } from './late-steps';

type Level = 'bare' | 'full';

/** How long a final pin may wait for its data before apps are told (`data.waiting`). */
export const DATA_WAIT_GRACE_MS = 2_000;

/** How many instances are signalled side by side. */
const SIGNAL_CONCURRENCY = 4;

export class PinSignaller {
  private running: Promise<void> = Promise.resolve();
  /** A pass asked for and not started yet: later requests share it (it will see their writes). */
  private queued?: Promise<void>;
  /** Slots told bare and not yet reported as waiting, with when they were told (0: at once). */
  private waitingSince?: Map<string, number>;
  private allowed: () => boolean = () => true;
  /** Something may have changed since the last complete look for slots to signal. */
  private stale = true;

  constructor(private readonly ctx: NodeContext) {}

  /** Passes run only while `allowed` holds: with replicas, on the leading process alone (no double signals). */
  onlyWhile(allowed: () => boolean): void {
    this.allowed = allowed;
  }

  /**
   * Queues a pass; resolves when it (and any pass before it) has finished. `changed` false: the
   * caller knows of nothing new (a poll that found the same head); the pass then only reports
   * waits. Every change to a slot that can make it tellable must come with a changed flush: a new
   * position or finality (listener), an envelope (data exchange), a receipt (pin activity).
   */
  flush(changed = true): Promise<void> {
    if (changed) this.stale = true;
    if (!this.allowed()) return this.running;
    if (this.queued) return this.queued;
    const next = this.running
      .then(() => {
        this.queued = undefined;
        return this.pass();
      })
      .catch((err: unknown) => {
        this.ctx.log.warn({ err }, 'signalling final pins failed; will retry on the next tick');
      });
    this.queued = next;
    this.running = next;
    return next;
  }

  private async pass(): Promise<void> {
    // After a start, slots told bare by an earlier process and still without data: report them.
    this.waitingSince ??= new Map((await this.ctx.store.slotsToldBare()).map((s) => [s._id, 0]));
    // The look reads every final slot not yet decided: only when something may have changed.
    if (this.stale) {
      this.stale = false;
      try {
        await this.signal();
      } catch (error) {
        this.stale = true;
        throw error;
      }
    }
    await this.reportWaiting();
  }

  private async signal(): Promise<void> {
    const byInstance = new Map<string, SlotDoc[]>();
    for (const slot of await this.ctx.store.slotsToSignal()) {
      const list = byInstance.get(slot.instanceId) ?? [];
      list.push(slot);
      byInstance.set(slot.instanceId, list);
    }
    if (byInstance.size === 0) return;
    const told: { slot: SlotDoc; level: Level }[] = [];
    // A few instances at a time: every signal wakes a workflow whose decision then reads and writes
    // the store, and an unbounded burst of them only queues up there.
    const queue = [...byInstance.values()];
    const outcomes: PromiseSettledResult<void>[] = [];
    const worker = async (): Promise<void> => {
      for (let slots = queue.shift(); slots; slots = queue.shift()) {
        const [outcome] = await Promise.allSettled([
          (async () => {
            // In chain order; a failure stops this instance's signals here, so none overtakes it.
            for (const slot of slots) {
              const level = await this.tell(slot);
              if (level) told.push({ slot, level });
              // Not told yet (a workflow not started, earlier data missing): look again next pass.
              else this.stale = true;
            }
          })(),
        ]);
        outcomes.push(outcome);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SIGNAL_CONCURRENCY, queue.length) }, worker));
    await this.ctx.store.markSignaled(told.map(({ slot, level }) => ({ id: slot._id, level })));
    const now = Date.now();
    for (const { slot, level } of told) {
      if (level === 'bare') this.waitingSince!.set(slot._id, now);
      else this.waitingSince!.delete(slot._id);
    }
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Final on chain, but the envelope (or its proof) is still not here after the grace: the
   * instance waits for it, and apps must be able to see that instead of a silent stall.
   */
  private async reportWaiting(): Promise<void> {
    const due = Date.now() - DATA_WAIT_GRACE_MS;
    for (const [id, since] of [...this.waitingSince!]) {
      if (since > due) continue;
      this.waitingSince!.delete(id);
      const slot = await this.ctx.store.slots.findOne({ _id: id });
      if (!slot || slot.proven) continue;
      await dataWaiting(this.ctx.store.events, {
        instanceId: slot.instanceId,
        ...(slot.envelopeHash ? { envelopeHash: slot.envelopeHash } : {}),
        pin: `${slot.author}/${slot.nonce}`,
        waitingFor: 'data',
      });
    }
  }

  /** Signals one final slot; the level to write down, or null to try again on a later pass. */
  private async tell(slot: SlotDoc): Promise<Level | null> {
    const level: Level = slot.proven ? 'full' : 'bare';
    const alive = await notifyConfirmed(this.ctx, slot.instanceId, {
      slot: `${slot.author}/${slot.nonce}`,
      position: positionOf(slot.position!),
      ...(slot.proven ? { envelopeHash: slot.envelopeHash! } : {}),
    });
    if (!alive) {
      // No workflow: either the instance has ended, or this node has stored its invitation but not
      // yet started its workflow. Only in the first case is the signal moot; otherwise try again.
      if ((await this.ctx.store.instance(slot.instanceId))?.status !== 'ended') return null;
      // The instance ended and its workflow is done: a step sequenced after the end is decided
      // here, as the workflow would have (late-steps.ts); not before the earlier ones.
      if (slot.proven && !(await decideAfterEnd(this.ctx, slot))) return null;
    }
    if (alive && slot.proven) this.ctx.log.debug({ instanceId: slot.instanceId, envelopeHash: slot.envelopeHash }, 'final step signalled');
    return level;
  }
}
