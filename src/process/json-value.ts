/**
 * Limits on JSON values from outside (request bodies, and step data that reaches a workflow some
 * other way, such as the Temporal UI): a nesting depth every recursive consumer survives
 * (canonical hashing, JSON.stringify into Temporal payloads, BSON), and well-formed Unicode,
 * since a lone surrogate stored as UTF-8 becomes U+FFFD and no longer matches its hash. Pure: the
 * workflow uses it too.
 */
import type { FieldError } from '../model/errors';

/** Deeper than any business document needs, shallow enough for every recursive consumer. */
export const MAX_JSON_DEPTH = 64;

/** With the u flag a surrogate pair is one code point, so this matches only unpaired halves. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** The first problem in a parsed JSON value: too deep, or a string or key that is not well-formed. */
export function jsonValueProblem(body: unknown): FieldError | undefined {
  // An explicit stack, not recursion: the point is to survive bodies nested thousands deep.
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value: body, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) return { field: path || '/', message: 'contains a lone UTF-16 surrogate (not well-formed Unicode)' };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) return { field: path.slice(0, 200) || '/', message: `nested deeper than ${MAX_JSON_DEPTH} levels` };
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      if (LONE_SURROGATE.test(key)) return { field: path || '/', message: 'has a key with a lone UTF-16 surrogate (not well-formed Unicode)' };
      // MongoDB cannot store a field name with NUL; refusing it here keeps a step from failing after it was accepted.
      if (key.includes('\u0000')) return { field: path || '/', message: 'has a key containing NUL' };
      stack.push({ value: child, path: `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, depth: depth + 1 });
    }
  }
  return undefined;
}
