/**
 * The node's configuration: one typed, validated object built from command-line options, the
 * environment (LOCKSTEP_*) and the network file, with defaults that work on a laptop.
 */
import { join, resolve } from 'node:path';
import type { NetworkFile } from './model/network';
import { repoRoot } from './paths';
import { DEFAULT_RUN_LIMITS, type RunLimits } from '../workflows/messages';
import { apiKeysFromEnv, type ApiKeyGrant } from './api/auth';
import { readNetworkFile } from './network-file';
import { dxTlsFromEnv, type DxTls } from './exchange/tls';
import { parseWebhookAllowList, type WebhookAllowList } from './events/webhook-targets';

export { readNetworkFile } from './network-file';

/** Room for garbage past a heap's live data: keeps a loaded node's heaps near 1.2 × what they hold (docs/performance.md). */
const DEFAULT_HEAP_GROWTH_PERCENT = 20;

export interface NodeConfig {
  party: string;
  networkFile: string;
  definitionsDir: string;
  /** Where the REST API and the data-exchange endpoint listen (taken from the network file). */
  apiPort: number;
  dxPort: number;
  listenHost: string;
  /** Blocks a pin must be buried under before its step is final. */
  confirmations: number;
  /** How often the chain listener polls for new blocks. */
  chainPollMs: number;
  /** The chain node's WebSocket endpoint: new blocks wake the listener before its next poll. Absent: polling only. */
  chainWsUrl?: string;
  /** Most steps pinned in one transaction. */
  batchSize: number;
  /** Longest a step waits for others to share its transaction, while an earlier one awaits mining. */
  batchWaitMs: number;
  /** An unmined pin transaction is broadcast again (re-priced if refused) after this long. */
  resubmitAfterMs: number;
  /** How often the batcher looks at its queue and sent batches (in its memory after start; each look asks the chain about sent batches). */
  batcherTickMs: number;
  /** Largest request body the REST API accepts (the data exchange has its own: EXCHANGE_BODY_LIMIT_BYTES in src/exchange/server.ts). */
  bodyLimitBytes: number;
  logLevel: string;
  /** When instance workflows continue-as-new (see workflows/messages.ts). */
  runLimits: RunLimits;
  /**
   * Instance workflows the Temporal worker keeps in memory between their tasks; absent: the SDK's
   * default, sized to the heap limit (about 2,300 here). Fewer bounds the JavaScript heap; a
   * workflow pushed out replays its history at its next task, which costs CPU (docs/performance.md).
   */
  workflowCacheSize?: number;
  /** How far, in percent, each V8 heap may grow past its live data before a full collection; 0: V8's own sizing (src/node/heap.ts). */
  heapGrowthPercent: number;
  /** Apps allowed to call the REST API; empty means: accept the network file's dev key only. */
  apiKeys: ApiKeyGrant[];
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlSeconds: number;
  webhooks: WebhookSettings;
  /** Events a WebSocket client may have unacknowledged before the node stops sending. */
  eventWindow: number;
  /** TLS (and optionally mutual TLS) for the data-exchange endpoint and this node's deliveries; absent: plain HTTP. */
  dxTls?: DxTls;
}

export interface WebhookSettings {
  /** Attempts before a delivery goes to the dead-letter list. */
  maxAttempts: number;
  /** First retry delay; doubles per attempt up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Per-attempt HTTP timeout. */
  timeoutMs: number;
  /** LOCKSTEP_WEBHOOK_ALLOW: the only hosts and address ranges webhooks may go to; absent, any but those never allowed (src/events/webhook-targets.ts). */
  allow?: WebhookAllowList;
}

