/**
 * A party node: a process of the party, with its Temporal worker (in the party's own namespace),
 * its REST API, its data-exchange endpoint for peers and its chain listener. It reads only its own
 * database and namespace; it meets other parties only through data exchange and the chain.
 *
 * A party may run several such processes against one database and namespace (replicas): all
 * serve the REST API and workflow tasks; the leading one (leadership.ts) also runs the
 * activities, the data-exchange endpoint, the batcher, the chain listener and webhooks.
 */
import http, { type Server } from 'node:http';
import https from 'node:https';
import { PerformanceObserver } from 'node:perf_hooks';
import { Wallet } from 'ethers';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { NetworkFile } from '../model/network';
import type { NodeConfig } from '../config';
import { createActivities, localActivities } from '../../activities';
import { SequencerClient } from '../chain/sequencer';
import { ChainListener } from '../chain/listener';
import { NewHeads } from '../chain/new-heads';
import { Batcher } from '../chain/batcher';
import { DefinitionRegistry } from '../definitions/registry';
import { loadDefinitions } from '../definitions/load';
import { Store } from '../store/store';
import { createApiApp } from '../api/app';
import { NodeMetrics } from './metrics';
import { createExchangeApp } from '../exchange/server';
import { DxClient } from '../exchange/client';
import { dxServerOptions } from '../exchange/tls';
import { createLogger } from '../log';
import { logTemporalThrough } from './temporal-log';
import type { NodeContext } from './context';
import { PinSignaller } from './pin-signals';
import { TASK_QUEUE } from '../../workflows/messages';
import { workflowSource } from './workflow-source';
import { ApiKeys } from '../api/auth';
import { IdempotencyKeys } from '../api/idempotency';
import { Webhooks } from '../events/webhooks';
import { EventSockets } from '../events/websocket';
import { dropQueuedWrites, serialStatsOf } from '../store/serial-writes';
import { recoveryBackend } from '../envelope/recover';
import { NodeLiveness } from './liveness';
import { Leadership } from './leadership';
import { PartyWorkers } from './workers';
import type { Logger } from 'pino';

