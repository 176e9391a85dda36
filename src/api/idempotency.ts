/**
 * `Idempotency-Key` for every state-changing request. The first request with a key claims it
 * (a plain insert under a unique _id: FerretDB-compatible, no transactions) and its response is
 * stored; a repeat with the same body gets that response back and does nothing; the same key with
 * another body is refused, and so is a repeat while the first is still running. Keys are scoped
 * per app and expire after a TTL (a TTL index where the server has them, and a check on read).
 *
 * A claim names the node process running it. If that process died (its heartbeat went stale, or
 * it is this process and the request is no longer in flight), a retry takes the claim over and
 * runs the request again; the operation underneath is idempotent by the same key (a step's
 * Update id comes from it), so the retry completes the original request rather than a copy.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Collection, Db } from 'mongodb';
import canonicalize from 'canonicalize';
import { LockstepError } from '../model/errors';
import { callerOf } from './auth';
import type { NodeLiveness } from '../node/liveness';
import { isDuplicateKey } from '../store/duplicate-key';

const HEADER = 'Idempotency-Key';

interface IdempotencyDoc {
  _id: string;
  fingerprint: string;
  state: 'running' | 'done';
  /** The node process running the request (NodeLiveness.processId). */
  owner?: string;
  status?: number;
  body?: unknown;
  location?: string;
  contentType?: string;
  claimedAt: Date;
  expiresAt: Date;
}

export class IdempotencyKeys {
  private readonly docs: Collection<IdempotencyDoc>;
  /** Claims this process is running now. */
  private readonly inFlight = new Set<string>();

  constructor(
    db: Db,
    private readonly ttlSeconds: number,
    private readonly liveness: NodeLiveness,
  ) {
    this.docs = db.collection('idempotency');
  }

  async ensureIndexes(): Promise<void> {
    try {
      await this.docs.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0 });
    } catch {
      // Servers without TTL indexes: expired keys are ignored on read and replaced.
    }
  }

  middleware(): RequestHandler {
    return async (req, res, next) => {
      const key = req.header(HEADER);
      if (req.method === 'GET' || req.method === 'HEAD' || key === undefined) return next();
      if (key.length < 1 || key.length > 255) throw new LockstepError('bad_request', `${HEADER} must be 1 to 255 characters`, [{ field: HEADER, message: 'bad length' }]);
      const id = `${callerOf(res).app}\u0000${key}`;
      const fingerprint = createHash('sha256')
        .update(`${req.method} ${req.path}\n${canonicalize(req.body ?? null) ?? ''}`)
        .digest('hex');
      const existing = await this.claim(id, fingerprint);
      if (existing) return replay(existing, fingerprint, res);
      this.inFlight.add(id);
      res.once('close', () => this.inFlight.delete(id));
      res.setHeader(HEADER, key);
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        const status = res.statusCode;
        // A server failure leaves the key free, so the app's retry runs the request again.
        const settle = status >= 500 ? this.docs.deleteOne({ _id: id }) : this.docs.updateOne({ _id: id }, { $set: { state: 'done', status, body, location: res.getHeader('location') as string | undefined, contentType: res.getHeader('content-type') as string | undefined } });
        settle.then(
          () => json(body),
          (err: unknown) => next(err),
        );
        return res;
      };
      next();
    };
  }

  /** Claims the key; returns the earlier record when it is already taken. */
  private async claim(id: string, fingerprint: string): Promise<IdempotencyDoc | null> {
    const now = new Date();
    const doc: IdempotencyDoc = { _id: id, fingerprint, state: 'running', owner: this.liveness.processId, claimedAt: now, expiresAt: new Date(now.getTime() + this.ttlSeconds * 1000) };
    try {
      await this.docs.insertOne(doc);
      return null;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    const existing = await this.docs.findOne({ _id: id });
    // Taken over only by the same request: another body under the key is refused as before.
    const abandoned = existing?.state === 'running' && existing.fingerprint === fingerprint && !(await this.stillRunning(id, existing));
    const stale = existing && (existing.expiresAt < now || abandoned);
    if (existing && !stale) return existing;
    // Expired or abandoned: take it over, unless someone else just did.
    const taken = await this.docs.replaceOne({ _id: id, claimedAt: existing?.claimedAt ?? now }, doc);
    if (taken.matchedCount > 0) return null;
    return (await this.docs.findOne({ _id: id })) ?? doc;
  }

  private async stillRunning(id: string, claim: IdempotencyDoc): Promise<boolean> {
    if (claim.owner === this.liveness.processId) return this.inFlight.has(id);
    return this.liveness.isAlive(claim.owner);
  }
}

function replay(existing: IdempotencyDoc, fingerprint: string, res: Parameters<RequestHandler>[1]): void {
  if (existing.fingerprint !== fingerprint) {
    throw new LockstepError('validation_failed', `this ${HEADER} was already used with a different request; use a new key for a new request`, [{ field: HEADER, message: 'reused with another body' }]);
  }
  if (existing.state === 'running') {
    throw new LockstepError('conflict', `a request with this ${HEADER} is still in progress; retry later`, [{ field: HEADER, message: 'in progress' }]);
  }
  res.setHeader('Idempotent-Replayed', 'true');
  if (existing.location) res.location(existing.location);
  if (existing.contentType) res.type(existing.contentType);
  res.status(existing.status ?? 200).send(JSON.stringify(existing.body));
}
