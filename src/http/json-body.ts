/**
 * Request bodies for the REST API and the data-exchange endpoint: JSON only, within the size
 * limit, and within the depth and Unicode limits of src/process/json-value.ts before any route
 * sees them. JSON.parse copes with deep nesting; what comes after it would not.
 */
import { createHash } from 'node:crypto';
import express, { type RequestHandler } from 'express';
import { LockstepError } from '../model/errors';
import { jsonValueProblem } from '../process/json-value';

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);
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

function checkParsedBody(): RequestHandler {
  return (req, _res, next) => {
    const problem = jsonValueProblem(req.body);
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
