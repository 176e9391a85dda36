/**
 * The node's durable event log in MongoDB (FerretDB-compatible: no transactions, no change
 * streams). A sequence number is taken from a counter ($inc), then the event is inserted under
 * it; the event's `key` is unique, so re-emitting a fact (an activity retried, a delivery
 * repeated) changes nothing. A crash between the two leaves a gap, never a duplicate.
 *
 * Readers must not step over a number that is still being written by a slower emitter: they
 * stop at a gap until it is older than GAP_GRACE_MS, after which it is treated as permanent.
 *
 * On FerretDB the node is the database's only writer (one process per party database, see
 * docs/operations.md), so there it numbers events itself, from the highest number recorded when
 * it started, and spares the counter's write: each FerretDB write waits in the node's one line.
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

/** `_id` is an event's key: FerretDB answers only `{_id}` lookups from an index, so dedupe goes here. */
interface KeyDoc {
  _id: string;
  seq: number;
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
  private readonly keys: Collection<KeyDoc>;
  /** Wakes in-process readers at once; readers also poll, so other replicas' events are seen too. */
  readonly appended = new EventEmitter();
  /** Only writer (FerretDB): the highest number handed out, once read back at the first use. */
  private issued?: Promise<{ value: number }>;

  constructor(
    db: Db,
    private readonly onlyWriter = false,
  ) {
    this.events = db.collection('events');
    this.counters = db.collection('counters');
    this.keys = db.collection('eventKeys');
    this.appended.setMaxListeners(0);
  }

  async ensureIndexes(): Promise<void> {
    await this.events.createIndex({ key: 1 }, { unique: true });
    await this.events.createIndex({ instanceId: 1, _id: 1 });
  }

  /** Records a fact once; returns its event, or null if it was already recorded. */
  async emit(input: EventInput): Promise<LockstepEvent | null> {
    if (await this.keys.findOne({ _id: input.key })) return null;
    const seq = await this.nextNumber();
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
      // The unique index on `key` is what guarantees once, also after a crash before the key below.
      await this.events.insertOne({ _id: seq, key: input.key, recordedAt: new Date(), ...event });
    } catch (error) {
      // Another emitter recorded the same fact first: our number stays a gap.
      if (error instanceof MongoServerError && error.code === DUPLICATE_KEY) {
        await this.rememberKey(input.key, seq);
        return null;
      }
      throw error;
    }
    await this.rememberKey(input.key, seq);
    this.appended.emit('event', event);
    return event;
  }

  private async nextNumber(): Promise<number> {
    if (!this.onlyWriter) {
      // MongoDB only (on FerretDB the node numbers events itself): one atomic $inc, read back.
      // eslint-disable-next-line no-restricted-properties
      const counter = await this.counters.findOneAndUpdate({ _id: 'events' }, { $inc: { value: 1 } }, { upsert: true, returnDocument: 'after' });
      return counter!.value;
    }
    const issued = await this.issuedSoFar();
    return ++issued.value;
  }

  /** A number handed out whose event was never written (a crash) may be handed out again: no reader saw it. */
  private issuedSoFar(): Promise<{ value: number }> {
    this.issued ??= (async () => {
      const counter = (await this.counters.findOne({ _id: 'events' }))?.value ?? 0;
      const [last] = await this.events.find({}).sort({ _id: -1 }).limit(1).toArray();
      return { value: Math.max(counter, last?._id ?? 0) };
    })();
    // A failed read is tried again on the next use.
    this.issued.catch(() => (this.issued = undefined)).catch(() => undefined);
    return this.issued;
  }

  private async rememberKey(key: string, seq: number): Promise<void> {
    try {
      await this.keys.insertOne({ _id: key, seq });
    } catch (error) {
      if (!(error instanceof MongoServerError && error.code === DUPLICATE_KEY)) throw error;
    }
  }

  /** Whether the fact with this key is recorded. A crash between writing an event and its key leaves the key out until that fact is emitted again. */
  async has(key: string): Promise<boolean> {
    return (await this.keys.findOne({ _id: key })) !== null;
  }

  /** Highest number handed out so far (0 when none). */
  async head(): Promise<number> {
    if (this.onlyWriter) return (await this.issuedSoFar()).value;
    return (await this.counters.findOne({ _id: 'events' }))?.value ?? 0;
  }

  /**
   * Events after `after`, in order, up to `limit`, stopping before a gap that may still fill.
   * Returns the events that match `filter` and the number a reader has safely read up to.
   */
  async readAfter(after: number, limit: number, filter: EventFilter = {}): Promise<{ events: LockstepEvent[]; readTo: number }> {
    // Read by number, one `{_id}` lookup each (FerretDB answers no range query from an index),
    // up to the highest number handed out.
    const last = Math.min(await this.head(), after + limit);
    const events: LockstepEvent[] = [];
    let readTo = after;
    const settled = Date.now() - GAP_GRACE_MS;
    let gapSince: number | undefined;
    for (let seq = after + 1; seq <= last; seq++) {
      const doc = await this.events.findOne({ _id: seq });
      if (!doc) {
        gapSince ??= seq;
        continue;
      }
      // A hole before this event: step over it only once this later event is old enough that
      // the hole's writer must have died.
      if (gapSince !== undefined && doc.recordedAt.getTime() > settled) break;
      gapSince = undefined;
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
