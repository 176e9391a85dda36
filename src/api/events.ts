/**
 * Event routes: the log for batch readers (`GET /events?after=`), and webhook subscriptions with
 * their deliveries, dead-letter list and redelivery. Realtime readers use the WebSocket
 * endpoint (src/events/websocket.ts).
 */
import { Router } from 'express';
import { EVENT_TYPES, type EventType } from '../model/event';
import type { DeliveryState } from '../model/webhook';
import type { EventLog } from '../events/log';
import type { Webhooks } from '../events/webhooks';
import { requireShape } from '../http/shape';
import { LockstepError } from '../model/errors';
import { callerOf } from './auth';
import { enumParam, intParam, limitParam, stringParam } from './query';

export function eventRoutes(events: EventLog, webhooks: Webhooks): Router {
  const r = Router();

  r.get('/events', async (req, res) => {
    const after = intParam(req, 'after', 0, 0, Number.MAX_SAFE_INTEGER);
    const types = stringParam(req, 'types', /^[a-z.,]{1,512}$/)?.split(',').filter(Boolean) as EventType[] | undefined;
    const unknown = (types ?? []).filter((t) => !EVENT_TYPES.includes(t));
    if (unknown.length > 0) {
      throw new LockstepError('bad_request', `unknown event types: ${unknown.join(', ')}; known: ${EVENT_TYPES.join(', ')}`, [{ field: '?types', message: 'unknown type' }]);
    }
    const { events: page, readTo } = await events.readAfter(after, limitParam(req), { types, instanceId: stringParam(req, 'instance') });
    // `next` is where to continue from: it moves past filtered-out events too.
    res.json({ events: page, next: readTo });
  });

  r.post('/webhooks', async (req, res) => {
    const body = requireShape<{ url: string; types?: EventType[]; instanceId?: string; secret?: string; from?: number }>(req.body, 'webhookSubscription');
    const { subscription, secret } = await webhooks.create(callerOf(res).app, body);
    res.status(201).location(`/api/v1/webhooks/${subscription.id}`).json({ webhook: subscription, secret });
  });

  r.get('/webhooks', async (_req, res) => {
    res.json({ webhooks: await webhooks.list(callerOf(res).app) });
  });

  r.get('/webhooks/:id', async (req, res) => {
    res.json({ webhook: await webhooks.get(callerOf(res).app, req.params.id) });
  });

  r.delete('/webhooks/:id', async (req, res) => {
    await webhooks.remove(callerOf(res).app, req.params.id);
    res.status(200).json({ deleted: req.params.id });
  });

  r.get('/webhooks/:id/deliveries', async (req, res) => {
    const state = enumParam(req, 'state', ['pending', 'delivered', 'dead'] as const satisfies readonly DeliveryState[]);
    res.json({ deliveries: await webhooks.listDeliveries(callerOf(res).app, req.params.id, state, limitParam(req)) });
  });

  /** The dead-letter list: deliveries that ran out of attempts. */
  r.get('/webhooks/:id/dead-letters', async (req, res) => {
    res.json({ deliveries: await webhooks.listDeliveries(callerOf(res).app, req.params.id, 'dead', limitParam(req)) });
  });

  r.post('/webhooks/:id/deliveries/:deliveryId/redeliver', async (req, res) => {
    res.status(202).json({ delivery: await webhooks.redeliver(callerOf(res).app, req.params.id, req.params.deliveryId) });
  });

  return r;
}
