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

/**
 * Most a step's data (its input and output, as JSON) may take, in UTF-8 bytes. A proposal's data
 * travels twice in the Temporal workflow task that accepts it (in the Update's accepted request
 * and in the publish activity's input), and the Temporal server refuses messages over 4 MB and
 * payloads over 2 MB: beyond that the task fails on every attempt, and the instance takes no
 * other step meanwhile. The default request body limit (1 MiB) keeps REST proposals under it; a
 * raised `LOCKSTEP_BODY_LIMIT_BYTES` does not raise it.
 */
export const MAX_STEP_DATA_BYTES = 1_048_576;

/** The length of a string in UTF-8, without a Node built-in (the workflow uses it too). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    // A surrogate pair is one code point of four bytes (a lone half, refused elsewhere, counts three).
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Step data over MAX_STEP_DATA_BYTES, as the problem to answer with; `data` has passed jsonValueProblem. */
export function stepDataSizeProblem(data: { input: unknown; output?: unknown }): FieldError | undefined {
  const bytes = utf8Length(JSON.stringify(data));
  if (bytes <= MAX_STEP_DATA_BYTES) return undefined;
  return { field: '/input', message: `step data (input and output) is ${bytes} bytes of JSON; a step carries at most ${MAX_STEP_DATA_BYTES}` };
}
