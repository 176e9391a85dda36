/** Routes for instances and their steps: start, list (filtered, paged), get, take a step, list steps. */
import { Router } from 'express';
import type { Filter } from 'mongodb';
import { LockstepError } from '../model/errors';
import { rolesOf } from '../model/instance';
import type { NodeContext } from '../node/context';
import { proposeStep, startInstance, type StartRequest } from '../node/operations';
import { requireShape } from '../http/shape';
import type { InstanceDoc } from '../store/documents';
import { findStep } from '../process/rules';
import { callerOf, requireRole } from './auth';
import { afterCondition, decodeCursor, encodeCursor, queryFingerprint } from './pagination';
import { dateParam, enumParam, intParam, limitParam, stringParam } from './query';
import { instanceView, stepView } from './views';
import { waitForDecision, waitUntilStored } from './wait';
import { collectEvidence } from '../evidence/collect';
import { requestMissingData } from '../exchange/resend';

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
/** How long a proposal's answer waits for its step to be stored (its publish activity is queued for the leading process). */
const STORED_WAIT_MS = 10_000;

export function instanceRoutes(ctx: NodeContext, head: () => number): Router {
  const r = Router();

  r.post('/instances', async (req, res) => {
    const request = requireShape<StartRequest>(req.body, 'startInstance');
    const mine = Object.entries(request.roles).filter(([, p]) => p === ctx.party).map(([role]) => role);
    if (mine.length > 0) requireRole(callerOf(res), mine, `start an instance as ${mine.join(', ')}`, '/roles');
    const header = await startInstance(ctx, request);
    res.status(201).location(`/api/v1/instances/${header.id}`).json({ instance: { ...header, status: 'active', outcome: null } });
  });

  r.get('/instances', async (req, res) => {
    const limit = limitParam(req);
    const q = {
      definition: stringParam(req, 'definition', NAME),
      status: enumParam(req, 'status', ['active', 'ended'] as const),
      role: stringParam(req, 'role', NAME),
      party: stringParam(req, 'party', NAME),
      createdFrom: dateParam(req, 'createdFrom')?.toISOString(),
      createdTo: dateParam(req, 'createdTo')?.toISOString(),
    };
    const fingerprint = queryFingerprint(q);
    const after = decodeCursor(stringParam(req, 'cursor', /^[A-Za-z0-9_-]{1,1024}$/), fingerprint);
    const filter: Filter<InstanceDoc> = {};
    if (q.definition) filter['header.definitionId'] = q.definition;
    if (q.status) filter.status = q.status;
    // `role`: instances where this node's party plays that role.
    if (q.role) filter[`header.roles.${q.role}`] = ctx.party;
    if (q.party) filter.parties = q.party;
    if (q.createdFrom || q.createdTo) filter.createdAt = { ...(q.createdFrom ? { $gte: new Date(q.createdFrom) } : {}), ...(q.createdTo ? { $lt: new Date(q.createdTo) } : {}) };
    const query = after ? { $and: [filter, afterCondition('createdAt', { v: new Date(after.v), id: after.id }, -1)] } : filter;
    const docs = await ctx.store.instances.find(query as Filter<InstanceDoc>).sort({ createdAt: -1, _id: -1 }).limit(limit + 1).toArray();
    const page = docs.slice(0, limit);
    const last = page[page.length - 1];
    const next = docs.length > limit && last ? encodeCursor(last.createdAt.toISOString(), last._id, fingerprint) : null;
    res.json({ instances: page.map(instanceView), next });
  });

  r.get('/instances/:id', async (req, res) => {
    const doc = await ctx.store.instance(req.params.id);
    if (!doc) throw new LockstepError('not_found', `unknown instance ${req.params.id}`, [{ field: 'instanceId', message: 'unknown' }]);
    const waiting = await ctx.store.waitingForData(doc._id);
    res.json({
      instance: instanceView(doc),
      // Steps sequenced on chain whose data (or proof) has not arrived from their author yet.
      waitingForData: waiting.map((w) => ({ author: w.author, nonce: w.nonce, blockNumber: w.position!.blockNumber, final: w.final, hasEnvelope: w.envelopeHash !== undefined })),
    });
  });

  r.post('/instances/:id/steps', async (req, res) => {
    const body = requireShape<{ step: string; input?: unknown; output?: unknown }>(req.body, 'proposeStep');
    const wait = enumParam(req, 'wait', ['none', 'confirmed'] as const) ?? 'none';
    const timeoutSeconds = intParam(req, 'timeout', 30, 1, 300);
    // Its agreed part (from memory after the first read) is all a proposal needs; its status is the workflow's to judge.
    const doc = await ctx.store.agreedInstance(req.params.id);
    if (!doc) throw new LockstepError('not_found', `unknown instance ${req.params.id}`, [{ field: 'instanceId', message: 'unknown' }]);
    const { definition } = ctx.definitions.byAgreedHash(doc.header.definitionHash, `instance ${doc._id}`);
    const step = findStep(definition, body.step);
    if (rolesOf(doc.header, ctx.party).includes(step.actor)) requireRole(callerOf(res), [step.actor], `take step "${step.id}"`, '/step');
    const key = req.header('Idempotency-Key');
    // Only an absent input defaults to {}: an explicit null is the app's value, checked against the step's schema like any other.
    const proposal = { step: body.step, input: body.input === undefined ? {} : body.input, output: body.output };
    const result = await proposeStep(ctx, req.params.id, proposal, key === undefined ? undefined : `${callerOf(res).app}\u0000${key}`);
    const link = `/api/v1/instances/${req.params.id}/steps/${result.envelopeHash}`;
    // The Update built the envelope; its publish activity, queued as the Update completed, signs and
    // stores the step. Answered once it has, the link reads it at once; should that take longer,
    // the answer goes all the same.
    if (!(await waitUntilStored(ctx.store, ctx.store.events, result.envelopeHash, STORED_WAIT_MS))) {
      ctx.log.warn(
        { instanceId: req.params.id, envelopeHash: result.envelopeHash, waitedMs: STORED_WAIT_MS },
        'step accepted but not stored yet: its publish activity has not run (no process of this party leads, or Temporal is slow to dispatch it); answered anyway',
      );
    }
    if (wait === 'confirmed') {
      const decided = await waitForDecision(ctx.store, ctx.store.events, result.envelopeHash, timeoutSeconds * 1000);
      if (decided) {
        res.status(200).location(link).json({ step: stepView(decided, head()), links: { step: link } });
        return;
      }
    }
    res.status(202).location(link).json({ ...result, links: { step: link } });
  });

  // Recovery for data that never came or was lost: ask each author of a waiting pin to send it again.
  r.post('/instances/:id/data-requests', async (req, res) => {
    if (!(await ctx.store.instance(req.params.id))) throw new LockstepError('not_found', `unknown instance ${req.params.id}`, [{ field: 'instanceId', message: 'unknown' }]);
    res.json({ instanceId: req.params.id, requests: await requestMissingData(ctx, req.params.id) });
  });

  r.get('/instances/:id/steps', async (req, res) => {
    const instance = await ctx.store.instance(req.params.id);
    if (!instance) throw new LockstepError('not_found', `unknown instance ${req.params.id}`, [{ field: 'instanceId', message: 'unknown' }]);
    res.json({ instanceId: req.params.id, steps: (await ctx.store.history(req.params.id, instance)).map((s) => stepView(s, head())) });
  });

  r.get('/instances/:id/history', async (req, res) => {
    const instance = await ctx.store.instance(req.params.id);
    if (!instance) throw new LockstepError('not_found', `unknown instance ${req.params.id}`, [{ field: 'instanceId', message: 'unknown' }]);
    res.json({ instanceId: req.params.id, steps: (await ctx.store.history(req.params.id, instance)).map((s) => stepView(s, head())) });
  });

  // Everything a third party needs to verify the history (`lockstep export`), including the
  // instance's pin secret: served only to this party's own apps, like every other read.
  r.get('/instances/:id/evidence', async (req, res) => {
    res.json(await collectEvidence(ctx, req.params.id));
  });

  r.get('/instances/:id/steps/:hash', async (req, res) => {
    const doc = await ctx.store.step(req.params.hash, { withData: true });
    if (!doc || doc.instanceId !== req.params.id) throw new LockstepError('not_found', `unknown step ${req.params.hash} in instance ${req.params.id}`, [{ field: 'envelopeHash', message: 'unknown' }]);
    res.json({ step: stepView(doc, head()) });
  });

  return r;
}
