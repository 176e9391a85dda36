/**
 * FerretDB 1.x applies an update by reading the matching document, changing it in Go and writing
 * the whole document back, with nothing held in between (its update and findAndModify handlers;
 * see FerretDB issue #3040). Two concurrent updates of one document therefore lose one of the two
 * changes: the chain listener recording where a step was sequenced and the data exchange recording
 * its envelope, on the same slot, is exactly that, and a lost field leaves a step undecided.
 *
 * MongoDB does each single-document write atomically, so against it writes need no line. Against
 * FerretDB this process sends its writes to any one document one at a time, through one line
 * (WriteLine): writes to different documents go side by side, a write that may touch documents
 * not known from its arguments goes alone. A second process of the party (a replica) writes only inserts and
 * documents of its own (docs/operations.md, "Replicas"): everything that updates shared
 * documents runs on the leading process alone. The same wrapper bounds every command, read or write, in time
 * (COMMAND_TIMEOUT_MS): a restarted FerretDB can leave the driver waiting for good, and so can any
 * server that drops a connection, so on MongoDB every command is bounded too (withBoundedCommands).
 */
import { ObjectId, type Collection, type Db, type Document } from 'mongodb';
import { StoreUnavailableError } from './unavailable';

/** Collection methods that write (each is one or more read-modify-write cycles on FerretDB). */
const WRITES = new Set<string>([
  'insertOne',
  'insertMany',
  'updateOne',
  'updateMany',
  'replaceOne',
  'deleteOne',
  'deleteMany',
  'findOneAndUpdate',
  'findOneAndReplace',
  'findOneAndDelete',
  'bulkWrite',
]);

/**
 * Totals since start: how many writes went through, how long they waited in line and ran, and
 * how long the line had a write under way (ms); and now: how many writes wait for their turn,
 * and how long the first of them has waited (ms).
 */
export interface SerialStats {
  writes: number;
  waitMs: number;
  runMs: number;
  busyMs: number;
  queued: number;
  oldestWaitMs: number;
}

/**
 * How long one command may take before it is abandoned with an error. The driver (mongodb 7.8)
 * can leave a command pending for good: one written to a connection FerretDB closed as it was
 * killed waits for a `drain` that never comes. A write stuck so held every write behind it; a
 * read, the chain listener's pass that made it (the fault suite's database restart froze nodes
 * both ways). No sound command takes half a minute; its caller retries as after any failure.
 * An abandoned command is aborted in the driver too (its `signal` option), which closes its
 * connection: left alone, a command that never ends keeps its connection checked out of the
 * pool for good, and once a few have, every later command waits for a connection until it too
 * is abandoned (the soak run's node whose writes waited 24 s each after a database restart).
 */
export const COMMAND_TIMEOUT_MS = 30_000;

/** Reads that answer with a promise, and reads that answer with a cursor. */
const PROMISED_READS = new Set<string>(['findOne', 'countDocuments', 'estimatedDocumentCount', 'distinct']);
const CURSOR_READS = new Set<string>(['find', 'aggregate']);
/** Cursor methods that talk to the server. */
const CURSOR_FETCHES = new Set<string>(['toArray', 'next', 'tryNext', 'hasNext']);

/** Where each bounded method takes its options (the driver's `Abortable` among them). */
const OPTIONS_AT: Record<string, number> = {
  insertOne: 1,
  insertMany: 1,
  updateOne: 2,
  updateMany: 2,
  replaceOne: 2,
  deleteOne: 1,
  deleteMany: 1,
  findOneAndUpdate: 2,
  findOneAndReplace: 2,
  findOneAndDelete: 1,
  bulkWrite: 1,
  findOne: 1,
  countDocuments: 1,
  estimatedDocumentCount: 0,
  distinct: 2,
  find: 1,
  aggregate: 1,
};

