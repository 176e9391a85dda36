/**
 * A duplicate key (E11000) is how MongoDB and FerretDB alike say "already there": an insert under
 * a unique `_id` or index lost to another writer, or repeated. Many writes here count on it.
 */
import { MongoServerError } from 'mongodb';

const DUPLICATE_KEY = 11000;

export function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY;
}

/** Awaits a write; false (instead of an error) when the document was already there. */
export async function ignoreDuplicate(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    return false;
  }
}
