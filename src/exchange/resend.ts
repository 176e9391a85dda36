/**
 * Asking an author to send a step again: the recovery path for a node that waits for data it
 * never got or lost (a final pin whose envelope is not here). The request names only the slot
 * (instance, the author's step number); the author answers by delivering the envelope, with the
 * data the requester's roles may read, to the requester's endpoint in the network file. So the
 * unauthenticated sender header gains nobody anything: the data only ever goes where it may.
 */
import { LockstepError } from '../model/errors';
import type { SignedEnvelope } from '../model/envelope';
import { participantsOf, rolesOf, type InstanceHeader } from '../model/instance';
import type { NodeContext } from '../node/context';
import type { StepDoc } from '../store/documents';
import { findStep } from '../process/rules';

/** The signed envelope as `to` may receive it: with the step's data (filled in: Store.withData) only if one of its roles may see it. */
export function envelopeFor(ctx: NodeContext, header: InstanceHeader, step: StepDoc, to: string): SignedEnvelope {
  const definition = ctx.definitions.byAgreedHash(header.definitionHash, `instance ${header.id}`).definition;
  const stepDef = findStep(definition, step.step);
  const signed: SignedEnvelope = { envelope: step.envelope, hash: step.envelopeHash, signature: step.signature, receipt: step.receipt };
  const mayRead = !stepDef.visibility || rolesOf(header, to).some((r) => stepDef.visibility!.includes(r));
  if (mayRead) signed.data = step.data;
  return signed;
}

/** Author side: delivers our step `nonce` of the instance to `requester` again. */
export async function resendStep(ctx: NodeContext, requester: string | undefined, req: { instanceId: string; nonce: number }): Promise<{ envelopeHash: string }> {
  const instance = await ctx.store.instance(req.instanceId);
  if (!instance) throw new LockstepError('not_found', `unknown instance ${req.instanceId}`, [{ field: '/instanceId', message: 'unknown' }]);
  if (requester === undefined || requester === ctx.party || !participantsOf(instance.header).includes(requester)) {
    throw new LockstepError('forbidden', `${requester ?? 'an unnamed party'} is not a participant of instance ${req.instanceId}`, [{ field: 'x-lockstep-party', message: 'not a participant' }]);
  }
  const found = await ctx.store.steps.findOne({ instanceId: req.instanceId, author: ctx.party, nonce: req.nonce });
  const step = found && (await ctx.store.withData([found]))[0]!;
  if (!step) throw new LockstepError('not_found', `${ctx.party} has no step ${req.nonce} in instance ${req.instanceId}`, [{ field: '/nonce', message: 'unknown' }]);
  if (!step.receipt) throw new LockstepError('conflict', `step ${req.nonce} of ${ctx.party} is not pinned yet; it is delivered once it is`, [{ field: '/nonce', message: 'not pinned yet' }]);
  await ctx.dx.sendEnvelope(ctx.network.parties[requester]!, envelopeFor(ctx, instance.header, step, requester), ctx.party);
  ctx.log.info({ instanceId: req.instanceId, envelopeHash: step.envelopeHash, to: requester }, 'step sent again on request');
  return { envelopeHash: step.envelopeHash };
}

export interface DataRequest {
  author: string;
  nonce: number;
  status: 'delivered' | 'failed';
  error?: string;
}

/** Requester side: asks the author of every pin of the instance still waiting for its data to send it again. */
export async function requestMissingData(ctx: NodeContext, instanceId: string): Promise<DataRequest[]> {
  const results: DataRequest[] = [];
  for (const slot of await ctx.store.waitingForData(instanceId)) {
    const author = ctx.network.parties[slot.author];
    if (!author) continue;
    try {
      const res = await fetch(`${author.dxUrl}/dx/v1/resend-requests`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-lockstep-party': ctx.party },
        body: JSON.stringify({ instanceId, nonce: slot.nonce }),
        signal: AbortSignal.timeout(30_000),
      });
      if (!res.ok) throw new Error(`${slot.author} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      results.push({ author: slot.author, nonce: slot.nonce, status: 'delivered' });
    } catch (error) {
      results.push({ author: slot.author, nonce: slot.nonce, status: 'failed', error: (error as Error).message });
    }
  }
  return results;
}
