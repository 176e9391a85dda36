/**
 * `GET /tasks`: the steps this party may take now across its active instances, as each decision
 * leaves them on the instance (`InstanceDoc.openSteps`, from the workflow's own rules), minus steps
 * this party already proposed; oldest instance first, a page at a time. Steps marked `human` are
 * flagged, with their assignee, form and instructions, and link to the instance's workflow in the
 * Temporal Web UI, where a person can complete them. An app sees only the tasks of roles it may
 * act in.
 */
import { Router } from 'express';
import type { NodeContext } from '../node/context';
import { stateFromConfirmed, stepsFor } from '../process/tasks';
import { callerOf, mayActAs } from './auth';
import { enumParam, limitParam, stringParam } from './query';
import { afterCondition, decodeCursor, encodeCursor, queryFingerprint } from './pagination';
import type { Filter } from 'mongodb';
import type { StepDefinition } from '../model/definition';
import type { InstanceDoc, StepDoc } from '../store/documents';
import { instanceWorkflowId } from '../../workflows/messages';
import { confirmedIn } from '../store/store';

const SCANNED_INSTANCES = 5_000;

/** The instance's workflow page in this party's namespace, when the network file names the UI. */
function temporalUiLink(ctx: NodeContext, instanceId: string): { temporalUi?: string } {
  const ui = ctx.network.temporal.uiUrl;
  const namespace = ctx.network.parties[ctx.party]?.namespace;
  return ui && namespace ? { temporalUi: `${ui}/namespaces/${namespace}/workflows/${instanceWorkflowId(instanceId)}` } : {};
}

interface TaskView {
  instanceId: string;
  definition: string;
  step: string;
  title?: string;
  actor: string;
  human: StepDefinition['human'] | null;
  description: string | null;
  links: { take: string; instance: string; temporalUi?: string };
}

function taskView(ctx: NodeContext, instanceId: string, definition: string, step: StepDefinition): TaskView {
  return {
    instanceId,
    definition,
    step: step.id,
    title: step.title,
    actor: step.actor,
    human: step.human ?? null,
    description: step.description ?? null,
    links: { take: `/api/v1/instances/${instanceId}/steps`, instance: `/api/v1/instances/${instanceId}`, ...(step.human ? temporalUiLink(ctx, instanceId) : {}) },
  };
}

/**
 * Where a page of tasks resumes: the cursor holds the last listed task's instance (its creation
 * time and id) and step, so the next page lists that instance's later steps, then later
 * instances; or the instance alone, where a scan ended on it, so the next page starts after it.
 */
function resumeAt(cursor: { v: string; id: string } | undefined): { createdAt: Date; instanceId: string; step?: string } | undefined {
  if (!cursor) return undefined;
  const [instanceId, step] = cursor.id.split('/');
  return { createdAt: new Date(cursor.v), instanceId: instanceId!, ...(step ? { step } : {}) };
}

export function taskRoutes(ctx: NodeContext): Router {
  const r = Router();
  r.get('/tasks', async (req, res) => {
    const limit = limitParam(req);
    const q = { kind: enumParam(req, 'kind', ['human', 'all'] as const) ?? 'all', definition: stringParam(req, 'definition'), instance: stringParam(req, 'instance') };
    const fingerprint = queryFingerprint(q);
    const after = resumeAt(decodeCursor(stringParam(req, 'cursor', /^[A-Za-z0-9_-]{1,1024}$/), fingerprint));
    const caller = callerOf(res);
    // Instances with nothing open for this party are left out by the query; those stored before
    // nodes kept `openSteps` have none, and their open steps are derived from their history.
    const filter: Filter<InstanceDoc> = {
      ...(q.instance ? { _id: q.instance } : {}),
      status: 'active',
      parties: ctx.party,
      openSteps: { $ne: [] },
      ...(q.definition ? { 'header.definitionId': q.definition } : {}),
    };
    const active = ctx.store.instances
      .find(after ? { $and: [filter, afterCondition('createdAt', { v: after.createdAt, id: after.instanceId }, 1, after.step !== undefined)] } : filter)
      .sort({ createdAt: 1, _id: 1 })
      .limit(SCANNED_INSTANCES);
    const tasks: (TaskView & { createdAt: Date })[] = [];
    let scanned: InstanceDoc | undefined;
    let scannedCount = 0;
    for await (const doc of active) {
      // One more than the page, to know whether there is a next one.
      if (tasks.length > limit) break;
      scanned = doc;
      scannedCount++;
      const { definition: def } = ctx.definitions.byAgreedHash(doc.header.definitionHash, `instance ${doc._id}`);
      let history: StepDoc[] | undefined;
      // Names and order alone: which steps are open evaluates no guard.
      const readHistory = async (): Promise<StepDoc[]> => (history ??= await ctx.store.history(doc._id, doc, { withData: false }));
      const open = doc.openSteps
        ? def.steps.filter((s) => doc.openSteps!.includes(s.id))
        : stepsFor(def, doc.header, stateFromConfirmed(def, confirmedIn(await readHistory()), false), ctx.party);
      // The page before ended inside this instance: its steps up to that one were listed there.
      const listedBefore = after?.step && after.instanceId === doc._id ? def.steps.findIndex((s) => s.id === after.step) : -1;
      const wanted = open.filter((step) => mayActAs(caller, step.actor) && (q.kind === 'all' || step.human) && def.steps.indexOf(step) > listedBefore);
      if (wanted.length === 0) continue;
      // Only an instance with a task for the caller has its history read: for the steps this party proposed already.
      const proposed = new Set((await readHistory()).filter((s) => s.status === 'pending' && s.author === ctx.party).map((s) => s.step));
      for (const step of wanted) if (!proposed.has(step.id)) tasks.push({ ...taskView(ctx, doc._id, def.id, step), createdAt: doc.createdAt });
    }
    const page = tasks.slice(0, limit);
    const last = page[page.length - 1];
    let next: string | null = null;
    if (tasks.length > limit && last) next = encodeCursor(last.createdAt.toISOString(), `${last.instanceId}/${last.step}`, fingerprint);
    // The scan stopped at its bound short of a full page: the next page starts after the last instance it read.
    else if (scannedCount === SCANNED_INSTANCES && scanned) next = encodeCursor(scanned.createdAt.toISOString(), scanned._id, fingerprint);
    res.json({ tasks: page.map(({ createdAt: _, ...task }) => task), next });
  });
  return r;
}
