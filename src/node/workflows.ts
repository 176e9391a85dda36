/**
 * How the node talks to its own instance workflows: start one, tell it about a final pin (with
 * its step, once the envelope is here). Every call is safe to repeat; the workflow ignores what
 * it already knows.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { InstanceHeader } from '../model/instance';
import type { NodeContext } from './context';
import { instanceWorkflowId, pinConfirmedSignal, TASK_QUEUE, type PinConfirmation } from '../../workflows/messages';
import { instanceWorkflow } from '../../workflows/instance';
import { instanceStaticDetails, instanceSummary } from '../../workflows/human-tasks';

/**
 * Starts this node's copy of an instance's workflow, with the summary and details the Temporal
 * Web UI shows (its current details, with any open human task, come from the workflow itself).
 * Nothing happens if it runs or has run already.
 */
export async function startInstanceWorkflow(ctx: NodeContext, header: InstanceHeader): Promise<void> {
  const { definition } = ctx.definitions.byAgreedHash(header.definitionHash, `instance ${header.id}`);
  const apiUrl = ctx.network.parties[ctx.party]?.apiUrl;
  const links = apiUrl ? { apiUrl } : undefined;
  try {
    await ctx.temporal.workflow.start(instanceWorkflow, {
      taskQueue: TASK_QUEUE,
      workflowId: instanceWorkflowId(header.id),
      // Once per instance: an invitation delivered again after the instance's workflow finished
      // would otherwise start a new run from the initial state, which would then decide a step
      // sequenced after the end against that state, unlike every other node.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      args: [{ header, definition, party: ctx.party, limits: ctx.config.runLimits, ...(links ? { links } : {}) }],
      searchAttributes: {
        LockstepDefinition: [definition.id],
        LockstepParties: [...new Set(Object.values(header.roles))],
      },
      staticSummary: instanceSummary(definition, header),
      staticDetails: instanceStaticDetails(definition, header, ctx.party, links),
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}

/** Returns false when the instance's workflow does not run (not started yet, or ended). */
export function notifyConfirmed(ctx: NodeContext, instanceId: string, confirmation: PinConfirmation): Promise<boolean> {
  return signalIfRunning(ctx, instanceId, (handle) => handle.signal(pinConfirmedSignal, confirmation));
}

type InstanceHandle = ReturnType<NodeContext['temporal']['workflow']['getHandle']>;

/** Sends a signal to the instance's workflow; false (not an error) when that workflow has finished. */
async function signalIfRunning(ctx: NodeContext, instanceId: string, send: (handle: InstanceHandle) => Promise<void>): Promise<boolean> {
  try {
    await send(ctx.temporal.workflow.getHandle(instanceWorkflowId(instanceId)));
    return true;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}
