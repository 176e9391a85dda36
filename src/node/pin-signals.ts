/**
 * Tells instance workflows about final steps, in chain order, once the envelope is here and
 * proven against the batch root: one signal carries the final pin and the step itself, so a
 * peer's workflow hears of each step once (the data exchange does not signal). A final step
 * whose data is late is told bare (the tag alone: the workflow then shows what it waits for)
 * once it has waited DATA_WAIT_GRACE_MS; until then it holds back the later steps of its
 * instance here, so no workflow ever hears of a later step before an earlier one. The workflow
 * could not apply them earlier anyway, and the bare signal, a workflow task on each peer for
 * most steps under load, is left out when the data comes within the grace. Runs after each listener pass and each delivery. Serialised within the process;
 * repeats are harmless, the workflow deduplicates.
 *
 * Chain order matters within an instance (one workflow); different instances are told side by
 * side, a few at a time; a pass writes down what it told once it has told it.
 *
 * A pin final before its data is the rule for peers, not a stall (the chain is usually quicker
 * than the author's delivery), so the `data.waiting` event, three writes, is recorded only when
 * the data is still missing DATA_WAIT_GRACE_MS after the pin was found final.
 *
 * A pass looks for slots to signal only when something may have changed since the last complete
 * look (see `flush`): the look reads every final slot not yet decided, and the listener asks for
 * a pass after every poll, most of which find the same head.
 */
import { ruleData } from '../model/envelope';
import type { NodeContext } from './context';
import type { SlotDoc } from '../store/documents';
import { positionOf } from '../store/store';
import { notifyConfirmed } from './workflows';
import { dataWaiting } from '../events/hooks';
import { decideAfterEnd } from './late-steps';
import { guardReadData, guardReadPaths } from '../process/guard';
import type { PendingStep } from '../../workflows/messages';

type Level = 'bare' | 'full';

/** How long a final pin may wait for its data before it is told bare and apps hear `data.waiting`. */
export const DATA_WAIT_GRACE_MS = 2_000;

/** How many instances are signalled side by side. */
const SIGNAL_CONCURRENCY = 4;

export class PinSignaller {
  private running: Promise<void> = Promise.resolve();
  /** A pass asked for and not started yet: later requests share it (it will see their writes). */
  private queued?: Promise<void>;
  /** Slots told bare and not yet reported as waiting, with when they were found final without data (0: report at once). */
  private waitingSince?: Map<string, number>;
  private allowed: () => boolean = () => true;
  /** Something may have changed since the last complete look for slots to signal. */
  private stale = true;
  /** Final slots found without their data, and since when (not told yet: see `holdsBack`). */
  private readonly dataLate = new Map<string, number>();
  /** A pass due when the earliest held slot's grace ends. */
  private graceTimer?: { at: number; timer: NodeJS.Timeout };

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
    const candidates = await this.ctx.store.slotsToSignal();
    for (const slot of candidates) {
      const list = byInstance.get(slot.instanceId) ?? [];
      list.push(slot);
      byInstance.set(slot.instanceId, list);
    }
    // A slot no longer waiting to be told (decided, or undone by a reorganisation) is forgotten here too.
    const waiting = new Set(candidates.map((c) => c._id));
    for (const id of this.dataLate.keys()) if (!waiting.has(id)) this.dataLate.delete(id);
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
            // In chain order; a failure or a held slot stops this instance's signals here, so none overtakes it.
            for (const slot of slots) {
              if (this.holdsBack(slot)) break;
              const level = await this.tell(slot);
              // Not told yet (a workflow not started, its step not stored yet, earlier data
              // missing): look again next pass, and tell none of the later ones before it.
              if (!level) {
                this.stale = true;
                break;
              }
              told.push({ slot, level });
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
      // data.waiting is due DATA_WAIT_GRACE_MS after the pin was found final without its data: when it is told bare.
      if (level === 'bare') this.waitingSince!.set(slot._id, this.dataLate.get(slot._id) ?? now);
      else this.waitingSince!.delete(slot._id);
      this.dataLate.delete(slot._id);
    }
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * A final slot without its data is not told (nor are the later slots of its instance) until
   * DATA_WAIT_GRACE_MS after it was first found so: its data usually comes first, and one signal
   * then tells both. A pass is due when the grace ends, whatever else happens.
   */
  private holdsBack(slot: SlotDoc): boolean {
    if (slot.proven) return false;
    const now = Date.now();
    const since = this.dataLate.get(slot._id) ?? now;
    this.dataLate.set(slot._id, since);
    const due = since + DATA_WAIT_GRACE_MS;
    if (now >= due) return false;
    // No look on every poll meanwhile: the envelope's arrival asks for a pass, and so does this timer.
    if (!this.graceTimer || due < this.graceTimer.at) {
      if (this.graceTimer) clearTimeout(this.graceTimer.timer);
      const timer = setTimeout(() => {
        this.graceTimer = undefined;
        void this.flush();
      }, due - now);
      timer.unref();
      this.graceTimer = { at: due, timer };
    }
    return true;
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
      const slot = await this.ctx.store.slot(id);
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
    const proposal = slot.proven ? await this.proposalOf(slot) : undefined;
    // Proven a moment before the data exchange stored the step (it asks for a pass once it has).
    if (proposal === null) return null;
    const alive = await notifyConfirmed(this.ctx, slot.instanceId, {
      slot: `${slot.author}/${slot.nonce}`,
      position: positionOf(slot.position!),
      ...(proposal ? { envelopeHash: slot.envelopeHash!, proposal } : {}),
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

  /**
   * The step a proven slot's envelope proposes, as its workflow needs it; null while the step is
   * not stored yet. What guards read of its data goes along, and nothing else: a workflow's
   * history keeps what the rules need and no more. A step this process stored lately, read by no
   * guard, is told from memory: its name is all the store would add (a read per step and node saved).
   */
  private async proposalOf(slot: SlotDoc): Promise<PendingStep | null> {
    const envelopeHash = slot.envelopeHash!;
    const instance = await this.ctx.store.agreedInstance(slot.instanceId);
    if (!instance) return null;
    const read = guardReadPaths(this.ctx.definitions.byAgreedHash(instance.header.definitionHash, `instance ${instance._id}`).definition);
    const name = this.ctx.store.stepStoredLately(envelopeHash);
    if (name !== undefined && !read.has(name)) return { envelopeHash, step: name, author: slot.author };
    const stored = await this.ctx.store.step(envelopeHash);
    if (!stored) return null;
    const told = { envelopeHash: stored.envelopeHash, step: stored.step, author: stored.author };
    if (!read.has(stored.step)) return told;
    const { data } = (await this.ctx.store.withData([stored]))[0]!;
    return { ...told, ...(data ? guardReadData(read.get(stored.step), ruleData(data)) : {}) };
  }
}