/** The call's arguments with `signal` added to its options (the method's defaults stand in for arguments left out). */
export function withSignal(method: string, args: readonly unknown[], signal: AbortSignal): unknown[] {
  const at = OPTIONS_AT[method];
  if (at === undefined) return [...args];
  const out = [...args];
  while (out.length < at) out.push(undefined);
  const options = (out[at] ?? {}) as { signal?: AbortSignal };
  out[at] = { ...options, signal: options.signal ? AbortSignal.any([options.signal, signal]) : signal };
  return out;
}

/**
 * Runs `work` with a signal that aborts when `timeoutMs` passes, and rejects then (the driver
 * may take its time to notice the abort, or never, as when the signal reached no command).
 */
function withTimeout<T>(work: (signal: AbortSignal) => Promise<T>, timeoutMs: number, what: string, abort = new AbortController()): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new StoreUnavailableError(`${what} did not finish within ${timeoutMs} ms; abandoned`);
      abort.abort(error);
      reject(error);
    }, timeoutMs);
    timer.unref();
  });
  return Promise.race([Promise.resolve().then(() => work(abort.signal)), stuck]).finally(() => clearTimeout(timer));
}

/** A write's footprint: the documents it may change (collection and `_id`), or ALL when that is not known from its arguments. */
export type WriteKeys = readonly string[] | typeof ALL;
export const ALL = 'all';

/** How many writes to different documents one process has at FerretDB at once. */
const PARALLEL_WRITES = 4;

interface QueuedWrite {
  keys: WriteKeys;
  queuedAt: number;
  start(): void;
  /** Fails the write without running it. */
  drop(error: Error): void;
}

/**
 * The process's line of writes: writes to one document go one at a time, in the order they were
 * asked for, and a write whose documents are not known (ALL) goes alone, after everything asked
 * before it and before everything asked after it; writes to different documents go side by side,
 * up to `parallel` at once. FerretDB's lost updates are per document (module comment), and its
 * SQLite backend takes one write transaction at a time anyway, but the rest of a write (the
 * driver, the wire, FerretDB's own decoding and its read before the update) overlaps.
 */
export class WriteLine {
  private readonly queue: QueuedWrite[] = [];
  /** Documents with a write under way (at most one write per document at a time). */
  private readonly busyKeys = new Set<string>();
  private running = 0;
  private alone = false;
  private busySince = 0;
  private readonly totals = { writes: 0, waitMs: 0, runMs: 0, busyMs: 0 };

  constructor(
    readonly timeoutMs = COMMAND_TIMEOUT_MS,
    readonly parallel = PARALLEL_WRITES,
  ) {}

  /** How long writes waited and ran, and how long the line had any under way, so far (the benchmark's profile); and the backlog now (load shedding). */
  get stats(): SerialStats {
    const now = Date.now();
    const ongoing = this.running > 0 ? now - this.busySince : 0;
    // The queue keeps the order writes were asked for: its head has waited longest.
    const oldestWaitMs = this.queue.length > 0 ? now - this.queue[0]!.queuedAt : 0;
    return { ...this.totals, busyMs: this.totals.busyMs + ongoing, queued: this.queue.length, oldestWaitMs };
  }