export interface RunningNode {
  ctx: NodeContext;
  stop(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * A port served only while this process leads. On one host, a previous leader may still hold it
 * as it steps down: the port is tried again until it is free, or this process stops leading.
 */
class LeaderPort {
  private opening?: Promise<void>;
  private wanted = false;

  constructor(
    private readonly server: Server,
    private readonly port: number,
    private readonly host: string,
    private readonly what: string,
    private readonly log: Logger,
  ) {}

  open(): void {
    this.wanted = true;
    this.opening ??= (async () => {
      for (let attempt = 1; this.wanted && !this.server.listening; attempt++) {
        try {
          await listen(this.server, this.port, this.host);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
          if (attempt === 1) this.log.warn({ port: this.port }, `the ${this.what} port is still taken (a previous leader stepping down?); trying again`);
          await new Promise((r) => setTimeout(r, LEADER_PORT_RETRY_MS));
        }
      }
      // Stepped down while opening: not served after all.
      if (!this.wanted && this.server.listening) await close(this.server);
    })()
      .catch((err: unknown) => this.log.error({ err, port: this.port }, `the ${this.what} endpoint could not be opened`))
      .finally(() => (this.opening = undefined));
  }

  async close(): Promise<void> {
    this.wanted = false;
    await this.opening;
    if (this.server.listening) await close(this.server);
  }
}

const LEADER_PORT_RETRY_MS = 500;

export async function startPartyNode(config: NodeConfig, network: NetworkFile, privateKey: string): Promise<RunningNode> {
  const log = createLogger(config.party, config.logLevel);
  logTemporalThrough(log);
  const me = network.parties[config.party]!;
  const wallet = new Wallet(privateKey);
  if (wallet.address.toLowerCase() !== me.address.toLowerCase()) {
    throw new Error(`the key given for ${config.party} is for ${wallet.address}, but the network file says ${me.address}`);
  }
  const definitions = new DefinitionRegistry(loadDefinitions(config.definitionsDir));
  const store = await Store.connect(network.mongodb.uri, me.database, log);
  const liveness = new NodeLiveness(store.pulse, log);
  await liveness.start();
  const sequencer = new SequencerClient({ rpcUrl: network.chain.rpcUrl, address: network.chain.sequencer, chainId: network.chain.chainId });
  const batcher = new Batcher({
    store,
    sequencer,
    provider: sequencer.provider,
    privateKey,
    chainId: network.chain.chainId,
    batchSize: config.batchSize,
    batchWaitMs: config.batchWaitMs,
    tickMs: config.batcherTickMs,
    resubmitAfterMs: config.resubmitAfterMs,
    confirmations: config.confirmations,
    log,
  });
  const clientConnection = await Connection.connect({ address: network.temporal.address });
  const temporal = new Client({ connection: clientConnection, namespace: me.namespace });
  const dxClient = new DxClient(config.dxTls);
  const ctx: NodeContext = { party: config.party, config, network, wallet, store, definitions, sequencer, batcher, temporal, dx: dxClient, log };

  const workerConnection = await NativeConnection.connect({ address: network.temporal.address });
  const pins = new PinSignaller(ctx);
  const activities = createActivities(ctx, pins);
  const workers: PartyWorkers = new PartyWorkers(
    (kind) =>
      Worker.create({
        connection: workerConnection,
        namespace: me.namespace,
        taskQueue: TASK_QUEUE,
        ...(kind === 'workflows'
          ? // Local activities only: the activity worker, while this process leads, takes the queue's activity tasks.
            {
              ...workflowSource(),
              activities: localActivities(activities, (work) => workers.runLocally(work)),
              enableNonLocalActivities: false,
              ...(config.workflowCacheSize !== undefined ? { maxCachedWorkflows: config.workflowCacheSize } : {}),
            }
          : { activities }),
      }),
    log,
  );
  await workers.start();

  const listener = new ChainListener({
    sequencer,
    store,
    confirmations: config.confirmations,
    startBlock: network.chain.deployBlock,
    pollMs: config.chainPollMs,
    log,
    addressOf: (party) => network.parties[party]?.address,
    onProgress: (moved) => pins.flush(moved),
    onDeepReorg: () => undefined, // surfaced through the listener's state in the API's status and refusals
  });
  const newHeads = config.chainWsUrl ? new NewHeads(config.chainWsUrl, () => listener.wake(), log) : undefined;

  const keys = apiKeysFor(config, network);
  const idempotency = new IdempotencyKeys(store.db, config.idempotencyTtlSeconds, liveness);
  await idempotency.ensureIndexes();
  const webhooks = new Webhooks(store.db, store.events, config.webhooks, log);
  await webhooks.ensureIndexes();
  const metrics = new NodeMetrics(config.party, store.events.appended);
  const dxApp = createExchangeApp(ctx, pins, listener, metrics.countRequests('dx'));
  const dx = new LeaderPort(config.dxTls ? https.createServer(dxServerOptions(config.dxTls), dxApp) : http.createServer(dxApp), config.dxPort, config.listenHost, 'data exchange', log);
  // One process of the party runs these (replicas: the others serve the REST API and workflow
  // tasks, and take over when the leader's heartbeat stops).
  let shuttingDown = false;
  const leadership = new Leadership(
    store.pulse,
    liveness,
    {
      start: async () => {
        // Before any work that writes the chain records: from now on only this process does.
        store.lead();
        await workers.lead();
        dx.open();
        batcher.start();
        listener.start();
        webhooks.start();
      },
      stop: async () => {
        try {
          await dx.close();
          // The writes still waiting their turn are not made: the work they belong to (activities,
          // deliveries) fails and is retried by whoever leads next. Stepping down waits for that
          // work to end, and behind a backlog (a database that was away) draining it took minutes,
          // all of them without a leader.
          const dropped = dropQueuedWrites(store.db, 'this process stopped leading its party');
          if (dropped > 0) log.warn({ dropped }, 'writes not yet begun dropped on stepping down; their work is retried by the next leader');
          // Activities under way finish first: they may wait on the batcher.
          await workers.follow();
          await webhooks.stop();
          if (!shuttingDown) await listener.follow();
          await batcher.stop();
        } finally {
          // The next leader may write the chain records from now on.
          store.follow();
        }
      },
    },
    log,
  );
  pins.onlyWhile(() => leadership.isLeader);
  void listener.follow();
  newHeads?.start();
  await leadership.start();
  const sockets = new EventSockets(store.db, store.events, keys, log, config.eventWindow);

  metrics.watch({
    leading: () => leadership.isLeader,
    chainHead: () => listener.head,
    checkpoint: () => store.checkpoint(),
    batcher: () => ({ ok: batcher.health.ok, waitingSteps: batcher.waitingSteps() }),
    storeBacklog: () => serialStatsOf(store.db),
  });
  const api = await listen(http.createServer(createApiApp(ctx, listener, { keys, idempotency, webhooks, leadership, metrics })), config.apiPort, config.listenHost);
  sockets.attach(api);
  const dxTransport = config.dxTls ? (config.dxTls.requireClientCert ? 'mutual TLS' : 'TLS') : 'plain HTTP';
  // A TLS-terminating proxy may advertise https for a node that speaks HTTP behind it, so this only warns.
  if ((new URL(me.dxUrl).protocol === 'https:') !== Boolean(config.dxTls)) log.warn({ dx: me.dxUrl, dxTransport }, 'the network file advertises a different scheme than this node serves data exchange with');
  log.info({ api: me.apiUrl, dx: me.dxUrl, dxTransport, namespace: me.namespace, definitions: definitions.all().map((d) => d.definition.id), signatureRecovery: recoveryBackend }, 'node ready');
  const runtimeStats = logRuntimeStats(store, log);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      runtimeStats.stop();
      metrics.stop();
      shuttingDown = true;
      await sockets.close();
      await close(api);
      await leadership.stop();
      newHeads?.stop();
      await listener.stop();
      await workers.stop();
      await liveness.stop();
      await workerConnection.close();
      await clientConnection.close();
      sequencer.destroy();
      dxClient.close();
      await store.close();
      log.info('node stopped');
    })());
  return { ctx, stop };
}

