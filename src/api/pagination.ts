/**
 * Cursor pagination over a stable order: every list is sorted by one field and then `_id`, and
 * the cursor is the (value, _id) of the last item, opaque to the caller and bound to the query it
 * came from. Items inserted meanwhile never make an item appear twice or be skipped.
 */
import { createHash } from 'node:crypto';
import { LockstepError } from '../model/errors';

interface CursorBody {
  /** The sort value of the last item (dates as ISO strings). */
  v: string;
  id: string;
  /** Fingerprint of the query, so a cursor cannot be replayed against another one. */
  q: string;
}

export function queryFingerprint(query: unknown): string {
  return createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);
}

export function encodeCursor(value: string, id: string, query: string): string {
  return Buffer.from(JSON.stringify({ v: value, id, q: query } satisfies CursorBody)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined, query: string): { v: string; id: string } | undefined {
  if (cursor === undefined) return undefined;
  let body: Partial<CursorBody>;
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Partial<CursorBody>;
  } catch {
    body = {};
  }
  if (typeof body.v !== 'string' || typeof body.id !== 'string') throw new LockstepError('bad_request', 'query parameter "cursor" is not a cursor this API returned', [{ field: '?cursor', message: 'malformed' }]);
  if (body.q !== query) throw new LockstepError('bad_request', 'this cursor belongs to a different query; keep the other parameters unchanged while paging', [{ field: '?cursor', message: 'query changed' }]);
  return { v: body.v, id: body.id };
}

/**
 * The MongoDB condition "after (v, id)" in the given direction; `andAt`: the item at (v, id) as
 * well (a list whose last page ended partway through that item's own entries, GET /tasks).
 */
export function afterCondition(field: string, after: { v: unknown; id: string }, direction: 1 | -1, andAt = false): Record<string, unknown> {
  const op = direction === 1 ? '$gt' : '$lt';
  return { $or: [{ [field]: { [op]: after.v } }, { [field]: after.v, _id: { [andAt ? `${op}e` : op]: after.id } }] };
}
