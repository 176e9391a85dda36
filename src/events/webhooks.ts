/**
 * Webhooks: subscriptions and deliveries, all state in MongoDB so a restarted node resumes where
 * it stopped. A dispatcher turns new events into one delivery per matching subscription, then
 * POSTs due deliveries, signed (HMAC-SHA256 over `timestamp.body`), retrying with exponential
 * backoff up to a bounded number of attempts; then a delivery is dead until redelivered.
 * At least once: a crash after a POST but before it is marked delivered sends it again.
 *
 * FerretDB 1.x answers only a bare `{_id}` filter from an index; any other filter reads the whole
 * collection. So the dispatcher never filters the delivery history on fields: the pending
 * deliveries are also listed in a small working set (`webhook_due`, one document per pending
 * delivery, removed once it is delivered, dead or its subscription removed), which each tick reads
 * whole; deliveries themselves are read and written by `_id` alone.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Collection, Db } from 'mongodb';
import type { Logger } from 'pino';
import type { WebhookSettings } from '../config';
import type { EventType, LockstepEvent } from '../model/event';
import { LockstepError } from '../model/errors';
import type { DeliveryState, WebhookDelivery, WebhookSubscription } from '../model/webhook';
import type { EventLog } from './log';
import { hostOf, WebhookTargets } from './webhook-targets';
import { ignoreDuplicate } from '../store/duplicate-key';

const TICK_MS = 200;
/**
 * With no subscription the dispatcher only looks for new ones (another replica's, or one made here,
 * which wakes it at once) and sweeps deliveries left by removed ones, at this slower pace: each look
 * is a query, and on FerretDB every query costs the one store that all of the node's work shares.
 */
const IDLE_TICK_MS = 2_000;
const FAN_OUT_BATCH = 200;
const DELIVERY_BATCH = 20;
export const SIGNATURE_HEADER = 'Lockstep-Signature';

interface SubscriptionDoc extends Omit<WebhookSubscription, 'id'> {
  _id: string;
  secret: string;
  /** Highest event sequence number turned into deliveries. */
  cursor: number;
}

/** A pending delivery, in the working set; `nextAttemptAt` is when it is due (or its claim runs out). */
interface DueDoc {
  _id: string;
  nextAttemptAt: Date;
}

