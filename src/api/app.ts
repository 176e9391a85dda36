/**
 * The party's REST API (versioned under /api/v1): start instances, take steps, read history.
 * The node acts as its own party; the workflow's update validator is the authority on whether a
 * step may be taken, and its refusal comes back as problem+json with the offending field.
 */
import express, { type Express } from 'express';
import type { ChainListener } from '../chain/listener';
import { LockstepError } from '../model/errors';
import type { NodeContext } from '../node/context';
import { proposeStep, startInstance, type StartRequest } from '../node/operations';
import { problemHandler } from '../http/problem';
import { requireShape } from '../http/shape';
import { instanceView, stepView } from './views';

const MAX_PAGE = 500;

export function createApiApp(ctx: NodeContext, listener: ChainListener): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: ctx.config.bodyLimitBytes, strict: true }));
  const api = express.Router();

  // After a reorganisation deeper than the confirmation depth, final steps may no longer be on
  // chain: refuse to build on them until an operator has looked (reads stay available).
  api.use((req, _res, next) => {
    if (req.method !== 'GET' && listener.deepReorg) {
      const r = listener.deepReorg;
      next(new LockstepError('unavailable', `the chain reorganised below the confirmation depth at block ${r.block} (expected ${r.expectedHash}, found ${r.actualHash ?? 'nothing'}); this node takes no new steps until an operator intervenes`));
      return;
    }
    next();
  });

  api.get('/status', async (_req, res) => {
    res.json({
      party: ctx.party,
      address: ctx.wallet.address,
      chain: {
        head: listener.head,
        confirmations: ctx.config.confirmations,
        sequencer: ctx.network.chain.sequencer,
        error: listener.lastError ?? null,
        deepReorg: listener.deepReorg ?? null,
      },
      checkpoint: await ctx.store.checkpoint(),
    });
  });

  api.get('/definitions', (_req, res) => {
    res.json({ definitions: ctx.definitions.all().map((d) => ({ id: d.definition.id, version: d.definition.version, title: d.definition.title, hash: d.hash })) });
  });

  api.get('/definitions/:id', (req, res) => {
    const d = ctx.definitions.get(req.params.id);
    res.json({ hash: d.hash, definition: d.definition });
  });

  api.post('/instances', async (req, res) => {
    const header = await startInstance(ctx, requireShape<StartRequest>(req.body, 'startInstance'));
    res.status(201).location(`/api/v1/instances/${header.id}`).json({ instance: { ...header, status: 'active', outcome: null } });
  });

  api.get('/instances', async (req, res) => {
    const limit = Math.min(Number(req.query.limit ?? 100) || 100, MAX_PAGE);
    const filter: Record<string, string> = {};
    if (typeof req.query.definition === 'string') filter['header.definitionId'] = req.query.definition;
    if (typeof req.query.status === 'string') filter.status = req.query.status;
    res.json({ instances: (await ctx.store.listInstances(filter, limit)).map(instanceView) });
  });

  api.get('/instances/:id', async (req, res) => {
    const doc = await ctx.store.instance(req.params.id);
    if (!doc) throw new LockstepError('not_found', `unknown instance ${req.params.id}`);
    const waiting = await ctx.store.waitingForData(doc._id);
    res.json({
      instance: instanceView(doc),
      // Steps sequenced on chain whose data (or proof) has not arrived from their author yet.
      waitingForData: waiting.map((w) => ({ author: w.author, nonce: w.nonce, blockNumber: w.position!.blockNumber, final: w.confirmed, hasEnvelope: w.envelopeHash !== undefined })),
    });
  });

  api.post('/instances/:id/steps', async (req, res) => {
    const body = requireShape<{ step: string; input?: unknown }>(req.body, 'proposeStep');
    const result = await proposeStep(ctx, req.params.id, body.step, body.input ?? {});
    res
      .status(202)
      .location(`/api/v1/instances/${req.params.id}/steps/${result.envelopeHash}`)
      .json({ ...result, links: { step: `/api/v1/instances/${req.params.id}/steps/${result.envelopeHash}` } });
  });

  api.get('/instances/:id/history', async (req, res) => {
    if (!(await ctx.store.instance(req.params.id))) throw new LockstepError('not_found', `unknown instance ${req.params.id}`);
    res.json({ instanceId: req.params.id, steps: (await ctx.store.history(req.params.id)).map((s) => stepView(s, listener.head)) });
  });

  api.get('/instances/:id/steps/:hash', async (req, res) => {
    const doc = await ctx.store.step(req.params.hash);
    if (!doc || doc.instanceId !== req.params.id) throw new LockstepError('not_found', `unknown step ${req.params.hash} in instance ${req.params.id}`);
    res.json({ step: stepView(doc, listener.head) });
  });

  app.use('/api/v1', api);
  app.use((req, _res, next) => next(new LockstepError('not_found', `no route ${req.method} ${req.path}`)));
  app.use(problemHandler(ctx.log));
  return app;
}
