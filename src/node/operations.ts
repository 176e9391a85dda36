/**
 * What a party's app can ask its node to do, independent of transport (REST today, CLI too).
 * Each operation validates fully before it changes anything.
 */
import { createHash, randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { InstanceHeader } from '../model/instance';
import { stepDataSizeProblem } from '../process/json-value';
import { LockstepError, type ErrorCode, type FieldError } from '../model/errors';
import { newSalt, newSecret, sealInvitation } from '../envelope/seal';
import type { NodeContext } from './context';
import { startInstanceWorkflow } from './workflows';
import { syncHumanTasks } from '../events/human-tasks';
import { awaitedSteps } from '../process/rules';
import { openStepIds } from '../process/tasks';
import { instanceWorkflowId, proposeUpdate, type ProposeRequest, type ProposeResult } from '../../workflows/messages';

export interface StartRequest {
  definition: string;
  roles: Record<string, string>;
}

export async function startInstance(ctx: NodeContext, request: StartRequest): Promise<InstanceHeader> {
  const loaded = ctx.definitions.get(request.definition);
  const declared = Object.keys(loaded.definition.roles);
  const errors: FieldError[] = [];
  for (const role of declared) if (!request.roles[role]) errors.push({ field: `/roles/${role}`, message: 'role not bound to a party' });
  for (const [role, party] of Object.entries(request.roles)) {
    if (!declared.includes(role)) errors.push({ field: `/roles/${role}`, message: `definition ${loaded.definition.id} has no role "${role}"` });
    else if (!ctx.network.parties[party]) errors.push({ field: `/roles/${role}`, message: `unknown party "${party}"` });
  }
  if (errors.length > 0) {
    throw new LockstepError('validation_failed', `roles do not fit definition ${loaded.definition.id}: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`, errors);
  }
  if (!Object.values(request.roles).includes(ctx.party)) {
    throw new LockstepError('forbidden', `${ctx.party} may only start instances it takes part in`, [{ field: '/roles', message: `no role is bound to ${ctx.party}` }]);
  }
  const header: InstanceHeader = {
    id: randomUUID(),
    definitionId: loaded.definition.id,
    definitionHash: loaded.hash,
    roles: request.roles,
    createdBy: ctx.party,
    createdAt: new Date().toISOString(),
  };
  // No pin of the new instance can be in a block that exists already: the head now, or (the
  // chain unreachable) the last block the listener read.
  const sinceBlock = await ctx.sequencer.head().catch(async () => (await ctx.store.checkpoint())?.scannedBlock ?? ctx.network.chain.deployBlock);
  const openSteps = openStepIds(loaded.definition, header, ctx.party);
  await ctx.store.saveInstance({ ...sealInvitation(ctx.wallet, header, newSecret()), sinceBlock }, openSteps);
  await syncHumanTasks(ctx.store, ctx.definitions, ctx.party, header.id);
  await startInstanceWorkflow(ctx, header);
  ctx.log.info({ instanceId: header.id, definition: header.definitionId }, 'instance started');
  return header;
}

/**
 * Proposes a step through the instance workflow's Update. `requestKey` (the app and its
 * Idempotency-Key) names the request: a retry under the same key, even after this node gave up
 * waiting or crashed, attaches to the first attempt's Update instead of proposing again.
 */
export async function proposeStep(ctx: NodeContext, instanceId: string, proposal: ProposeRequest, requestKey?: string): Promise<ProposeResult> {
  if (!(await ctx.store.agreedInstance(instanceId))) {
    throw new LockstepError('not_found', `unknown instance ${instanceId}`, [{ field: '/instanceId', message: 'unknown' }]);
  }
  // The workflow's validator refuses it too (for Updates from elsewhere); here it costs Temporal nothing.
  const tooLarge = stepDataSizeProblem({ input: proposal.input, output: proposal.output });
  if (tooLarge) throw new LockstepError('payload_too_large', tooLarge.message, [tooLarge]);
  const handle = ctx.temporal.workflow.getHandle(instanceWorkflowId(instanceId));
  // One id for every attempt: the server runs an update once per id, so asking again after a
  // timeout attaches to the first attempt instead of proposing the step twice.
  const updateId = requestKey ? `propose-${createHash('sha256').update(requestKey).digest('hex').slice(0, 40)}` : randomUUID();
  // Its salt comes with it, so that the workflow builds the envelope in the Update's own task.
  const salted: ProposeRequest = { ...proposal, salt: newSalt() };
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.executeUpdate(proposeUpdate, { args: [salted], updateId });
    } catch (error) {
      // No running workflow: either the instance has ended, or its invitation is still being
      // processed here. The instance is stored (and so readable) before its workflow starts: the
      // node first looks on chain for steps pinned before the invitation came. A caller who saw
      // the instance and proposes at once is kept waiting that long, not refused.
      const notStarted = error instanceof WorkflowNotFoundError;
      if (notStarted && (await ctx.store.instance(instanceId))?.status === 'ended') {
        throw new LockstepError('conflict', `instance ${instanceId} has ended; it takes no more steps`, [{ field: '/instanceId', message: 'ended' }]);
      }
      const refusal = notStarted
        ? new LockstepError('unavailable', `instance ${instanceId} is not running on this node yet (its invitation is still being processed); try again shortly`)
        : asLockstepError(error, instanceId);
      // Passing refusals, all `unavailable`: the workflow not started yet (above); the server
      // refusing updates while the workflow's last task is failed or timed out (it retries that
      // task by itself), or giving up waiting when a busy worker is slow to run the validator; the
      // workflow refusing them while its run is about to continue as new (its history is full).
      // And the workflow may not have applied steps this node already shows confirmed. In all of
      // these asking again under the same id is safe.
      const passing = (refusal instanceof LockstepError && refusal.code === 'unavailable') || (await awaitsRecordedSteps(ctx, instanceId, refusal));
      if (!passing || attempt >= UPDATE_ATTEMPTS) throw refusal;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

const UPDATE_ATTEMPTS = 6;

/**
 * Whether the workflow refused the step for want of earlier steps that this node has already
 * recorded as confirmed. A decision is recorded inside the workflow task that makes it (a local
 * activity), so when that task then fails (a worker or Temporal restarting) the store shows the
 * step confirmed while the workflow's state, until the task is run again, does not: an app that
 * saw the step confirmed and went on was refused. Such a refusal is waited out like the others.
 */
async function awaitsRecordedSteps(ctx: NodeContext, instanceId: string, refusal: unknown): Promise<boolean> {
  if (!(refusal instanceof LockstepError) || refusal.code !== 'precondition_failed') return false;
  const awaited = awaitedSteps(refusal.details);
  if (awaited.length === 0) return false;
  const confirmed = new Set((await ctx.store.confirmedSteps(instanceId, undefined, { withData: false })).map((s) => s.step));
  return awaited.every((step) => confirmed.has(step));
}

function isTransientUpdateRefusal(error: unknown): boolean {
  return /FAILED_PRECONDITION: Unable to perform workflow execution update due to Workflow Task in failed state/.test(
    `${(error as Error).message} ${((error as { cause?: Error }).cause)?.message ?? ''}`,
  );
}

/** Maps the workflow's refusal (an ApplicationFailure typed with our error code) back to a value. */
function asLockstepError(error: unknown, instanceId: string): unknown {
  if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
    const failure = error.cause;
    const details = (failure.details?.[0] as FieldError[] | undefined) ?? [];
    return new LockstepError((failure.type as ErrorCode | undefined) ?? 'bad_request', failure.message, details);
  }
  if (isTransientUpdateRefusal(error)) {
    return new LockstepError('unavailable', `instance ${instanceId} is busy recovering a failed workflow task; try again shortly`);
  }
  if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return new LockstepError('unavailable', `instance ${instanceId} did not answer in time (its worker is busy); try again shortly`);
  }
  if (/already completed/i.test((error as Error).message)) {
    return new LockstepError('conflict', `instance ${instanceId} has ended; it takes no more steps`, [{ field: '/instanceId', message: 'ended' }]);
  }
  return error;
}
