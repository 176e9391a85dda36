/** `GET /status`: is this node healthy, and how far behind the chain is its listener. */
import { Router } from 'express';
import type { ChainListener } from '../chain/listener';
import type { Leadership } from '../node/leadership';
import type { NodeContext } from '../node/context';

const PROBE_TIMEOUT_MS = 2_000;

async function probe(check: () => Promise<unknown>): Promise<{ ok: boolean; error: string | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return { ok: true, error: null };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export function statusRoutes(ctx: NodeContext, listener: ChainListener, leadership: Leadership): Router {
  const r = Router();
  r.get('/status', async (_req, res) => {
    const me = ctx.network.parties[ctx.party]!;
    const [temporal, mongodb] = await Promise.all([
      probe(() => ctx.temporal.workflowService.describeNamespace({ namespace: me.namespace })),
      probe(() => ctx.store.ping()),
    ]);
    const checkpoint = mongodb.ok ? await ctx.store.checkpoint() : null;
    // Final (or sequenced) pins whose data has not arrived: each holds its instance (see data.waiting events).
    const waiting = mongodb.ok ? await ctx.store.waitingForData() : [];
    const scanned = checkpoint?.scannedBlock ?? null;
    res.status(temporal.ok && mongodb.ok ? 200 : 503).json({
      party: ctx.party,
      address: ctx.wallet.address,
      // With replicas, one process leads: it runs the activities, data exchange, batcher, listener and webhooks.
      process: { leading: leadership.isLeader, leader: leadership.current() ?? null },
      temporal: { ...temporal, namespace: me.namespace },
      mongodb,
      chain: {
        ok: listener.lastError === undefined && listener.deepReorg === undefined,
        error: listener.lastError ?? null,
        deepReorg: listener.deepReorg ?? null,
        head: listener.head,
        confirmations: ctx.config.confirmations,
        sequencer: ctx.network.chain.sequencer,
      },
      listener: { scannedBlock: scanned, confirmedBlock: checkpoint?.confirmedBlock ?? null, lag: scanned === null ? null : Math.max(0, listener.head - scanned) },
      checkpoint,
      events: { head: mongodb.ok ? await ctx.store.events.head() : null },
      waitingForData: { pins: waiting.length, instances: new Set(waiting.map((w) => w.instanceId)).size },
      // Whether this node's pins are going out; if not, why (see pin.failing events).
      batcher: { ...ctx.batcher.health, waitingSteps: ctx.batcher.waitingSteps() },
    });
  });
  return r;
}
