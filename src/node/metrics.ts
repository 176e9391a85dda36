/**
 * What Prometheus scrapes from a node process (`GET /api/v1/metrics`, text exposition format):
 * the process's own figures (CPU, memory, event-loop delay, collections: prom-client's defaults),
 * the node's events by type as this process records them (steps proposed, confirmed and rejected,
 * `pin.failing`, `data.waiting`, `security.refused`, ...), how long steps took from their proposal
 * to their decision here, the requests its REST API and data exchange answered by route and status,
 * and at each scrape whether it leads its party, where the chain and its listener stand, how many
 * steps wait for a pin transaction and whether those go out, and, on FerretDB, its write line's
 * backlog. Each process of a party has its own (replicas: sum them in Prometheus); the counters
 * start at zero when the process does.
 */
import type { EventEmitter } from 'node:events';
import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LockstepEvent } from '../model/event';
import type { CheckpointDoc } from '../store/documents';
import type { SerialStats } from '../store/serial-writes';

/** Where the figures read at each scrape come from (`NodeMetrics.watch`). */
export interface MetricSources {
  leading(): boolean;
  chainHead(): number;
  checkpoint(): Promise<CheckpointDoc | null>;
  batcher(): { ok: boolean; waitingSteps: number };
  /** The write line's figures on FerretDB; null on MongoDB. */
  storeBacklog(): SerialStats | null;
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly requests: Record<'api' | 'dx', Counter<'method' | 'route' | 'code'>>;
  private readonly stopEvents: () => void;

  /** `eventsAppended`: the event log's in-process notices of the events this process records. */
  constructor(party: string, eventsAppended: EventEmitter) {
    this.registry.setDefaultLabels({ party });
    collectDefaultMetrics({ register: this.registry });
    const events = new Counter({ name: 'lockstep_events_total', help: "Events this process recorded in the node's event log, by type", labelNames: ['type'], registers: [this.registry] });
    const decidedAfter = new Histogram({
      name: 'lockstep_step_decision_seconds',
      help: "From a step's proposal (its author's time) to its decision on this node, for steps this process stored and decided; by who proposed it and the verdict",
      labelNames: ['proposer', 'status'],
      buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
      registers: [this.registry],
    });
    const proposals = new ProposalTimes();
    const count = (event: LockstepEvent) => {
      events.inc({ type: event.type });
      if (!event.envelopeHash) return;
      if (event.type === 'step.proposed') proposals.add(event.envelopeHash, event.data, party);
      else if (event.type === 'step.confirmed' || event.type === 'step.rejected') {
        const proposal = proposals.take(event.envelopeHash);
        if (proposal) decidedAfter.observe({ proposer: proposal.proposer, status: event.type.slice('step.'.length) }, Math.max(0, Date.parse(event.at) - proposal.at) / 1000);
      }
    };
    eventsAppended.on('event', count);
    this.stopEvents = () => eventsAppended.off('event', count);
    const requests = (name: string, help: string) => new Counter({ name, help, labelNames: ['method', 'route', 'code'], registers: [this.registry] });
    this.requests = {
      api: requests('lockstep_api_requests_total', 'REST API requests answered, by method, route and status code'),
      dx: requests('lockstep_dx_requests_total', "Requests from peers answered at this node's data exchange, by method, route and status code"),
    };
  }

  /** Adds the figures read at each scrape, once what they read exists. */
  watch(sources: MetricSources): void {
    const gauge = (name: string, help: string, read: () => number | null | Promise<number | null>) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          const value = await read();
          // Unknown now (no checkpoint yet, not on FerretDB): left out of this scrape rather than shown as 0.
          if (value === null) this.reset();
          else this.set(value);
        },
      });
    gauge('lockstep_leading', '1 while this process leads its party (runs the activities, data exchange, batcher, listener and webhooks)', () => (sources.leading() ? 1 : 0));
    gauge('lockstep_chain_head_block', 'The newest block this process has seen', () => sources.chainHead() || null);
    gauge('lockstep_listener_scanned_block', 'The last block the chain listener has read', async () => (await sources.checkpoint())?.scannedBlock ?? null);
    gauge('lockstep_listener_final_block', 'The last block whose pins are final (the confirmation depth below the head)', async () => (await sources.checkpoint())?.confirmedBlock ?? null);
    gauge('lockstep_batcher_waiting_steps', 'Steps of this party waiting for their pin transaction to be mined', () => sources.batcher().waitingSteps);
    gauge('lockstep_batcher_ok', "1 while this party's pin transactions go out; 0 while they are refused (see GET /status, batcher)", () => (sources.batcher().ok ? 1 : 0));
    gauge('lockstep_store_writes_queued', "Writes waiting in the node's FerretDB write line", () => sources.storeBacklog()?.queued ?? null);
    gauge('lockstep_store_oldest_write_wait_seconds', "How long the oldest write in the node's FerretDB write line has waited", () => {
      const backlog = sources.storeBacklog();
      return backlog ? backlog.oldestWaitMs / 1000 : null;
    });
  }

  /**
   * Counts each request to the REST API or the data exchange once answered, by its route's
   * pattern (not its path, which names instances). Used first in the router it counts for: where
   * it is mounted is read as the request arrives, since a request that ends in an error leaves the
   * router before it is answered.
   */
  countRequests(surface: 'api' | 'dx'): RequestHandler {
    return (req, res, next) => {
      const mountedAt = req.baseUrl;
      res.on('finish', () => {
        const route = req.route as { path?: unknown } | undefined;
        const pattern = route ? `${mountedAt}${String(route.path)}` : 'unmatched';
        this.requests[surface].inc({ method: req.method, route: pattern, code: String(res.statusCode) });
      });
      next();
    };
  }

  stop(): void {
    this.stopEvents();
  }
}

/** Steps decided at most this long after they were stored here are timed; older ones are forgotten first. */
const PROPOSALS_KEPT = 50_000;

/** When each step stored here and not yet decided was proposed, and by whom (bounded: the oldest go first). */
class ProposalTimes {
  private readonly times = new Map<string, { at: number; proposer: 'own' | 'peer' }>();

  /** From a `step.proposed` event's data: `{ author, proposedAt }`. */
  add(envelopeHash: string, data: Record<string, unknown>, party: string): void {
    const at = typeof data.proposedAt === 'string' ? Date.parse(data.proposedAt) : NaN;
    if (Number.isNaN(at)) return;
    if (this.times.size >= PROPOSALS_KEPT) this.times.delete(this.times.keys().next().value!);
    this.times.set(envelopeHash, { at, proposer: data.author === party ? 'own' : 'peer' });
  }

  take(envelopeHash: string): { at: number; proposer: 'own' | 'peer' } | undefined {
    const found = this.times.get(envelopeHash);
    this.times.delete(envelopeHash);
    return found;
  }
}
