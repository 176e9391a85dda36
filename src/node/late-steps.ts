/**
 * Steps sequenced after an instance ended, on a node whose workflow has already finished.
 *
 * A workflow finishes once the instance has ended and it knows of no pending step. A step
 * sequenced later (the losing claim of a race whose envelope came late, say) then has no
 * workflow to decide it, while a node whose workflow was still running decides it there. Both
 * must record the same verdict, or the histories diverge; so this applies the workflow's own
 * rules (`judge`) to the state folded from the confirmed steps, which after the end always
 * refuses the step as a conflict naming the step that ended the instance, and records it under
 * the next sequence number. Late steps of an instance are decided in chain order, as the
 * workflow would: the caller stops at the first one whose data is not here yet.
 */
import type { NodeContext } from './context';
import type { SlotDoc } from '../store/documents';
import { judge, StepRefused } from '../process/rules';
import { stateFromConfirmed } from '../process/tasks';
import { LockstepError } from '../model/errors';
import { confirmedIn, positionOf } from '../store/store';
import { comparePositions } from '../model/pin';
import { ruleData } from '../model/envelope';

/**
 * Decides a final, proven step of an ended instance. True once it is decided (now or before);
 * false while an earlier final step of the instance still lacks its data (try again later).
 */
export async function decideAfterEnd(ctx: NodeContext, slot: SlotDoc): Promise<boolean> {
  const step = slot.envelopeHash ? await ctx.store.step(slot.envelopeHash, { withData: true }) : null;
  if (!slot.position || !step) return false;
  if (step.status !== 'pending') return true;
  const instance = await ctx.store.instance(slot.instanceId);
  if (!instance) return false;
  const position = slot.position;
  const earlierWaiting = (await ctx.store.waitingForData(instance._id)).some((w) => w.position && comparePositions(w.position, position) < 0);
  if (earlierWaiting) return false;
  const { definition } = ctx.definitions.byAgreedHash(instance.header.definitionHash, `instance ${instance._id}`);
  const history = await ctx.store.history(instance._id, instance);
  const decided = history.filter((s) => s.status !== 'pending').length;
  const state = stateFromConfirmed(definition, confirmedIn(history), true);
  let rejection: { code: string; message: string; winner?: string };
  try {
    judge(definition, instance.header, state, { step: step.step, author: step.author, ...(step.data ? ruleData(step.data) : {}) }, slot.position.timestamp, false);
    // Unreachable while the rules refuse every step after the end; refuse loudly rather than apply.
    rejection = { code: 'conflict', message: `instance has ended with outcome "${state.ended?.outcome}"` };
  } catch (error) {
    if (!(error instanceof LockstepError)) throw error;
    const winner = error instanceof StepRefused ? error.winner : undefined;
    rejection = { code: error.code, message: error.message, ...(winner ? { winner } : {}) };
  }
  await ctx.store.recordDecision({
    instanceId: instance._id,
    envelopeHash: step.envelopeHash,
    status: 'rejected',
    seq: decided,
    position: positionOf(slot.position),
    rejection,
    step: step.step,
    author: step.author,
  });
  ctx.log.info({ instanceId: instance._id, step: step.step, envelopeHash: step.envelopeHash, seq: decided }, 'step after the end decided');
  return true;
}
