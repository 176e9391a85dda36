/**
 * The node's durable event log in MongoDB (FerretDB-compatible: no transactions, no change
 * streams). A sequence number is taken from a counter ($inc), then the event is inserted under
 * it; the event's `key` is unique, so re-emitting a fact (an activity retried, a delivery
 * repeated) records nothing new. A crash between the two leaves a gap, never a duplicate.
 *
 * A fact is not looked up before it is recorded (a command per event, nearly always finding
 * nothing): the insert is tried, and a fact recorded before fails it on the unique key. The number
 * it took is then filled with a void, which readers step over at once rather than waiting at a gap.
 * Facts this process recorded, or found recorded, lately are known without trying.
 *
 * Each event has a key document beside it in the same collection, `_id` the key, so that a fact
 * is looked up by `_id` (FerretDB answers nothing else from an index): written with the event in
 * one ordered insert, one command where two collections took two.
 *
 * Readers must not step over a number that is still being written by a slower emitter: they
 * stop at a gap until it is older than GAP_GRACE_MS, after which it is treated as permanent.
 *
 * On FerretDB the node numbers events itself and spares the counter's write (each FerretDB write
 * waits in the node's one line): from the highest number recorded, counting up in memory. A
 * replica of the party may take a number first (it records the instances it starts); the insert
 * under that `_id` then fails, and the number is read again from the log and the insert retried.
 * Readers learn of the numbers other processes recorded by probing past the last one known.
 */
import { EventEmitter } from 'node:events';
import { MongoBulkWriteError, type Collection, type Db, type WriteError } from 'mongodb';
import type { EventInput, EventType, LockstepEvent } from '../model/event';
import { isDuplicateKey, ignoreDuplicate } from '../store/duplicate-key';

export const GAP_GRACE_MS = 5_000;
/** The `counters` document that marks the log's ids as strings (see renumberLegacyIds). */
const STRING_IDS = 'eventIdsAreStrings';
/** The key suffix of an event copied from a numeric id while the original still holds the key. */
const PROVISIONAL = '\u0000renumbering';
/** Numbers tried for one event before giving up (each collision means a replica emitted meanwhile). */
const MAX_NUMBER_ATTEMPTS = 20;
/** How far past a missing number `head()` looks for events of other processes, every GAP_GRACE_MS. */
const GAP_LOOKAHEAD = 4;
/** How often `head()` looks for numbers other processes recorded (readers poll more often). */
const PROBE_EVERY_MS = 1_000;
/**
 * Events this process recorded last, kept to be read back without a lookup: every WebSocket
 * stream and the webhook dispatcher read each event once, mostly moments after it was recorded.
 */
export const RECENT_EVENTS_KEPT = 2_000;
/** Keys of facts this process recorded or found recorded lately, so that a repeat is refused from memory. */
const KNOWN_KEYS_KEPT = 20_000;
/** The key prefix of a void: the number of a fact found recorded before, filled so that readers do not wait at it. */
const VOID_KEY = '\u0000void:';

/**
 * `_id` is the event's number as a fixed-width decimal string (eventId): FerretDB 1.x reads from
 * an index only a filter that is exactly `{_id: <string or ObjectId>}`; a numeric `_id` made each
 * lookup read and decode the whole log (most of FerretDB's time in the benchmark).
 */
interface EventDoc extends LockstepEvent {
  _id: string;
  key: string;
  recordedAt: Date;
  /** A number taken by a fact found recorded before: no event, read past at once. */
  void?: true;
}

/** Wide enough for Number.MAX_SAFE_INTEGER; string order is number order. */
const ID_DIGITS = 16;

export function eventId(seq: number): string {
  return String(seq).padStart(ID_DIGITS, '0');
}

/**
 * An event's key, in the events collection: `_id` and `key` are KEY_ID_PREFIX and the event's key
 * (`key` too, because the unique index on it counts a missing field as one more null).
 */
interface KeyDoc {
  _id: string;
  key: string;
  seq: number;
}

/** Sorts before every event number (digits), so the highest `_id` is still the last event's. */
const KEY_ID_PREFIX = '#';