  /** Runs `task` once its turn comes (see the class comment); ALL by default: after everything before it, alone. Its signal aborts when the write is abandoned. */
  run<T>(task: (signal: AbortSignal) => Promise<T>, keys: WriteKeys = ALL): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const write: QueuedWrite = {
        keys,
        queuedAt: Date.now(),
        start: () => {
          const startedAt = Date.now();
          this.totals.waitMs += startedAt - write.queuedAt;
          this.began(write);
          withTimeout(task, this.timeoutMs, 'a store write')
            .then(resolve, reject)
            .finally(() => {
              this.totals.writes++;
              this.totals.runMs += Date.now() - startedAt;
              this.ended(write);
            });
        },
        drop: reject,
      };
      this.queue.push(write);
      this.pump();
    });
  }

  /**
   * Fails every write that has not begun, without running it (as if the database had refused it),
   * and returns how many. Writes under way run on. For a process that stops leading: the work its
   * backlog belongs to is retried by whoever leads next, and waiting for that backlog to drain
   * would keep its step-down, and so its next campaign, waiting for minutes.
   */
  dropQueued(why: string): number {
    const dropped = this.queue.splice(0);
    for (const write of dropped) write.drop(new StoreUnavailableError(`a store write was not made: ${why}`));
    return dropped.length;
  }

  /** Starts every queued write whose turn has come, front to back. */
  private pump(): void {
    // Documents of writes still waiting: a later write to one of them waits too (one document's writes keep their order).
    const held = new Set<string>();
    for (let i = 0; i < this.queue.length && this.running < this.parallel && !this.alone; ) {
      const write = this.queue[i]!;
      if (write.keys === ALL) {
        if (i === 0 && this.running === 0) {
          this.queue.shift();
          write.start();
        }
        return; // nothing passes a write that must go alone
      }
      if (write.keys.some((key) => this.busyKeys.has(key) || held.has(key))) {
        for (const key of write.keys) held.add(key);
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      write.start();
    }
  }

  private began(write: QueuedWrite): void {
    if (this.running++ === 0) this.busySince = Date.now();
    if (write.keys === ALL) this.alone = true;
    else for (const key of write.keys) this.busyKeys.add(key);
  }

  private ended(write: QueuedWrite): void {
    if (--this.running === 0) this.totals.busyMs += Date.now() - this.busySince;
    if (write.keys === ALL) this.alone = false;
    else for (const key of write.keys) this.busyKeys.delete(key);
    this.pump();
  }
}

/** True when the server is FerretDB (its buildInfo says so), whose updates are not atomic. */
export async function isFerretDb(db: Db): Promise<boolean> {
  const info = await db.admin().command({ buildInfo: 1 });
  return typeof info.ferretdbVersion === 'string';
}

const writeLines = new WeakMap<Db, WriteLine>();

/** The write statistics of a database wrapped by withSerialWrites, or null (MongoDB: not wrapped). */
export function serialStatsOf(db: Db): SerialStats | null {
  return writeLines.get(db)?.stats ?? null;
}

/** Fails the writes of a database wrapped by withSerialWrites that have not begun (WriteLine.dropQueued); 0 on MongoDB (no line). */
export function dropQueuedWrites(db: Db, why: string): number {
  return writeLines.get(db)?.dropQueued(why) ?? 0;
}

/**
 * The same database, with every write through `line` and every command bounded in time. A
 * process's heartbeat must not lag behind its own backlog, or its replicas would think it gone:
 * heartbeats and leadership go through withBoundedCommands instead, on a pool of their own.
 */
export function withSerialWrites(db: Db, line = new WriteLine()): Db {
  const serialDb = wrapCollections(db, () => line, line.timeoutMs);
  writeLines.set(serialDb, line);
  return serialDb;
}

/**
 * The same database with every command bounded in time and no write line: on MongoDB, whose
 * writes are atomic, and on either server for collections whose every document has one writer
 * (a process's heartbeat, leadership generations), reached through a connection pool of their
 * own (store.ts, `pulse`).
 */
export function withBoundedCommands(db: Db, timeoutMs = COMMAND_TIMEOUT_MS): Db {
  return wrapCollections(db, () => undefined, timeoutMs);
}

function wrapCollections(db: Db, lineFor: (collection: string) => WriteLine | undefined, timeoutMs: number): Db {
  const collections = new Map<string, Collection<Document>>();
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property !== 'collection') return Reflect.get(target, property, receiver) as unknown;
      return (name: string) => {
        let wrapped = collections.get(name);
        if (!wrapped) {
          wrapped = serialCollection(target.collection(name), lineFor(name), timeoutMs);
          collections.set(name, wrapped);
        }
        return wrapped;
      };
    },
  });
}

