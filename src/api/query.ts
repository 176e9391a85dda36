/** Query-string parameters, checked: a bad value is a 400 naming the parameter, never a 500. */
import type { Request } from 'express';
import { LockstepError } from '../model/errors';

export const MAX_PAGE = 500;

function bad(name: string, message: string): never {
  throw new LockstepError('bad_request', `query parameter "${name}" ${message}`, [{ field: `?${name}`, message }]);
}

export function stringParam(req: Request, name: string, pattern = /^[A-Za-z0-9._:-]{1,128}$/): string | undefined {
  const raw = req.query[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !pattern.test(raw)) bad(name, `must match ${pattern.source}`);
  return raw;
}

export function enumParam<T extends string>(req: Request, name: string, allowed: readonly T[]): T | undefined {
  const raw = req.query[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !allowed.includes(raw as T)) bad(name, `must be one of ${allowed.join(', ')}`);
  return raw as T;
}

export function dateParam(req: Request, name: string): Date | undefined {
  const raw = req.query[name];
  if (raw === undefined) return undefined;
  const date = typeof raw === 'string' ? new Date(raw) : new Date(NaN);
  if (Number.isNaN(date.getTime())) bad(name, 'must be an ISO 8601 date-time');
  return date;
}

export function intParam(req: Request, name: string, fallback: number, min: number, max: number): number {
  const raw = req.query[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(value) || value < min || value > max) bad(name, `must be an integer from ${min} to ${max}`);
  return value;
}

export function limitParam(req: Request): number {
  return intParam(req, 'limit', 100, 1, MAX_PAGE);
}
