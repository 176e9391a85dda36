/**
 * Who is calling: API keys, one per app, each naming the app and the roles it may act in.
 * Keys come from LOCKSTEP_API_KEYS (JSON) or LOCKSTEP_API_KEYS_FILE; with neither, the node
 * accepts its party's dev key from the local stack's network file. Keys are kept only as
 * SHA-256 digests in memory and are never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler, Response } from 'express';
import { LockstepError } from '../model/errors';

/** An app allowed to call the API. `roles: ["*"]` lets it act in any role its party plays. */
export interface ApiCaller {
  app: string;
  roles: string[];
}

export interface ApiKeyGrant extends ApiCaller {
  key: string;
}

const ANY_ROLE = '*';

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Parses the key configuration: `[{ "key": "…", "app": "erp", "roles": ["buyer"] }]`. */
export function parseApiKeys(json: string, source: string): ApiKeyGrant[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new LockstepError('bad_request', `${source} is not valid JSON`, [{ field: source, message: 'not JSON' }]);
  }
  if (!Array.isArray(parsed)) throw new LockstepError('bad_request', `${source} must be a JSON array of { key, app, roles }`, [{ field: source, message: 'not an array' }]);
  return parsed.map((entry: unknown, i) => {
    const g = entry as Partial<ApiKeyGrant>;
    const ok = typeof g.key === 'string' && g.key.length >= 16 && typeof g.app === 'string' && g.app.length > 0 && Array.isArray(g.roles) && g.roles.every((r) => typeof r === 'string');
    if (!ok) throw new LockstepError('bad_request', `${source}[${i}] needs a key (16+ characters), an app name and a list of roles`, [{ field: `${source}/${i}`, message: 'invalid grant' }]);
    return { key: g.key!, app: g.app!, roles: g.roles! };
  });
}

/** Reads the configured grants from the environment; empty when none are configured. */
export function apiKeysFromEnv(env: NodeJS.ProcessEnv): ApiKeyGrant[] {
  if (env.LOCKSTEP_API_KEYS_FILE) return parseApiKeys(readFileSync(env.LOCKSTEP_API_KEYS_FILE, 'utf8'), 'LOCKSTEP_API_KEYS_FILE');
  if (env.LOCKSTEP_API_KEYS) return parseApiKeys(env.LOCKSTEP_API_KEYS, 'LOCKSTEP_API_KEYS');
  return [];
}

export class ApiKeys {
  private readonly grants: { digest: Buffer; caller: ApiCaller }[];

  constructor(grants: ApiKeyGrant[]) {
    this.grants = grants.map((g) => ({ digest: digest(g.key), caller: { app: g.app, roles: g.roles } }));
  }

  get size(): number {
    return this.grants.length;
  }

  /** The caller a request authenticates as: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
  authenticate(req: IncomingMessage): ApiCaller {
    const key = presentedKey(req);
    if (!key) throw new LockstepError('unauthorized', 'send an API key: "Authorization: Bearer <key>" or "X-API-Key: <key>"', [{ field: 'Authorization', message: 'missing' }]);
    const d = digest(key);
    const match = this.grants.find((g) => timingSafeEqual(g.digest, d));
    if (!match) throw new LockstepError('unauthorized', 'the API key is not valid for this node', [{ field: 'Authorization', message: 'unknown key' }]);
    return match.caller;
  }

  middleware(): RequestHandler {
    return (req, res, next) => {
      res.locals.caller = this.authenticate(req);
      next();
    };
  }
}

function presentedKey(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim() || undefined;
  const header = req.headers['x-api-key'];
  return typeof header === 'string' && header.length > 0 ? header : undefined;
}

export function callerOf(res: Response): ApiCaller {
  return res.locals.caller as ApiCaller;
}

export function mayActAs(caller: ApiCaller, role: string): boolean {
  return caller.roles.includes(ANY_ROLE) || caller.roles.includes(role);
}

/** Refuses unless the app may act in at least one of `roles` (the roles its party plays here). */
export function requireRole(caller: ApiCaller, roles: string[], what: string, field: string): void {
  if (roles.some((r) => mayActAs(caller, r))) return;
  throw new LockstepError('forbidden', `app ${caller.app} may not ${what}: it acts only as ${caller.roles.join(', ') || 'no role'}, and this needs ${roles.join(' or ') || 'a role this party plays'}`, [
    { field, message: `requires role ${roles.join(' or ')}` },
  ]);
}