/** `line` undefined: writes go out at once, each bounded in time like a read. */
function serialCollection<T extends Document>(collection: Collection<T>, line: WriteLine | undefined, timeoutMs: number): Collection<T> {
  return new Proxy(collection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string' || typeof value !== 'function') return value;
      const method = value as (...a: unknown[]) => unknown;
      const call = (args: unknown[]) => (signal: AbortSignal) => method.apply(target, withSignal(property, args, signal)) as Promise<unknown>;
      if (WRITES.has(property)) {
        if (!line) return (...args: unknown[]) => withTimeout(call(args), timeoutMs, `a store write (${property})`);
        return (...args: unknown[]) => line.run(call(args), writeKeys(target.collectionName, property, args));
      }
      if (PROMISED_READS.has(property)) return (...args: unknown[]) => withTimeout(call(args), timeoutMs, `a store read (${property})`);
      if (CURSOR_READS.has(property)) {
        return (...args: unknown[]) => {
          // One signal for the cursor's life: a fetch abandoned aborts the cursor (and its connection).
          const abort = new AbortController();
          return timedCursor(method.apply(target, withSignal(property, args, abort.signal)) as object, timeoutMs, property, abort);
        };
      }
      return value;
    },
  });
}

/** A document's key in the write line: its collection and `_id`. */
function documentKey(collection: string, id: unknown): string | undefined {
  if (typeof id === 'string' || typeof id === 'number') return `${collection}\u0000${typeof id}:${id}`;
  if (id instanceof ObjectId) return `${collection}\u0000oid:${id.toHexString()}`;
  return undefined;
}

/** The `_id` a filter pins down to one document, if it does (anything else may match several). */
function filterKey(collection: string, filter: unknown): string | undefined {
  return typeof filter === 'object' && filter !== null ? documentKey(collection, (filter as { _id?: unknown })._id) : undefined;
}

/**
 * The documents a write may change, read from its arguments; ALL when they cannot be (a filter
 * not by one `_id`, updateMany, deleteMany). An insert without an `_id` gets a fresh one: no
 * other write can touch that document, so it names none.
 */
export function writeKeys(collection: string, method: string, args: readonly unknown[]): WriteKeys {
  const keys: string[] = [];
  const add = (key: string | undefined): boolean => (key === undefined ? false : (keys.push(key), true));
  const inserted = (doc: unknown): boolean => {
    const id = (doc as { _id?: unknown } | undefined)?._id;
    return id === undefined || add(documentKey(collection, id));
  };
  switch (method) {
    case 'insertOne':
      return inserted(args[0]) ? keys : ALL;
    case 'insertMany':
      return Array.isArray(args[0]) && args[0].every(inserted) ? keys : ALL;
    case 'updateOne':
    case 'replaceOne':
    case 'deleteOne':
    case 'findOneAndUpdate':
    case 'findOneAndReplace':
    case 'findOneAndDelete':
      return add(filterKey(collection, args[0])) ? keys : ALL;
    case 'bulkWrite': {
      const ops = args[0];
      if (!Array.isArray(ops)) return ALL;
      const known = ops.every((op: Record<string, { filter?: unknown; document?: unknown } | undefined>) => {
        if (op.insertOne) return inserted(op.insertOne.document);
        const single = op.updateOne ?? op.replaceOne ?? op.deleteOne;
        return single !== undefined && add(filterKey(collection, single.filter));
      });
      return known ? keys : ALL;
    }
    default:
      return ALL;
  }
}

/** The cursor, with each fetch from the server bounded; its chained settings return the same wrapper. */
function timedCursor<C extends object>(cursor: C, timeoutMs: number, read: string, abort: AbortController): C {
  const wrapper: C = new Proxy(cursor, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string' || typeof value !== 'function') return value;
      const method = value as (...a: unknown[]) => unknown;
      if (CURSOR_FETCHES.has(property)) return (...args: unknown[]) => withTimeout(() => method.apply(target, args) as Promise<unknown>, timeoutMs, `a store read (${read})`, abort);
      return (...args: unknown[]) => {
        const result = method.apply(target, args);
        return result === target ? wrapper : result;
      };
    },
  });
  return wrapper;
}
