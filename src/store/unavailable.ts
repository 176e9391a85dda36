/**
 * Errors that mean "the database cannot be reached or did not answer just now", as opposed to a
 * refusal of the request or a fault in the node: the connection dropped, no server could be
 * selected, the pool had no connection to give, the node is reconnecting its client, or the node
 * itself gave up on a command (its time bound) or dropped it (a step-down). A request that meets one is worth retrying as it is, so the
 * REST API and the data exchange answer it with 503, not 500.
 */
import { MongoBulkWriteError, MongoNetworkError, MongoNotConnectedError, MongoServerSelectionError, MongoTopologyClosedError } from 'mongodb';

/** A command the node abandoned after its time bound, or a write it dropped without sending (serial-writes.ts). */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

/** The driver's error for a pool with no free connection in time; not exported by the driver, so known by its name. */
const WAIT_QUEUE_TIMEOUT = 'MongoWaitQueueTimeoutError';

export function isStoreUnavailable(error: unknown): boolean {
  return (
    error instanceof StoreUnavailableError ||
    error instanceof MongoNetworkError || // the pool cleared after a dropped connection included
    error instanceof MongoServerSelectionError ||
    // The client is being reconnected (stuck-monitor.ts): closed, or not connected again yet.
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoNotConnectedError ||
    (error instanceof Error && error.name === WAIT_QUEUE_TIMEOUT) ||
    // A bulk write (insertMany) wraps what failed it: a dropped connection is still one.
    (error instanceof MongoBulkWriteError && error.errorResponse instanceof Error && isStoreUnavailable(error.errorResponse))
  );
}
