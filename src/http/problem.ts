/**
 * HTTP errors as RFC 9457 problem+json, for the REST API and the data-exchange endpoint alike.
 * A LockstepError's code picks the status; malformed JSON and oversized bodies are 4xx, never 500.
 */
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { LockstepError, type ErrorCode, type FieldError } from '../model/errors';
import { isStoreUnavailable } from '../store/unavailable';

/** What a 503 for an unavailable database asks the caller to wait (a restart takes seconds). */
const STORE_RETRY_AFTER_SECONDS = 2;

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 422,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 409,
  deadline: 409,
  guard: 422,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unknown_definition: 409,
  bad_signature: 401,
  unavailable: 503,
};

export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

export function sendProblem(res: Response, code: ErrorCode | 'internal', message: string, errors: FieldError[] = []): void {
  const status = code === 'internal' ? 500 : statusOf(code);
  res
    .status(status)
    .type('application/problem+json')
    .json({ type: `https://lockstep.dev/problems/${code}`, title: code.replace(/_/g, ' '), status, detail: message, code, errors });
}

interface BodyParserError {
  type?: string;
  status?: number;
  message: string;
}

export function problemHandler(log: Logger): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    if (error instanceof LockstepError) return sendProblem(res, error.code, error.message, error.details);
    const e = error as BodyParserError;
    if (e.type === 'entity.parse.failed') return sendProblem(res, 'bad_request', `malformed JSON: ${e.message}`);
    if (e.type === 'entity.too.large') return sendProblem(res, 'payload_too_large', 'request body is larger than this node accepts');
    if (e.status && e.status >= 400 && e.status < 500) return sendProblem(res, 'bad_request', e.message);
    if (isStoreUnavailable(error)) {
      // A database restart or a step-down, not a fault in the node: the caller retries as it is.
      // A caller already gone (a step-down closes the data exchange's connections) is not news.
      if (res.req?.socket?.destroyed) log.debug({ err: error }, 'database unavailable; the caller is gone');
      else log.warn({ err: error }, 'database unavailable; answered 503');
      res.set('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
      return sendProblem(res, 'unavailable', `this node's database is unavailable just now (${e.message}); try again shortly`);
    }
    log.error({ err: error }, 'unhandled error');
    return sendProblem(res, 'internal', 'internal error; see the node log');
  };
}
