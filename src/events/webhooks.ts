/**
 * Webhooks: subscriptions and deliveries, all state in MongoDB so a restarted node resumes where
 * it stopped. A dispatcher turns new events into one delivery per matching subscription, then
 * POSTs due deliveries, signed (HMAC-SHA256 over `timestamp.body`), retrying with exponential
 * backoff up to a bounded number of attempts; then a delivery is dead until redelivered.
 * At least once: a crash after a POST but before it is marked delivered sends it again.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { Logger } from 'pino';
import type { WebhookSettings } from '../config';
import type { EventType, LockstepEvent } from '../model/event';
import { LockstepError } from '../model/errors';
import type { DeliveryState, WebhookDelivery, WebhookSubscription } from '../model/webhook';
import type { EventLog } from './log';
import { isDuplicateKey } from '../store/duplicate-key';

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
  private running = false;
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
  }

  async ensureIndexes(): Promise<void> {
    await this.subs.createIndex({ app: 1 });
    await this.deliveries.createIndex({ state: 1, nextAttemptAt: 1 });
    await this.deliveries.createIndex({ subscriptionId: 1, state: 1, seq: 1 });
  }

  async create(app: string, input: { url: string; types?: EventType[]; instanceId?: string; secret?: string; from?: number }): Promise<{ subscription: WebhookSubscription; secret: string }> {
    const secret = input.secret ?? randomBytes(32).toString('base64url');
    const doc: SubscriptionDoc = {
      _id: randomUUID(),
      app,
      url: input.url,
      types: input.types ?? [],
      ...(input.instanceId ? { instanceId: input.instanceId } : {}),
      createdAt: new Date().toISOString(),
      secret,
      cursor: input.from ?? (await this.events.head()),
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
  }

  async listDeliveries(app: string, id: string, state: DeliveryState | undefined, limit: number): Promise<WebhookDelivery[]> {
    await this.owned(app, id);
    const docs = await this.deliveries.find({ subscriptionId: id, ...(state ? { state } : {}) }).sort({ seq: 1 }).limit(limit).toArray();
    return docs.map(deliveryView);
  }

  /** Puts a delivery (typically a dead one) back in the queue with a fresh set of attempts. */
  async redeliver(app: string, id: string, deliveryId: string): Promise<WebhookDelivery> {
    await this.owned(app, id);
    const { matchedCount } = await this.deliveries.updateOne(
      { _id: deliveryId, subscriptionId: id },
      { $set: { state: 'pending', attempts: 0, nextAttemptAt: new Date(), lastError: null } },
    );
    const doc = matchedCount > 0 ? await this.deliveries.findOne({ _id: deliveryId }) : null;
    if (!doc) throw new LockstepError('not_found', `webhook ${id} has no delivery ${deliveryId}`, [{ field: 'deliveryId', message: 'unknown' }]);
    this.wake?.();
    return deliveryView(doc);
  }

  private async owned(app: string, id: string): Promise<SubscriptionDoc> {
    const doc = await this.subs.findOne({ _id: id, app });
    if (!doc) throw new LockstepError('not_found', `unknown webhook ${id}`, [{ field: 'webhookId', message: 'unknown' }]);
    return doc;
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

  /** New events become deliveries; the cursor moves only after they are written. Returns how many subscriptions there are. */
  private async fanOut(): Promise<number> {
    const subs = await this.subs.find({}).toArray();
    for (const sub of subs) {
      const { events, readTo } = await this.events.readAfter(sub.cursor, FAN_OUT_BATCH, { types: sub.types, instanceId: sub.instanceId });
      for (const event of events) {
        const delivery: DeliveryDoc = { _id: `${sub._id}:${event.seq}`, subscriptionId: sub._id, seq: event.seq, state: 'pending', attempts: 0, nextAttemptAt: new Date(), lastError: null, deliveredAt: null };
        try {
          await this.deliveries.insertOne(delivery);
        } catch (error) {
          if (!isDuplicateKey(error)) throw error;
        }
      }
      if (readTo > sub.cursor) await this.subs.updateOne({ _id: sub._id, cursor: sub.cursor }, { $set: { cursor: readTo } });
    }
    return subs.length;
  }

  private async deliverDue(): Promise<void> {
    const now = new Date();
    const due = await this.deliveries.find({ state: 'pending', nextAttemptAt: { $lte: now } }).sort({ nextAttemptAt: 1 }).limit(DELIVERY_BATCH).toArray();
    await Promise.all(due.map((d) => this.attempt(d)));
  }

  private async attempt(d: DeliveryDoc): Promise<void> {
    // Claim it: another replica (or a slow earlier tick) must not send it at the same time.
    const lease = new Date(Date.now() + this.settings.timeoutMs + 5_000);
    const claimed = await this.deliveries.updateOne({ _id: d._id, state: 'pending', nextAttemptAt: d.nextAttemptAt }, { $set: { nextAttemptAt: lease } });
    if (claimed.matchedCount === 0) return;
    const sub = await this.subs.findOne({ _id: d.subscriptionId });
    const event = await this.events.get(d.seq);
    if (!sub || !event) {
      await this.deliveries.updateOne({ _id: d._id }, { $set: { state: 'dead', lastError: sub ? 'event no longer in the log' : 'subscription removed', nextAttemptAt: null } });
      return;
    }
    const error = await this.post(sub, d, event);
    const attempts = d.attempts + 1;
    if (error === null) {
      await this.deliveries.updateOne({ _id: d._id }, { $set: { state: 'delivered', attempts, deliveredAt: new Date(), nextAttemptAt: null, lastError: null } });
      return;
    }
    const dead = attempts >= this.settings.maxAttempts;
    const backoff = Math.min(this.settings.maxBackoffMs, this.settings.backoffMs * 2 ** (attempts - 1));
    await this.deliveries.updateOne(
      { _id: d._id },
      { $set: { state: dead ? 'dead' : 'pending', attempts, lastError: error, nextAttemptAt: dead ? null : new Date(Date.now() + backoff) } },
    );
    this.log.info({ webhook: sub._id, seq: d.seq, attempts, dead, error }, 'webhook delivery failed');
  }

  /** Returns null on a 2xx answer, otherwise what went wrong. */
  private async post(sub: SubscriptionDoc, d: DeliveryDoc, event: LockstepEvent): Promise<string | null> {
    const body = JSON.stringify({ webhookId: sub._id, deliveryId: d._id, event });
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const res = await fetch(sub.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signPayload(sub.secret, timestamp, body),
          'Lockstep-Delivery': d._id,
          'Lockstep-Event-Seq': String(event.seq),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.settings.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? null : `HTTP ${res.status}`;
    } catch (error) {
      return (error as Error).message;
    }
  }
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
