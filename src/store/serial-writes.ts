/**
 * FerretDB 1.x applies an update by reading the matching document, changing it in Go and writing
 * the whole document back, with nothing held in between (its update and findAndModify handlers;
 * see FerretDB issue #3040). Two concurrent updates of one document therefore lose one of the two
 * changes: the chain listener recording where a step was sequenced and the data exchange recording
 * its envelope, on the same slot, is exactly that, and a lost field leaves a step undecided.
 *
 * MongoDB does each single-document write atomically, so against it nothing is wrapped. Against
 * FerretDB this process sends its writes one at a time. SQLite accepts one writer at a time in any
 * case, so little is lost. A second process of the party (a replica) writes only inserts and
 * documents of its own (docs/operations.md, "Replicas"): everything that updates shared
 * documents runs on the leading process alone. The same wrapper bounds every command, read or write, in time
 * (COMMAND_TIMEOUT_MS): a restarted FerretDB can leave the driver waiting for good.
 */
import type { Collection, Db, Document } from 'mongodb';

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

/** Totals since start: how many writes went through, how long they waited in line and ran (ms). */
export interface SerialStats {
  writes: number;
  waitMs: number;
  runMs: number;
}

/**
 * How long one command may take before it is abandoned with an error. The driver (mongodb 7.8)
 * can leave a command pending for good: one written to a connection FerretDB closed as it was
 * killed waits for a `drain` that never comes. A write stuck so held every write behind it; a
 * read, the chain listener's pass that made it (the fault suite's database restart froze nodes
 * both ways). No sound command takes half a minute; its caller retries as after any failure.
 */
export const COMMAND_TIMEOUT_MS = 30_000;

/** Reads that answer with a promise, and reads that answer with a cursor. */
const PROMISED_READS = new Set<string>(['findOne', 'countDocuments', 'estimatedDocumentCount', 'distinct']);
const CURSOR_READS = new Set<string>(['find', 'aggregate']);
/** Cursor methods that talk to the server. */
const CURSOR_FETCHES = new Set<string>(['toArray', 'next', 'tryNext', 'hasNext']);

function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs} ms; abandoned`)), timeoutMs);
    timer.unref();
  });
  return Promise.race([work, stuck]).finally(() => clearTimeout(timer));
}

/** A FIFO lock: each task starts once every task queued before it has settled (or timed out). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  /** Kept for the benchmark's profile: the cost of writing one at a time. */
  readonly stats: SerialStats = { writes: 0, waitMs: 0, runMs: 0 };

  constructor(readonly timeoutMs = COMMAND_TIMEOUT_MS) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    const queuedAt = Date.now();
    const timed = async (): Promise<T> => {
      const startedAt = Date.now();
      this.stats.waitMs += startedAt - queuedAt;
      try {
        return await withTimeout(task(), this.timeoutMs, 'a store write');
      } finally {
        this.stats.writes++;
        this.stats.runMs += Date.now() - startedAt;
      }
    };
    const result = this.tail.then(timed, timed);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** True when the server is FerretDB (its buildInfo says so), whose updates are not atomic. */
export async function isFerretDb(db: Db): Promise<boolean> {
  const info = await db.admin().command({ buildInfo: 1 });
  return typeof info.ferretdbVersion === 'string';
}

const serialQueues = new WeakMap<Db, SerialQueue>();

/** The write statistics of a database wrapped by withSerialWrites, or null (MongoDB: not wrapped). */
export function serialStatsOf(db: Db): SerialStats | null {
  return serialQueues.get(db)?.stats ?? null;
}

/**
 * The same database, with every write through `queue`; reads and everything else untouched.
 * Writes to the `outOfLine` collections skip the line (still bounded in time): a process's
 * heartbeat must not lag behind its own backlog, or its replicas would think it gone.
 */
export function withSerialWrites(db: Db, queue = new SerialQueue(), outOfLine: readonly string[] = []): Db {
  const collections = new Map<string, Collection<Document>>();
  const serialDb = new Proxy(db, {
    get(target, property, receiver) {
      if (property !== 'collection') return Reflect.get(target, property, receiver) as unknown;
      return (name: string) => {
        let wrapped = collections.get(name);
        if (!wrapped) {
          wrapped = serialCollection(target.collection(name), outOfLine.includes(name) ? undefined : queue, queue.timeoutMs);
          collections.set(name, wrapped);
        }
        return wrapped;
      };
    },
  });
  serialQueues.set(serialDb, queue);
  return serialDb;
}

/** `queue` undefined: writes go out at once, each bounded in time like a read. */
function serialCollection<T extends Document>(collection: Collection<T>, queue: SerialQueue | undefined, timeoutMs: number): Collection<T> {
  return new Proxy(collection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string' || typeof value !== 'function') return value;
      const method = value as (...a: unknown[]) => unknown;
      if (WRITES.has(property)) {
        if (!queue) return (...args: unknown[]) => withTimeout(method.apply(target, args) as Promise<unknown>, timeoutMs, `a store write (${property})`);
        return (...args: unknown[]) => queue.run(() => method.apply(target, args) as Promise<unknown>);
      }
      if (PROMISED_READS.has(property)) return (...args: unknown[]) => withTimeout(method.apply(target, args) as Promise<unknown>, timeoutMs, `a store read (${property})`);
      if (CURSOR_READS.has(property)) return (...args: unknown[]) => timedCursor(method.apply(target, args) as object, timeoutMs, property);
      return value;
    },
  });
}

/** The cursor, with each fetch from the server bounded; its chained settings return the same wrapper. */
function timedCursor<C extends object>(cursor: C, timeoutMs: number, read: string): C {
  const wrapper: C = new Proxy(cursor, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string' || typeof value !== 'function') return value;
      const method = value as (...a: unknown[]) => unknown;
      if (CURSOR_FETCHES.has(property)) return (...args: unknown[]) => withTimeout(method.apply(target, args) as Promise<unknown>, timeoutMs, `a store read (${read})`);
      return (...args: unknown[]) => {
        const result = method.apply(target, args);
        return result === target ? wrapper : result;
      };
    },
  });
  return wrapper;
}
