/**
 * FerretDB 1.x applies an update by reading the matching document, changing it in Go and writing
 * the whole document back, with nothing held in between (its update and findAndModify handlers;
 * see FerretDB issue #3040). Two concurrent updates of one document therefore lose one of the two
 * changes: the chain listener recording where a step was sequenced and the data exchange recording
 * its envelope, on the same slot, is exactly that, and a lost field leaves a step undecided.
 *
 * MongoDB does each single-document write atomically, so against it nothing is wrapped. Against
 * FerretDB this process sends its writes one at a time. SQLite accepts one writer at a time in any
 * case, so little is lost; what remains unprotected is a second process writing the same
 * database, which is why a party runs one node process per database on FerretDB
 * (docs/operations.md).
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
 * How long one write may take before the line moves on without it. The driver (mongodb 7.8) can
 * leave a write pending for good: one sent on a connection FerretDB closed as it was killed waits
 * for a `drain` that never comes, and every write behind it waited too (the fault suite's
 * database restart froze a node that way). No sound write takes half a minute; this one is abandoned
 * with an error, and its caller retries as after any failed write.
 */
export const WRITE_TIMEOUT_MS = 30_000;

/** A FIFO lock: each task starts once every task queued before it has settled (or timed out). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  /** Kept for the benchmark's profile: the cost of writing one at a time. */
  readonly stats: SerialStats = { writes: 0, waitMs: 0, runMs: 0 };

  constructor(private readonly timeoutMs = WRITE_TIMEOUT_MS) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    const queuedAt = Date.now();
    const timed = async (): Promise<T> => {
      const startedAt = Date.now();
      this.stats.waitMs += startedAt - queuedAt;
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`a store write did not finish within ${this.timeoutMs} ms; abandoned`)), this.timeoutMs);
        timer.unref();
      });
      try {
        return await Promise.race([task(), stuck]);
      } finally {
        clearTimeout(timer);
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

/** The same database, with every write through `queue`; reads and everything else untouched. */
export function withSerialWrites(db: Db, queue = new SerialQueue()): Db {
  const collections = new Map<string, Collection<Document>>();
  const serialDb = new Proxy(db, {
    get(target, property, receiver) {
      if (property !== 'collection') return Reflect.get(target, property, receiver) as unknown;
      return (name: string) => {
        let wrapped = collections.get(name);
        if (!wrapped) {
          wrapped = serialCollection(target.collection(name), queue);
          collections.set(name, wrapped);
        }
        return wrapped;
      };
    },
  });
  serialQueues.set(serialDb, queue);
  return serialDb;
}

function serialCollection<T extends Document>(collection: Collection<T>, queue: SerialQueue): Collection<T> {
  return new Proxy(collection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string' || !WRITES.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]) => queue.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
    },
  });
}