/** The configured app keys, or else the local stack's dev key for this party (any role). */
function apiKeysFor(config: NodeConfig, network: NetworkFile): ApiKeys {
  if (config.apiKeys.length > 0) return new ApiKeys(config.apiKeys);
  const dev = network.devApiKeys?.[config.party];
  if (!dev) throw new Error(`no API keys for ${config.party}: set LOCKSTEP_API_KEYS or LOCKSTEP_API_KEYS_FILE (see docs/api.md)`);
  return new ApiKeys([{ key: dev, app: 'dev', roles: ['*'] }]);
}

/**
 * Debug, every second, for the benchmark's profile: the running totals of the write line
 * (FerretDB only, when they moved) and where the process's memory is (V8 heap, buffers, the rest:
 * code, stacks and the Temporal core's native memory), with the main thread's garbage-collection
 * pauses so far. The workflows run in a worker thread with a V8 heap of its own, which
 * `process.memoryUsage()` does not see; the diagnostic report does, at about 10 ms a time, so that
 * figure is taken every tenth second.
 */
function logRuntimeStats(store: Store, log: Logger): { stop(): void } {
  let last = -1;
  let ticks = 0;
  let gcMs = 0;
  let threads: { threadHeapTotalMb: number; threadHeapUsedMb: number } | undefined;
  const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);
  const gc = new PerformanceObserver((entries) => {
    for (const entry of entries.getEntries()) gcMs += entry.duration;
  });
  if (log.isLevelEnabled('debug')) gc.observe({ entryTypes: ['gc'] });
  const timer = setInterval(() => {
    if (!log.isLevelEnabled('debug')) return;
    if (ticks++ % 10 === 0) threads = threadHeaps(mb);
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
    log.debug(
      { rssMb: mb(rss), heapTotalMb: mb(heapTotal), heapUsedMb: mb(heapUsed), externalMb: mb(external), arrayBuffersMb: mb(arrayBuffers), ...threads, gcMs: Math.round(gcMs) },
      'memory',
    );
    const stats = serialStatsOf(store.db);
    if (!stats || stats.writes === last) return;
    last = stats.writes;
    log.debug({ ...stats }, 'serial writes');
  }, 1000);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      gc.disconnect();
    },
  };
}

interface ReportHeap {
  javascriptHeap?: { totalMemory?: number; usedMemory?: number };
}

/** The V8 heaps of the process's worker threads (the workflow thread), summed; undefined when the report has none. */
function threadHeaps(mb: (bytes: number) => number): { threadHeapTotalMb: number; threadHeapUsedMb: number } | undefined {
  const report = process.report?.getReport() as { workers?: ReportHeap[] } | undefined;
  const workers = report?.workers ?? [];
  if (workers.length === 0) return undefined;
  const sum = (pick: (w: ReportHeap) => number | undefined): number => workers.reduce((total, w) => total + (pick(w) ?? 0), 0);
  return {
    threadHeapTotalMb: mb(sum((w) => w.javascriptHeap?.totalMemory)),
    threadHeapUsedMb: mb(sum((w) => w.javascriptHeap?.usedMemory)),
  };
}