export interface NodeOptions {
  party?: string;
  networkFile?: string;
  definitionsDir?: string;
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function webhookAllowFromEnv(env: NodeJS.ProcessEnv): { allow?: WebhookAllowList } {
  const raw = env.LOCKSTEP_WEBHOOK_ALLOW;
  if (raw === undefined || raw.trim() === '') return {};
  try {
    return { allow: parseWebhookAllowList(raw) };
  } catch (error) {
    throw new Error(`LOCKSTEP_WEBHOOK_ALLOW: ${(error as Error).message}`);
  }
}

function portOf(url: string, what: string): number {
  const port = Number(new URL(url).port);
  if (!port) throw new Error(`${what} ${url} has no port`);
  return port;
}

export function loadNodeConfig(opts: NodeOptions, env: NodeJS.ProcessEnv = process.env): { config: NodeConfig; network: NetworkFile } {
  const party = opts.party ?? env.LOCKSTEP_PARTY;
  if (!party) throw new Error('no party given: pass --party NAME or set LOCKSTEP_PARTY');
  const networkFile = resolve(opts.networkFile ?? env.LOCKSTEP_NETWORK ?? '.lockstep/network.json');
  const network = readNetworkFile(networkFile);
  const me = network.parties[party];
  if (!me) throw new Error(`party "${party}" is not in ${networkFile}; parties: ${Object.keys(network.parties).join(', ')}`);
  const config: NodeConfig = {
    party,
    networkFile,
    definitionsDir: resolve(opts.definitionsDir ?? env.LOCKSTEP_DEFINITIONS ?? join(repoRoot(), 'definitions')),
    // The advertised URLs give the ports, unless the node listens behind a proxy or load balancer.
    apiPort: intFromEnv(env, 'LOCKSTEP_API_PORT', portOf(me.apiUrl, 'apiUrl'), 1, 65_535),
    dxPort: intFromEnv(env, 'LOCKSTEP_DX_PORT', portOf(me.dxUrl, 'dxUrl'), 1, 65_535),
    listenHost: env.LOCKSTEP_LISTEN_HOST ?? '127.0.0.1',
    confirmations: intFromEnv(env, 'LOCKSTEP_CONFIRMATIONS', network.chain.confirmations, 1, 1000),
    chainPollMs: intFromEnv(env, 'LOCKSTEP_CHAIN_POLL_MS', 250, 10, 60_000),
    batchSize: intFromEnv(env, 'LOCKSTEP_BATCH_SIZE', 100, 1, 1000),
    batchWaitMs: intFromEnv(env, 'LOCKSTEP_BATCH_WAIT_MS', 200, 0, 60_000),
    resubmitAfterMs: intFromEnv(env, 'LOCKSTEP_RESUBMIT_AFTER_MS', 15_000, 500, 3_600_000),
    batcherTickMs: intFromEnv(env, 'LOCKSTEP_BATCHER_TICK_MS', 50, 10, 10_000),
    bodyLimitBytes: intFromEnv(env, 'LOCKSTEP_BODY_LIMIT_BYTES', 1_048_576, 1024, 64 * 1_048_576),
    logLevel: env.LOCKSTEP_LOG_LEVEL ?? 'info',
    ...(env.LOCKSTEP_WORKFLOW_CACHE_SIZE ? { workflowCacheSize: intFromEnv(env, 'LOCKSTEP_WORKFLOW_CACHE_SIZE', 0, 2, 100_000) } : {}),
    heapGrowthPercent: intFromEnv(env, 'LOCKSTEP_HEAP_GROWTH_PERCENT', DEFAULT_HEAP_GROWTH_PERCENT, 0, 400),
    runLimits: {
      maxEvents: intFromEnv(env, 'LOCKSTEP_MAX_EVENTS_PER_RUN', DEFAULT_RUN_LIMITS.maxEvents, 100, 40_000),
      maxMessages: intFromEnv(env, 'LOCKSTEP_MAX_MESSAGES_PER_RUN', DEFAULT_RUN_LIMITS.maxMessages, 1, 1_500),
      maxHistoryBytes: intFromEnv(env, 'LOCKSTEP_MAX_HISTORY_BYTES_PER_RUN', DEFAULT_RUN_LIMITS.maxHistoryBytes, 65_536, 40 * 1_048_576),
    },
    apiKeys: apiKeysFromEnv(env),
    idempotencyTtlSeconds: intFromEnv(env, 'LOCKSTEP_IDEMPOTENCY_TTL_SECONDS', 86_400, 60, 30 * 86_400),
    eventWindow: intFromEnv(env, 'LOCKSTEP_EVENTS_WINDOW', 100, 1, 10_000),
    webhooks: {
      maxAttempts: intFromEnv(env, 'LOCKSTEP_WEBHOOK_MAX_ATTEMPTS', 10, 1, 100),
      backoffMs: intFromEnv(env, 'LOCKSTEP_WEBHOOK_BACKOFF_MS', 1_000, 10, 3_600_000),
      maxBackoffMs: intFromEnv(env, 'LOCKSTEP_WEBHOOK_MAX_BACKOFF_MS', 300_000, 10, 86_400_000),
      timeoutMs: intFromEnv(env, 'LOCKSTEP_WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
      ...webhookAllowFromEnv(env),
    },
  };
  const chainWsUrl = env.LOCKSTEP_CHAIN_WS_URL ?? network.chain.wsUrl;
  if (chainWsUrl) {
    if (!/^wss?:\/\/[^/]/.test(chainWsUrl)) throw new Error(`LOCKSTEP_CHAIN_WS_URL (or the network file's chain.wsUrl) must be a ws:// or wss:// URL, got ${chainWsUrl}`);
    config.chainWsUrl = chainWsUrl;
  }
  const dxTls = dxTlsFromEnv(env, party, network);
  if (dxTls) config.dxTls = dxTls;
  return { config, network };
}