function keyDoc(key: string, seq: number): KeyDoc {
  return { _id: KEY_ID_PREFIX + key, key: KEY_ID_PREFIX + key, seq };
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
  /** The same collection as `events`, for key documents and the insert that writes both. */
  private readonly eventsAndKeys: Collection<EventDoc | KeyDoc>;
  /** Where logs written before key documents moved into `events` keep them; read, never written. */
  private readonly legacyKeys: Collection<{ _id: string; seq: number }>;
  /** Wakes in-process readers at once; readers also poll, so other replicas' events are seen too. */
  readonly appended = new EventEmitter();
  /** Numbering itself (FerretDB): the highest number handed out, read back at the first use and after a collision. */
  private issued?: Promise<{ value: number }>;
  /** When `head()` last looked for numbers other processes recorded, and last looked past a missing one (see followOthers). */
  private probedAt = 0;
  private lookedAheadAt = 0;
  /** This process's latest events as stored, by number (insertion order; the oldest dropped first). Stored events never change. */
  private readonly recent = new Map<number, EventDoc>();
  /** Keys this process recorded, or found recorded, lately, with their events' numbers (insertion order; the oldest dropped first). */
  private readonly knownKeys = new Map<string, number>();
  /**
   * Numbers this process has taken and is still writing. Readers stop before the lowest without
   * looking it up: under load a reader woken by one event otherwise asked the database for the
   * next few numbers, still being written, about once per event.
   */
  private readonly writing = new Set<number>();

  constructor(
    db: Db,
    private readonly numbersItself = false,
  ) {
    this.events = db.collection('events');
    this.counters = db.collection('counters');
    this.eventsAndKeys = db.collection('events');
    this.legacyKeys = db.collection('eventKeys');
    this.appended.setMaxListeners(0);
  }

  async ensureIndexes(): Promise<void> {
    await this.events.createIndex({ key: 1 }, { unique: true });
    await this.events.createIndex({ instanceId: 1, _id: 1 });
    await this.renumberLegacyIds();
  }

  /**
   * Logs written before event ids were strings keep their events under numeric `_id`s: each is
   * copied under eventId, then removed. The copy carries a provisional key until the original
   * is gone (keys are unique), so a crash midway leaves at most a copy to finish on the next
   * start. Marked done in `counters`, so later starts read nothing.
   */
  private async renumberLegacyIds(): Promise<void> {
    if (await this.counters.findOne({ _id: STRING_IDS })) return;
    const docs = await this.events.find({}).toArray();
    for (const doc of docs) {
      const legacy = typeof (doc._id as unknown) === 'number';
      if (!legacy && !doc.key.endsWith(PROVISIONAL)) continue;
      const key = legacy ? doc.key : doc.key.slice(0, -PROVISIONAL.length);
      if (legacy) {
        await ignoreDuplicate(this.events.insertOne({ ...doc, _id: eventId(doc.seq), key: key + PROVISIONAL }));
        await this.events.deleteOne({ _id: doc._id });
      }
      await this.events.updateOne({ _id: eventId(doc.seq) }, { $set: { key } });
    }
    await ignoreDuplicate(this.counters.insertOne({ _id: STRING_IDS, value: docs.length }));
  }

  /** Records a fact once; returns its event, or null if it was already recorded. */
  async emit(input: EventInput): Promise<LockstepEvent | null> {
    if (this.knownKeys.has(input.key)) return null;
    for (let attempt = 1; ; attempt++) {
      const seq = await this.takeNumber();
      try {
        const recorded = await this.record(input, seq, attempt);
        if (recorded !== 'number taken') return recorded;
      } finally {
        this.writing.delete(seq);
      }
      // A replica took this number: read the highest again and try the next.
      this.issued = undefined;
    }
  }

  /** Writes the fact under `seq`: its event, null if it was recorded before, or 'number taken' when a replica has the number. */
  private async record(input: EventInput, seq: number, attempt: number): Promise<LockstepEvent | null | 'number taken'> {
    const event: LockstepEvent = {
      seq,
      type: input.type,
      at: new Date().toISOString(),
      ...(input.instanceId ? { instanceId: input.instanceId } : {}),
      ...(input.step ? { step: input.step } : {}),
      ...(input.envelopeHash ? { envelopeHash: input.envelopeHash } : {}),
      data: input.data ?? {},
    };
    const doc: EventDoc = { _id: eventId(seq), key: input.key, recordedAt: new Date(), ...event };
    try {
      // The unique index on `key` is what guarantees once, also after a crash that left the
      // event without its key document. Ordered: the key document only after its event.
      await this.eventsAndKeys.insertMany([doc, keyDoc(input.key, seq)], { ordered: true });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      // The event went in (its unique key admitted it) and only its key document was there: no
      // process writes one without its event, so this is not expected; the event stands.
      if (!failedFirst(error)) {
        this.noteRecorded(doc, event, input.key);
        return event;
      }
      const recorded = await this.numberOf(input.key);
      if (recorded === undefined && this.numbersItself && attempt < MAX_NUMBER_ATTEMPTS) return 'number taken';
      if (recorded === undefined) throw new Error(`event "${input.key}" not recorded: ${MAX_NUMBER_ATTEMPTS} numbers in a row were taken by other processes`);
      // Recorded before: this number stays without an event. Filled, readers go past it at once
      // (a replica that took it meanwhile has filled it already).
      await ignoreDuplicate(this.events.insertOne({ _id: doc._id, seq, key: `${VOID_KEY}${seq}`, recordedAt: new Date(), type: input.type, at: event.at, data: {}, void: true }));
      // Written if missing: a crash between an event and its key document (or a log from before key documents).
      await ignoreDuplicate(this.eventsAndKeys.insertOne(keyDoc(input.key, recorded)));
      this.rememberKey(input.key, recorded);
      return null;
    }
    this.noteRecorded(doc, event, input.key);
    return event;
  }

  private noteRecorded(doc: EventDoc, event: LockstepEvent, key: string): void {
    this.keep(doc);
    this.rememberKey(key, event.seq);
    // Written: readers woken below may read past it (before emit's own clean-up runs).
    this.writing.delete(event.seq);
    this.appended.emit('event', event);
  }

  private keep(doc: EventDoc): void {
    this.recent.set(doc.seq, doc);
    if (this.recent.size > RECENT_EVENTS_KEPT) this.recent.delete(this.recent.keys().next().value!);
  }

  /** The stored event with this number: from memory when this process recorded it lately. */
  private async stored(seq: number): Promise<EventDoc | null> {
    return this.recent.get(seq) ?? (await this.events.findOne({ _id: eventId(seq) }));
  }

  /** The next number, marked as being written (at once: a reader between the two would look it up). */
  private async takeNumber(): Promise<number> {
    if (!this.numbersItself) {
      // MongoDB only (on FerretDB the node numbers events itself): one atomic $inc, read back.
      // eslint-disable-next-line no-restricted-properties
      const counter = await this.counters.findOneAndUpdate({ _id: 'events' }, { $inc: { value: 1 } }, { upsert: true, returnDocument: 'after' });
      this.writing.add(counter!.value);
      return counter!.value;
    }
    const issued = await this.issuedSoFar();
    const seq = ++issued.value;
    this.writing.add(seq);
    return seq;
  }

  /** A number handed out whose event was never written (a crash) may be handed out again: no reader saw it. */
  private issuedSoFar(): Promise<{ value: number }> {
    this.issued ??= (async () => {
      const counter = (await this.counters.findOne({ _id: 'events' }))?.value ?? 0;
      // Key documents sort first (KEY_ID_PREFIX): the highest `_id` is the last event's.
      const [last] = await this.events.find({}).sort({ _id: -1 }).limit(1).toArray();
      return { value: Math.max(counter, last?.seq ?? 0) };
    })();
    // A failed read is tried again on the next use.
    this.issued.catch(() => (this.issued = undefined)).catch(() => undefined);
    return this.issued;
  }

  /** The number of the event recorded under `key`, if any (key documents first: `_id` lookups; then the events themselves). */
  private async numberOf(key: string): Promise<number | undefined> {
    const known = await this.keyDocument(key);
    if (known) return known.seq;
    return (await this.events.findOne({ key }))?.seq;
  }

  private async keyDocument(key: string): Promise<{ seq: number } | null> {
    return (await this.eventsAndKeys.findOne({ _id: KEY_ID_PREFIX + key })) ?? (await this.legacyKeys.findOne({ _id: key }));
  }

  private rememberKey(key: string, seq: number): void {
    if (this.knownKeys.size >= KNOWN_KEYS_KEPT) this.knownKeys.delete(this.knownKeys.keys().next().value!);
    this.knownKeys.set(key, seq);
  }

  /** Whether this process recorded the fact with this key, or found it recorded, lately: from memory alone. */
  recordedLately(key: string): boolean {
    return this.knownKeys.has(key);
  }

  /** The event this process recorded under `key`, while it still holds it (RECENT_EVENTS_KEPT): from memory alone. */
  recentEvent(key: string): LockstepEvent | undefined {
    const seq = this.knownKeys.get(key);
    const doc = seq === undefined ? undefined : this.recent.get(seq);
    return doc?.key === key ? toEvent(doc) : undefined;
  }

  /** Whether the fact with this key is recorded. A crash between writing an event and its key leaves the key out until that fact is emitted again. */
  async has(key: string): Promise<boolean> {
    return this.knownKeys.has(key) || (await this.keyDocument(key)) !== null;
  }

  /** Highest number handed out so far (0 when none). */
  async head(): Promise<number> {
    if (!this.numbersItself) return (await this.counters.findOne({ _id: 'events' }))?.value ?? 0;
    const issued = await this.issuedSoFar();
    await this.followOthers(issued);
    return issued.value;
  }

  /**
   * Where a reader that starts now begins: after the highest number handed out, but before any
   * this process is still writing. Starting at `head()` would skip for good an event whose number
   * was taken before and whose write lands after; this may instead hand such a reader a few
   * events recorded just before it started.
   */
  async readerStart(): Promise<number> {
    return Math.min(await this.head(), this.firstWriting() - 1);
  }

  /**
   * Replicas of the party number events too: moves past the numbers they recorded after this
   * process's own, probing the next number (one `_id` lookup), and now and then a few more, to
   * step over a number a crashed process took and never wrote.
   */
  private async followOthers(issued: { value: number }): Promise<void> {
    // Readers call this on every poll; other processes' events may wait a moment to be seen.
    if (Date.now() - this.probedAt < PROBE_EVERY_MS) return;
    this.probedAt = Date.now();
    let window = 1;
    if (Date.now() - this.lookedAheadAt > GAP_GRACE_MS) {
      this.lookedAheadAt = Date.now();
      window = GAP_LOOKAHEAD;
    }
    for (let k = 1; k <= window; k++) {
      const seq = issued.value + k;
      if (!(await this.events.findOne({ _id: eventId(seq) }))) continue;
      // Not `+=`: an emit of this process may have taken numbers meanwhile.
      issued.value = Math.max(issued.value, seq);
      k = 0;
    }
  }

  /**
   * Events after `after`, in order, up to `limit`, stopping before a gap that may still fill.
   * Returns the events that match `filter` and the number a reader has safely read up to.
   */
  async readAfter(after: number, limit: number, filter: EventFilter = {}): Promise<{ events: LockstepEvent[]; readTo: number }> {
    // Read by number, one `{_id}` lookup each (FerretDB answers no range query from an index),
    // up to the highest number handed out, and before any this process is still writing.
    const last = Math.min(await this.head(), after + limit, this.firstWriting() - 1);
    const events: LockstepEvent[] = [];
    let readTo = after;
    const settled = Date.now() - GAP_GRACE_MS;
    let gapSince: number | undefined;
    for (let seq = after + 1; seq <= last; seq++) {
      const doc = await this.stored(seq);
      if (!doc) {
        gapSince ??= seq;
        continue;
      }
      // A hole before this event: step over it only once this later event is old enough that
      // the hole's writer must have died.
      if (gapSince !== undefined && doc.recordedAt.getTime() > settled) break;
      gapSince = undefined;
      readTo = doc.seq;
      if (!doc.void && matches(doc, filter)) events.push(toEvent(doc));
    }
    return { events, readTo };
  }

  /** The lowest number this process is still writing (Infinity when none). */
  private firstWriting(): number {
    let first = Infinity;
    for (const seq of this.writing) if (seq < first) first = seq;
    return first;
  }

  async get(seq: number): Promise<LockstepEvent | null> {
    const doc = await this.stored(seq);
    return doc && !doc.void ? toEvent(doc) : null;
  }
}

/** Whether the ordered insert of an event and its key document failed at the event (so wrote nothing). */
function failedFirst(error: unknown): boolean {
  if (!(error instanceof MongoBulkWriteError)) return true;
  const [first] = ([] as WriteError[]).concat(error.writeErrors);
  return first === undefined || first.index === 0;
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
