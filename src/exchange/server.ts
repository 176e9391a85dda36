/**
 * Private transfer, receiving side: the endpoint peers post invitations and envelopes to.
 * Everything is checked before anything is stored: signatures against the network file, hashes
 * recomputed, the definition hash known, the sender a participant, the input and output valid
 * against the step's schemas (a node never trusts a peer's validation).
 */
import { createHash } from 'node:crypto';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import { certifiedPeerOf } from './tls';
import type { SignedEnvelope } from '../model/envelope';
import type { Invitation } from '../model/instance';
import { participantsOf, rolesOf } from '../model/instance';
import { LockstepError } from '../model/errors';
import { verifyEnvelope, verifyInvitation } from '../envelope/verify';
import { findStep } from '../process/rules';
import { openStepIds } from '../process/tasks';
import { validateStepData } from '../process/step-data';
import { MAX_STEP_DATA_BYTES } from '../process/json-value';
import { problemHandler } from '../http/problem';
import { bodyDigestOf, jsonBody } from '../http/json-body';
import type { NodeContext } from '../node/context';
import { startInstanceWorkflow } from '../node/workflows';
import type { PinSignaller } from '../node/pin-signals';
import type { ChainListener } from '../chain/listener';
import { requireShape } from '../http/shape';
import { syncHumanTasks } from '../events/human-tasks';
import { securityRefused, stepInvalid } from '../events/hooks';
import { resendStep } from './resend';
import { serialStatsOf, type SerialStats } from '../store/serial-writes';
import type { Logger } from 'pino';

/**
 * The sending party: over mutual TLS the one its client certificate names, which a claimed
 * `x-lockstep-party` must match; otherwise the header, unauthenticated (the signatures are what count).
 */
function senderOf(req: Request): string | undefined {
  const header = req.header('x-lockstep-party');
  return certifiedPeerOf(req.socket) ?? (header === undefined ? undefined : String(header));
}

function requireCertifiedSender(): RequestHandler {
  return (req, _res, next) => {
    const certified = certifiedPeerOf(req.socket);
    const claimed = req.header('x-lockstep-party');
    if (certified !== undefined && claimed !== undefined && claimed !== certified) {
      throw new LockstepError('forbidden', `the client certificate is ${certified}'s, but the request claims to come from ${claimed.slice(0, 64)}`, [{ field: 'x-lockstep-party', message: 'not the certificate holder' }]);
    }
    next();
  };
}

/**
 * When the data exchange turns new deliveries away: the oldest store write has waited this long
 * in line, well under the sender's 25 s timeout (a delivery taken is done before its sender gives
 * up and sends it again, which only doubles the work of a node already behind) ...
 */
export const SHED_AFTER_WAIT_MS = 10_000;
/** ... and this many writes wait: a backlog, not a few writes behind one stuck on a dead connection. */
export const SHED_AFTER_QUEUED = 32;

/**
 * Turns deliveries away (503, benign: the sender's activity delivers again with backoff) while
 * the store's writes are this far behind, so a node that cannot keep up takes no more work than
 * it can finish in time. The store's own backlog says so (FerretDB's write line; none on MongoDB).
 */
export function shedWhenBehind(party: string, backlog: () => SerialStats | null, log: Logger): RequestHandler {
  let shedding = false;
  return (_req, res, next) => {
    const stats = backlog();
    const behind = stats !== null && stats.oldestWaitMs > SHED_AFTER_WAIT_MS && stats.queued >= SHED_AFTER_QUEUED;
    if (behind !== shedding) {
      shedding = behind;
      if (behind) log.warn({ queued: stats.queued, oldestWaitMs: stats.oldestWaitMs }, 'store writes are behind: data exchange turns deliveries away until they catch up');
      else log.info('store writes caught up: data exchange takes deliveries again');
    }
    if (!behind) return next();
    res.setHeader('Retry-After', '5');
    next(new LockstepError('unavailable', `${party} is behind on its store writes (${stats.queued} waiting, the oldest for ${Math.round(stats.oldestWaitMs / 1000)} s); deliver again shortly`));
  };
}

