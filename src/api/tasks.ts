/**
 * `GET /tasks`: the steps this party may take now across its active instances, as each decision
 * leaves them on the instance (`InstanceDoc.openSteps`, from the workflow's own rules), minus steps
 * this party already proposed. Steps
 * marked `human` are flagged, with their assignee, form and instructions, and link to the
 * instance's workflow in the Temporal Web UI, where a person can complete them. An app sees only
 * the tasks of roles it may act in.
 */
import { Router } from 'express';
import type { NodeContext } from '../node/context';
import { stateFromConfirmed, stepsFor } from '../process/tasks';
import { callerOf, mayActAs } from './auth';
import { enumParam, limitParam, stringParam } from './query';
import { instanceWorkflowId } from '../../workflows/messages';
import { confirmedIn } from '../store/store';
import type { StepDoc } from '../store/documents';

const SCANNED_INSTANCES = 5_000;

/** The instance's workflow page in this party's namespace, when the network file names the UI. */
function temporalUiLink(ctx: NodeContext, instanceId: string): { temporalUi?: string } {
  const ui = ctx.network.temporal.uiUrl;
  const namespace = ctx.network.parties[ctx.party]?.namespace;
  return ui && namespace ? { temporalUi: `${ui}/namespaces/${namespace}/workflows/${instanceWorkflowId(instanceId)}` } : {};
}

export function taskRoutes(ctx: NodeContext): Router {
  const r = Router();
  r.get('/tasks', async (req, res) => {
    const limit = limitParam(req);
    const only = enumParam(req, 'kind', ['human', 'all'] as const) ?? 'all';
    const definition = stringParam(req, 'definition');
    const caller = callerOf(res);
    // Instances with nothing open for this party are left out by the query; those stored before
    // nodes kept `openSteps` have none, and their open steps are derived from their history.
    const active = ctx.store.instances
      .find({ status: 'active', parties: ctx.party, openSteps: { $ne: [] }, ...(definition ? { 'header.definitionId': definition } : {}) })
      .sort({ createdAt: 1, _id: 1 })
      .limit(SCANNED_INSTANCES);
    const tasks = [];
    for await (const doc of active) {
      if (tasks.length >= limit) break;
      const { definition: def } = ctx.definitions.byAgreedHash(doc.header.definitionHash, `instance ${doc._id}`);
      let history: StepDoc[] | undefined;
      // Names and order alone: which steps are open evaluates no guard.
      const readHistory = async (): Promise<StepDoc[]> => (history ??= await ctx.store.history(doc._id, doc, { withData: false }));
      const open = doc.openSteps
        ? def.steps.filter((s) => doc.openSteps!.includes(s.id))
        : stepsFor(def, doc.header, stateFromConfirmed(def, confirmedIn(await readHistory()), false), ctx.party);
      const wanted = open.filter((step) => mayActAs(caller, step.actor) && (only === 'all' || step.human));
      if (wanted.length === 0) continue;
      // Only an instance with a task for the caller has its history read: for the steps this party proposed already.
      const proposed = new Set((await readHistory()).filter((s) => s.status === 'pending' && s.author === ctx.party).map((s) => s.step));
      for (const step of wanted) {
        if (proposed.has(step.id)) continue;
        tasks.push({
          instanceId: doc._id,
          definition: def.id,
          step: step.id,
          title: step.title,
          actor: step.actor,
          human: step.human ?? null,
          description: step.description ?? null,
          links: { take: `/api/v1/instances/${doc._id}/steps`, instance: `/api/v1/instances/${doc._id}`, ...(step.human ? temporalUiLink(ctx, doc._id) : {}) },
        });
      }
    }
    res.json({ tasks: tasks.slice(0, limit) });
  });
  return r;
}
