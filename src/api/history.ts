/**
 * `GET /history`: rich queries over this party's cache of the shared history, across instances:
 * filter by instance, step, author, status, rejection code and time (proposedAt); ascending or
 * descending; cursor-paged over (proposedAt, envelope hash), which the store indexes.
 */
import { Router } from 'express';
import type { Filter } from 'mongodb';
import type { NodeContext } from '../node/context';
import type { StepDoc } from '../store/documents';
import { afterCondition, decodeCursor, encodeCursor, queryFingerprint } from './pagination';
import { dateParam, enumParam, limitParam, stringParam } from './query';
import { stepView } from './views';

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

export function historyRoutes(ctx: NodeContext, head: () => number): Router {
  const r = Router();
  r.get('/history', async (req, res) => {
    const limit = limitParam(req);
    const q = {
      instance: stringParam(req, 'instance'),
      step: stringParam(req, 'step', NAME),
      author: stringParam(req, 'author', NAME),
      status: enumParam(req, 'status', ['pending', 'confirmed', 'rejected'] as const),
      rejection: stringParam(req, 'rejection', /^[a-z_]{1,64}$/),
      from: dateParam(req, 'from')?.toISOString(),
      to: dateParam(req, 'to')?.toISOString(),
      order: enumParam(req, 'order', ['asc', 'desc'] as const) ?? 'asc',
    };
    const fingerprint = queryFingerprint(q);
    const after = decodeCursor(stringParam(req, 'cursor', /^[A-Za-z0-9_-]{1,1024}$/), fingerprint);
    const filter: Filter<StepDoc> = {};
    if (q.instance) filter.instanceId = q.instance;
    if (q.step) filter.step = q.step;
    if (q.author) filter.author = q.author;
    if (q.status) filter.status = q.status;
    if (q.rejection) filter['rejection.code'] = q.rejection;
    // proposedAt is an ISO string in UTC, so string order is time order.
    if (q.from || q.to) filter.proposedAt = { ...(q.from ? { $gte: q.from } : {}), ...(q.to ? { $lt: q.to } : {}) };
    const direction = q.order === 'asc' ? 1 : -1;
    const query = after ? { $and: [filter, afterCondition('proposedAt', after, direction)] } : filter;
    const docs = await ctx.store.steps.find(query as Filter<StepDoc>).sort({ proposedAt: direction, _id: direction }).limit(limit + 1).toArray();
    const page = await ctx.store.withData(docs.slice(0, limit));
    const last = page[page.length - 1];
    const next = docs.length > limit && last ? encodeCursor(last.proposedAt, last._id, fingerprint) : null;
    res.json({ steps: page.map((s) => ({ instanceId: s.instanceId, ...stepView(s, head()) })), next });
  });
  return r;
}