interface DeliveryDoc {
  _id: string;
  subscriptionId: string;
  seq: number;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: Date | null;
  lastError: string | null;
  deliveredAt: Date | null;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` */
export function signPayload(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export class Webhooks {
  private readonly subs: Collection<SubscriptionDoc>;
  private readonly deliveries: Collection<DeliveryDoc>;
  private readonly due: Collection<DueDoc>;
  private readonly targets: WebhookTargets;
  private running = false;
  /** Whether this process has listed the pending deliveries of older nodes in the working set. */
  private seeded = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  /** Subscriptions found by the last pass: new events wake the dispatcher only when someone listens. */
  private subscribed = 0;
  private readonly onAppended = () => {
    if (this.subscribed > 0) this.wake?.();
  };

  constructor(
    db: Db,
    private readonly events: EventLog,
    private readonly settings: WebhookSettings,
    private readonly log: Logger,
  ) {
    this.subs = db.collection('webhooks');
    this.deliveries = db.collection('webhook_deliveries');
    this.due = db.collection('webhook_due');
    this.targets = new WebhookTargets(settings.allow);
  }

  async ensureIndexes(): Promise<void> {
    // For the API's listings (on MongoDB; FerretDB scans); the dispatcher needs none.
    await this.subs.createIndex({ app: 1 });
    await this.deliveries.createIndex({ state: 1, nextAttemptAt: 1 });
    await this.deliveries.createIndex({ subscriptionId: 1, state: 1, seq: 1 });
  }

  async create(app: string, input: { url: string; types?: EventType[]; instanceId?: string; secret?: string; from?: number }): Promise<{ subscription: WebhookSubscription; secret: string }> {
    const problem = this.targets.urlProblem(input.url);
    if (problem) throw new LockstepError('validation_failed', `webhook URL refused: ${problem}`, [{ field: '/url', message: problem }]);
    const secret = input.secret ?? randomBytes(32).toString('base64url');
    const doc: SubscriptionDoc = {
      _id: randomUUID(),
      app,
      url: input.url,
      types: input.types ?? [],
      ...(input.instanceId ? { instanceId: input.instanceId } : {}),
      createdAt: new Date().toISOString(),
      secret,
      cursor: input.from ?? (await this.events.readerStart()),
    };
    await this.subs.insertOne(doc);
    this.wake?.();
    return { subscription: subscriptionView(doc), secret };
  }

  async list(app: string): Promise<WebhookSubscription[]> {
    return (await this.subs.find({ app }).sort({ createdAt: 1, _id: 1 }).toArray()).map(subscriptionView);
  }

  async get(app: string, id: string): Promise<WebhookSubscription> {
    return subscriptionView(await this.owned(app, id));
  }

  async remove(app: string, id: string): Promise<void> {
    await this.owned(app, id);
    await this.subs.deleteOne({ _id: id });
    await this.deliveries.deleteMany({ subscriptionId: id, state: 'pending' });
    // Delivery ids start with their subscription's id; the dispatcher also drops any it meets later.
    const gone = (await this.due.find({}).toArray()).filter((d) => d._id.startsWith(`${id}:`));
    for (const d of gone) await this.due.deleteOne({ _id: d._id });
  }

  async listDeliveries(app: string, id: string, state: DeliveryState | undefined, limit: number): Promise<WebhookDelivery[]> {
    await this.owned(app, id);
    const docs = await this.deliveries.find({ subscriptionId: id, ...(state ? { state } : {}) }).sort({ seq: 1 }).limit(limit).toArray();
    return docs.map(deliveryView);
  }

  /** Puts a delivery (typically a dead one) back in the queue with a fresh set of attempts. */
  async redeliver(app: string, id: string, deliveryId: string): Promise<WebhookDelivery> {
    await this.owned(app, id);
    const found = await this.deliveries.findOne({ _id: deliveryId });
    if (found?.subscriptionId !== id) throw new LockstepError('not_found', `webhook ${id} has no delivery ${deliveryId}`, [{ field: 'deliveryId', message: 'unknown' }]);
    const now = new Date();
    const fresh = { state: 'pending' as const, attempts: 0, nextAttemptAt: now, lastError: null };
    await this.deliveries.updateOne({ _id: deliveryId }, { $set: fresh });
    // Through the database, not memory: this may run on a replica while the leader dispatches.
    await this.schedule(deliveryId, now);
    this.wake?.();
    return deliveryView({ ...found, ...fresh });
  }

  /** Read by `_id` alone (the one filter FerretDB answers from its index); the app is compared here. */
  private async owned(app: string, id: string): Promise<SubscriptionDoc> {
    const doc = await this.subs.findOne({ _id: id });
    if (doc?.app !== app) throw new LockstepError('not_found', `unknown webhook ${id}`, [{ field: 'webhookId', message: 'unknown' }]);
    return doc;
  }

  /** Puts a delivery in the working set, due at `at`, whether or not it is there already. */
  private async schedule(deliveryId: string, at: Date): Promise<void> {
    if (await ignoreDuplicate(this.due.insertOne({ _id: deliveryId, nextAttemptAt: at }))) return;
    await this.due.updateOne({ _id: deliveryId }, { $set: { nextAttemptAt: at } });
  }

  start(): void {
    this.running = true;
    this.events.appended.on('event', this.onAppended);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.events.appended.off('event', this.onAppended);
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.seedOnce();
        this.subscribed = await this.fanOut();
        await this.deliverDue();
      } catch (err) {
        this.log.warn({ err }, 'webhook dispatch failed; retrying on the next tick');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.subscribed > 0 ? TICK_MS : IDLE_TICK_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /**
   * Nodes from before the working set have pending deliveries that are not in it: one scan of the
   * deliveries per process start lists them (again: a listing already there is left as it is).
   */
  private async seedOnce(): Promise<void> {
    if (this.seeded) return;
    const pending = await this.deliveries.find({ state: 'pending' }).toArray();
    for (const d of pending) await ignoreDuplicate(this.due.insertOne({ _id: d._id, nextAttemptAt: d.nextAttemptAt ?? new Date() }));
    this.seeded = true;
    if (pending.length > 0) this.log.info({ pending: pending.length }, 'webhook deliveries listed in the working set');
  }

  /**
   * New events become deliveries, each listed in the working set; the cursor moves only after both
   * are written (a crash in between writes them again; a listing of a delivery no longer pending is
   * dropped by the dispatcher). Returns how many subscriptions there are.
   */
  private async fanOut(): Promise<number> {
    const subs = await this.subs.find({}).toArray();
    for (const sub of subs) {
      const { events, readTo } = await this.events.readAfter(sub.cursor, FAN_OUT_BATCH, { types: sub.types, instanceId: sub.instanceId });
      for (const event of events) {
        const now = new Date();
        const delivery: DeliveryDoc = { _id: `${sub._id}:${event.seq}`, subscriptionId: sub._id, seq: event.seq, state: 'pending', attempts: 0, nextAttemptAt: now, lastError: null, deliveredAt: null };
        await ignoreDuplicate(this.deliveries.insertOne(delivery));
        await ignoreDuplicate(this.due.insertOne({ _id: delivery._id, nextAttemptAt: now }));
      }
      if (readTo > sub.cursor) await this.subs.updateOne({ _id: sub._id, cursor: sub.cursor }, { $set: { cursor: readTo } });
    }
    return subs.length;
  }

  /** The whole working set is read (it holds only pending deliveries); the oldest due go first. */
  private async deliverDue(): Promise<void> {
    const now = Date.now();
    const due = (await this.due.find({}).toArray())
      .filter((d) => d.nextAttemptAt.getTime() <= now)
      .sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime() || a._id.localeCompare(b._id))
      .slice(0, DELIVERY_BATCH);
    await Promise.all(due.map((d) => this.attempt(d)));
  }

  private async attempt(due: DueDoc): Promise<void> {
    // Claim it on the small working set: another replica (or a slow earlier tick) must not send it at the same time.
    const lease = new Date(Date.now() + this.settings.timeoutMs + 5_000);
    const claimed = await this.due.updateOne({ _id: due._id, nextAttemptAt: due.nextAttemptAt }, { $set: { nextAttemptAt: lease } });
    if (claimed.matchedCount === 0) return;
    const d = await this.deliveries.findOne({ _id: due._id });
    if (d?.state !== 'pending') {
      // Delivered, dead or removed meanwhile (a listing written again after a crash, or a removal).
      await this.due.deleteOne({ _id: due._id });
      return;
    }
    const sub = await this.subs.findOne({ _id: d.subscriptionId });
    const event = await this.events.get(d.seq);
    if (!sub || !event) {
      await this.finish(d._id, { state: 'dead', lastError: sub ? 'event no longer in the log' : 'subscription removed', nextAttemptAt: null });
      return;
    }
    const error = await this.post(sub, d, event);
    const attempts = d.attempts + 1;
    if (error === null) {
      await this.finish(d._id, { state: 'delivered', attempts, deliveredAt: new Date(), nextAttemptAt: null, lastError: null });
      return;
    }
    const dead = attempts >= this.settings.maxAttempts;
    this.log.info({ webhook: sub._id, seq: d.seq, attempts, dead, error }, 'webhook delivery failed');
    if (dead) {
      await this.finish(d._id, { state: 'dead', attempts, lastError: error, nextAttemptAt: null });
      return;
    }
    const backoff = Math.min(this.settings.maxBackoffMs, this.settings.backoffMs * 2 ** (attempts - 1));
    const next = new Date(Date.now() + backoff);
    // The delivery first: a crash in between leaves the listing under its claim, tried again when that runs out.
    await this.deliveries.updateOne({ _id: d._id }, { $set: { attempts, lastError: error, nextAttemptAt: next } });
    await this.due.updateOne({ _id: d._id }, { $set: { nextAttemptAt: next } });
  }

  /** A delivery leaves the working set: recorded first, so a crash in between leaves a listing the next tick drops. */
  private async finish(id: string, change: Partial<DeliveryDoc>): Promise<void> {
    await this.deliveries.updateOne({ _id: id }, { $set: change });
    await this.due.deleteOne({ _id: id });
  }

  /** Returns null on a 2xx answer, otherwise what went wrong. */
  private async post(sub: SubscriptionDoc, d: DeliveryDoc, event: LockstepEvent): Promise<string | null> {
    const body = JSON.stringify({ webhookId: sub._id, deliveryId: d._id, event });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      [SIGNATURE_HEADER]: signPayload(sub.secret, timestamp, body),
      'Lockstep-Delivery': d._id,
      'Lockstep-Event-Seq': String(event.seq),
    };
    // Checked again at each delivery: the allow list may have changed since the subscription was made.
    const problem = this.targets.urlProblem(sub.url);
    if (problem) return `refused: ${problem}`;
    return await postOnce(sub.url, headers, body, this.settings.timeoutMs, this.targets);
  }
}

/**
 * One POST, no redirects followed (a 3xx is an answer that is not 2xx), through a DNS lookup
 * that refuses the addresses webhooks may not go to. node:http rather than fetch: fetch has no
 * way to check the address it connects to.
 */
function postOnce(url: string, headers: Record<string, string>, body: string, timeoutMs: number, targets: WebhookTargets): Promise<string | null> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = send(target, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, lookup: targets.lookupFor(hostOf(target)), signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300 ? null : `HTTP ${res.statusCode}`));
      res.on('error', (error) => resolve(error.message));
    });
    req.on('error', (error) => resolve(error.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : error.message));
    req.end(body);
  });
}

function subscriptionView(doc: SubscriptionDoc): WebhookSubscription {
  return { id: doc._id, app: doc.app, url: doc.url, types: doc.types, ...(doc.instanceId ? { instanceId: doc.instanceId } : {}), createdAt: doc.createdAt };
}

function deliveryView(doc: DeliveryDoc): WebhookDelivery {
  return {
    id: doc._id,
    subscriptionId: doc.subscriptionId,
    seq: doc.seq,
    state: doc.state,
    attempts: doc.attempts,
    nextAttemptAt: doc.nextAttemptAt?.toISOString() ?? null,
    lastError: doc.lastError,
    deliveredAt: doc.deliveredAt?.toISOString() ?? null,
  };
}
