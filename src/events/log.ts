/**
 * The node's durable event log in MongoDB (FerretDB-compatible: no transactions, no change
 * streams). A sequence number is taken from a counter ($inc), then the event is inserted under
 * it; the event's `key` is unique, so re-emitting a fact (an activity retried, a delivery
 * repeated) changes nothing. A crash between the two leaves a gap, never a duplicate.
 *
 * Readers must not step over a number that is still being written by a slower emitter: they
 * stop at a gap until it is older than GAP_GRACE_MS, after which it is treated as permanent.
 */
import { EventEmitter } from 'node:events';
import { MongoServerError, type Collection, type Db } from 'mongodb';
import type { EventInput, EventType, LockstepEvent } from '../model/event';

const DUPLICATE_KEY = 11000;
export const GAP_GRACE_MS = 5_000;

interface EventDoc extends LockstepEvent {
  _id: number;
  key: string;
  recordedAt: Date;
}

interface CounterDoc {
  _id: string;
  value: number;
}

export interface EventFilter {
  types?: EventType[];
  instanceId?: string;
}

export class EventLog {
  private readonly events: Collection<EventDoc>;
  private readonly counters: Collection<CounterDoc>;
  /** Wakes in-process readers at once; readers also poll, so other replicas' events are seen too. */
  readonly appended = new EventEmitter();

  constructor(db: Db) {
    this.events = db.collection('events');
    this.counters = db.collection('counters');
    this.appended.setMaxListeners(0);
  }

  async ensureIndexes(): Promise<void> {
    await this.events.createIndex({ key: 1 }, { unique: true });
    await this.events.createIndex({ instanceId: 1, _id: 1 });
  }

  /** Records a fact once; returns its event, or null if it was already recorded. */
  async emit(input: EventInput): Promise<LockstepEvent | null> {
    if (await this.events.findOne({ key: input.key }, { projection: { _id: 1 } })) return null;
    const counter = await this.counters.findOneAndUpdate({ _id: 'events' }, { $inc: { value: 1 } }, { upsert: true, returnDocument: 'after' });
    const seq = counter!.value;
    const event: LockstepEvent = {
      seq,
      type: input.type,
      at: new Date().toISOString(),
      ...(input.instanceId ? { instanceId: input.instanceId } : {}),
      ...(input.step ? { step: input.step } : {}),
      ...(input.envelopeHash ? { envelopeHash: input.envelopeHash } : {}),
      data: input.data ?? {},
    };
    try {
      await this.events.insertOne({ _id: seq, key: input.key, recordedAt: new Date(), ...event });
    } catch (error) {
      // Another emitter recorded the same fact first: our number stays a gap.
      if (error instanceof MongoServerError && error.code === DUPLICATE_KEY) return null;
      throw error;
    }
    this.appended.emit('event', event);
    return event;
  }

  /** Whether the fact with this key is recorded. */
  async has(key: string): Promise<boolean> {
    return (await this.events.findOne({ key }, { projection: { _id: 1 } })) !== null;
  }

  /** Highest number handed out so far (0 when none). */
  async head(): Promise<number> {
    return (await this.counters.findOne({ _id: 'events' }))?.value ?? 0;
  }

  /**
   * Events after `after`, in order, up to `limit`, stopping before a gap that may still fill.
   * Returns the events that match `filter` and the number a reader has safely read up to.
   */
  async readAfter(after: number, limit: number, filter: EventFilter = {}): Promise<{ events: LockstepEvent[]; readTo: number }> {
    const docs = await this.events.find({ _id: { $gt: after } }).sort({ _id: 1 }).limit(limit).toArray();
    const events: LockstepEvent[] = [];
    let readTo = after;
    const settled = Date.now() - GAP_GRACE_MS;
    for (const doc of docs) {
      if (doc._id !== readTo + 1 && doc.recordedAt.getTime() > settled) break;
      readTo = doc._id;
      if (matches(doc, filter)) events.push(toEvent(doc));
    }
    return { events, readTo };
  }

  async get(seq: number): Promise<LockstepEvent | null> {
    const doc = await this.events.findOne({ _id: seq });
    return doc ? toEvent(doc) : null;
  }
}

export function matches(event: LockstepEvent, filter: EventFilter): boolean {
  if (filter.types && filter.types.length > 0 && !filter.types.includes(event.type)) return false;
  if (filter.instanceId && event.instanceId !== filter.instanceId) return false;
  return true;
}

function toEvent(doc: EventDoc): LockstepEvent {
  const { seq, type, at, instanceId, step, envelopeHash, data } = doc;
  return { seq, type, at, ...(instanceId ? { instanceId } : {}), ...(step ? { step } : {}), ...(envelopeHash ? { envelopeHash } : {}), data };
}
