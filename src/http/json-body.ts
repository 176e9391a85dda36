/**
 * Request bodies for the REST API and the data-exchange endpoint: JSON only, within the size
 * limit, and within a nesting depth and well-formed Unicode before any route sees them. JSON.parse
 * copes with deep nesting, but what comes after (canonical hashing, JSON.stringify into Temporal
 * payloads, BSON encoding) recurses and would overflow the stack; lone surrogates cannot be stored
 * as UTF-8, so a node would hash one value and keep another.
 */
import { createHash } from 'node:crypto';
import express, { type RequestHandler } from 'express';
import { LockstepError } from '../model/errors';

/** Deeper than any business document needs, shallow enough for every recursive consumer. */
export const MAX_JSON_DEPTH = 64;

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);
/** With the u flag a surrogate pair is one code point, so this matches only unpaired halves. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** The SHA-256 of the raw body, kept so refusals can be recorded without re-serialising it. */
export function bodyDigestOf(req: express.Request): string | undefined {
  return (req as { bodyDigest?: string }).bodyDigest;
}

function requireJsonType(): RequestHandler {
  return (req, _res, next) => {
    // An empty POST (a redelivery, say) needs no type; any body must be JSON.
    const hasBody = Number(req.header('content-length') ?? 0) > 0 || req.header('transfer-encoding') !== undefined;
    if (WITH_BODY.has(req.method) && hasBody && !req.is('application/json')) {
      const type = req.header('content-type') ?? 'none';
      throw new LockstepError('unsupported_media_type', `send the body as application/json (got ${type.slice(0, 100)})`, [{ field: 'Content-Type', message: 'must be application/json' }]);
    }
    next();
  };
}

/** The first problem in a parsed body: too deep, or a string or key that is not well-formed. */
export function jsonBodyProblem(body: unknown): { field: string; message: string } | undefined {
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

function checkParsedBody(): RequestHandler {
  return (req, _res, next) => {
    const problem = jsonBodyProblem(req.body);
    if (problem) {
      // Nothing downstream may walk this body again, not even to describe it.
      req.body = undefined;
      throw new LockstepError('bad_request', `request body ${problem.field === '/' ? '' : `at ${problem.field} `}${problem.message}`, [problem]);
    }
    next();
  };
}

export function jsonBody(limitBytes: number): RequestHandler[] {
  return [
    requireJsonType(),
    express.json({
      limit: limitBytes,
      strict: true,
      verify: (req, _res, buf) => {
        (req as { bodyDigest?: string }).bodyDigest = createHash('sha256').update(buf).digest('hex');
      },
    }),
    checkParsedBody(),
  ];
}