/**
 * The largest body a peer may need to send: an envelope with the most step data any node lets its
 * apps propose (MAX_STEP_DATA_BYTES), plus its salt, envelope and receipt, with room to spare. Not
 * LOCKSTEP_BODY_LIMIT_BYTES, which bounds this party's own apps: a step another node accepted
 * and pinned must reach every participant, or they wait for its data forever.
 */
export const EXCHANGE_BODY_LIMIT_BYTES = MAX_STEP_DATA_BYTES + 65_536;

/** `counted`, where given, runs first for every request (the node's metrics count them). */
export function createExchangeApp(ctx: NodeContext, pins: PinSignaller, chain: Pick<ChainListener, 'lookBack'>, counted?: RequestHandler): Express {
  const app = express();
  app.disable('x-powered-by');
  if (counted) app.use(counted);
  app.use(requireCertifiedSender());
  app.use(shedWhenBehind(ctx.party, () => serialStatsOf(ctx.store.db), ctx.log));
  app.use(jsonBody(EXCHANGE_BODY_LIMIT_BYTES));

  app.post('/dx/v1/invitations', async (req, res) => {
    const invitation = requireShape<Invitation>(req.body, 'invitation');
    verifyInvitation(ctx.network, invitation);
    const { header } = invitation;
    const { definition } = ctx.definitions.byAgreedHash(header.definitionHash, `invitation to instance ${header.id}`, header.definitionId);
    if (!participantsOf(header).includes(ctx.party)) {
      throw new LockstepError('forbidden', `${ctx.party} plays no role in instance ${header.id}`, [{ field: '/header/roles', message: 'not a participant' }]);
    }
    const unknown = participantsOf(header).filter((p) => !ctx.network.parties[p]);
    if (unknown.length > 0) throw new LockstepError('bad_request', `unknown parties: ${unknown.join(', ')}`, [{ field: '/header/roles', message: 'unknown party' }]);
    const stored = await ctx.store.saveInstance(invitation, openStepIds(definition, header, ctx.party));
    if (stored.status === 'ended') {
      // A repeat (the creator's retry did not know this node had answered): the instance ended
      // here, its workflow has finished; only a workflow's first run may decide its steps.
      ctx.log.info({ instanceId: header.id, from: header.createdBy }, 'invitation of an ended instance accepted again');
      res.status(200).json({ accepted: header.id });
      return;
    }
    // Before the answer: if reading the chain fails, so does the request, and the creator invites again.
    try {
      await chain.lookBack(stored, invitation.sinceBlock ?? ctx.network.chain.deployBlock);
    } catch (error) {
      ctx.log.warn({ err: error, instanceId: header.id }, 'could not read the chain for the invited instance\'s earlier pins');
      throw new LockstepError('unavailable', `${ctx.party} cannot read the chain to look for instance ${header.id}'s earlier pins just now; retry`, []);
    }
    await startInstanceWorkflow(ctx, header);
    await syncHumanTasks(ctx.store, ctx.definitions, ctx.party, header.id);
    ctx.log.info({ instanceId: header.id, from: header.createdBy }, 'invitation accepted');
    res.status(200).json({ accepted: header.id });
  });

  app.post('/dx/v1/envelopes', async (req, res) => {
    const signed = requireShape<SignedEnvelope>(req.body, 'envelope');
    verifyEnvelope(ctx.network, signed);
    const e = signed.envelope;
    const sender = senderOf(req);
    if (sender !== undefined && sender !== e.author) {
      throw new LockstepError('forbidden', `${sender} may not forward an envelope authored by ${e.author}`, [{ field: '/envelope/author', message: 'not the sender' }]);
    }
    const instance = await ctx.store.agreedInstance(e.instanceId);
    if (!instance) throw new LockstepError('not_found', `unknown instance ${e.instanceId} (its invitation may still be on its way)`, [{ field: '/envelope/instanceId', message: 'unknown instance' }]);
    if (instance.header.definitionHash !== e.definitionHash) {
      throw new LockstepError('unknown_definition', `envelope is for definition ${e.definitionHash} but instance ${e.instanceId} runs ${instance.header.definitionHash}`, [
        { field: '/envelope/definitionHash', message: 'does not match the instance' },
      ]);
    }
    if (!participantsOf(instance.header).includes(e.author)) {
      throw new LockstepError('forbidden', `${e.author} is not a participant of instance ${e.instanceId}`, [{ field: '/envelope/author', message: 'not a participant' }]);
    }
    const { definition } = ctx.definitions.byAgreedHash(e.definitionHash, `envelope ${signed.hash}`, instance.header.definitionId);
    const step = findStep(definition, e.step);
    if (!rolesOf(instance.header, e.author).includes(step.actor)) {
      throw new LockstepError('forbidden', `${e.author} does not play "${step.actor}", the role that takes step "${e.step}" in instance ${e.instanceId}`, [
        { field: '/envelope/step', message: "not the author's role" },
      ]);
    }
    const visible = !step.visibility || rolesOf(instance.header, ctx.party).some((r) => step.visibility!.includes(r));
    if (signed.data !== undefined) {
      try {
        validateStepData(e.definitionHash, definition, step, signed.data);
      } catch (error) {
        if (error instanceof LockstepError) await stepInvalid(ctx.store.events, { instanceId: e.instanceId, step: e.step, envelopeHash: signed.hash, author: e.author, errors: error.details });
        throw error;
      }
    }
    else if (visible) throw new LockstepError('bad_request', `step "${e.step}" is visible to ${ctx.party} but came without its data`, [{ field: '/data', message: 'required' }]);
    await ctx.store.savePendingStep(instance, signed, visible);
    // The workflow hears of the step with its final pin, in one signal (pin-signals.ts); one not
    // started yet, or already ended, is the signaller's business too. Not awaited: the sender
    // need not wait for this node's signalling pass (it logs its own errors).
    void pins.flush();
    ctx.log.info({ instanceId: e.instanceId, step: e.step, from: e.author, envelopeHash: signed.hash }, 'envelope accepted');
    res.status(200).json({ accepted: signed.hash });
  });

  // A participant waiting for one of our steps' data asks for it again; it goes to its registered endpoint.
  app.post('/dx/v1/resend-requests', async (req, res) => {
    const request = requireShape<{ instanceId: string; nonce: number }>(req.body, 'resendRequest');
    res.status(200).json({ resent: (await resendStep(ctx, senderOf(req), request)).envelopeHash });
  });

  // Peers and scanners alike get a problem+json for a route that does not exist, not Express's HTML page.
  app.use((req, _res, next) => next(new LockstepError('not_found', `no route ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(recordRefusal(ctx));
  app.use(problemHandler(ctx.log));
  return app;
}

/** Refusals that say nothing about the sender's honesty: a race with an invitation, a busy node. */
const BENIGN = new Set(['not_found', 'unavailable']);

/**
 * Every other refusal is logged and recorded as a `security.refused` event before the problem
 * response goes out, so a party's operators see forged, tampered or misdirected traffic.
 */
function recordRefusal(ctx: NodeContext): ErrorRequestHandler {
  return (error: unknown, req, _res, next) => {
    if (!(error instanceof LockstepError) || BENIGN.has(error.code)) return next(error);
    const body = (req.body ?? {}) as Partial<SignedEnvelope> & Partial<Invitation>;
    const refusal = {
      // The raw bytes' digest: re-serialising the body could be as costly as the request was hostile.
      digest: bodyDigestOf(req) ?? createHash('sha256').update('').digest('hex'),
      route: req.path,
      code: error.code,
      message: error.message,
      ...(senderOf(req) !== undefined ? { sender: senderOf(req) } : {}),
      ...(typeof body.envelope?.author === 'string' ? { author: body.envelope.author } : {}),
      ...(typeof body.envelope?.instanceId === 'string' ? { instanceId: body.envelope.instanceId } : {}),
      ...(typeof body.hash === 'string' ? { envelopeHash: body.hash } : {}),
      ...(req.socket.remoteAddress ? { remote: req.socket.remoteAddress } : {}),
    };
    ctx.log.warn({ refusal }, 'data exchange refused a request');
    securityRefused(ctx.store.events, refusal).then(
      () => next(error),
      (recordError: unknown) => {
        ctx.log.error({ err: recordError }, 'could not record a refused request');
        next(error);
      },
    );
  };
}
