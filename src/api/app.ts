/**
 * The party's REST API, versioned under /api/v1: definitions, instances and their steps, history
 * queries, tasks, events and webhooks, the node's status and metrics (Prometheus), and the OpenAPI
 * document (Swagger UI at /api). Every route but /status, /metrics and /openapi.json needs an API key; every state-changing one
 * honours Idempotency-Key. The workflow's update validator is the authority on whether a step
 * may be taken; refusals come back as problem+json with the offending field.
 */
import express, { type Express } from 'express';
import type { ChainListener } from '../chain/listener';
import { LockstepError } from '../model/errors';
import type { NodeContext } from '../node/context';
import { problemHandler } from '../http/problem';
import { jsonBody } from '../http/json-body';
import type { Webhooks } from '../events/webhooks';
import type { ApiKeys } from './auth';
import type { IdempotencyKeys } from './idempotency';
import type { Leadership } from '../node/leadership';
import type { NodeMetrics } from '../node/metrics';
import { instanceRoutes } from './instances';
import { historyRoutes } from './history';
import { taskRoutes } from './tasks';
import { statusRoutes } from './node-status';
import { eventRoutes } from './events';
import { openApiDocument } from './openapi';
import { swaggerUi } from './swagger-ui';
import { definitionGraph } from '../definitions/graph';

export interface ApiServices {
  keys: ApiKeys;
  idempotency: IdempotencyKeys;
  webhooks: Webhooks;
  /** Which of the party's processes leads (shown in /status). */
  leadership: Leadership;
  /** What /metrics serves, and the count of requests answered. */
  metrics: NodeMetrics;
}

export function createApiApp(ctx: NodeContext, listener: ChainListener, services: ApiServices): Express {
  const app = express();
  app.disable('x-powered-by');
  const head = () => listener.head;
  const openApi = openApiDocument(ctx.definitions.all(), ctx.party);

  app.use(swaggerUi());
  const api = express.Router();
  api.use(services.metrics.countRequests('api'));
  api.use(statusRoutes(ctx, listener, services.leadership));
  api.get('/metrics', async (_req, res) => {
    res.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics());
  });
  api.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });

  // Authentication before the body is read: a caller without a key learns nothing else.
  api.use(services.keys.middleware());
  // After a reorganisation deeper than the confirmation depth, final steps may no longer be on
  // chain: refuse to build on them until an operator has looked (reads stay available).
  api.use((req, _res, next) => {
    const r = listener.deepReorg;
    if (req.method !== 'GET' && r) {
      next(new LockstepError('unavailable', `the chain reorganised below the confirmation depth at block ${r.block} (expected ${r.expectedHash}, found ${r.actualHash ?? 'nothing'}); this node takes no new steps until an operator intervenes`));
      return;
    }
    next();
  });
  api.use(jsonBody(ctx.config.bodyLimitBytes));
  api.use(services.idempotency.middleware());

  api.get('/definitions', (_req, res) => {
    res.json({ definitions: ctx.definitions.all().map((d) => ({ id: d.definition.id, version: d.definition.version, title: d.definition.title, hash: d.hash })) });
  });

  api.get('/definitions/:id', (req, res) => {
    const d = ctx.definitions.all().find((x) => x.definition.id === req.params.id);
    if (!d) throw new LockstepError('not_found', `unknown definition "${req.params.id}"`, [{ field: 'id', message: 'unknown' }]);
    res.json({ hash: d.hash, definition: d.definition });
  });

  api.get('/definitions/:id/graph', (req, res) => {
    const d = ctx.definitions.all().find((x) => x.definition.id === req.params.id);
    if (!d) throw new LockstepError('not_found', `unknown definition "${req.params.id}"`, [{ field: 'id', message: 'unknown' }]);
    res.type('text/vnd.mermaid').send(definitionGraph(d.definition));
  });

  api.use(instanceRoutes(ctx, head));
  api.use(historyRoutes(ctx, head));
  api.use(taskRoutes(ctx));
  api.use(eventRoutes(ctx.store.events, services.webhooks));

  app.use('/api/v1', api);
  app.use((req, _res, next) => next(new LockstepError('not_found', `no route ${req.method} ${req.path}`)));
  app.use(problemHandler(ctx.log));
  return app;
}
