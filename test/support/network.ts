/**
 * A real multi-party network for tests: the local stack (Temporal dev server, FerretDB, anvil
 * with manual mining) and one `lockstep node` process per party, run from the compiled build.
 * Parties listed in `cuttable` receive deliveries through a proxy the test can cut.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import { startStack, type Stack } from '../../src/stack/local-stack';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../../src/stack/search-attributes';
import { freePort } from '../../src/stack/ports';
import { startPartyProcesses, type PartyProcesses } from '../../src/stack/party-processes';
import { ApiClient } from '../../src/api/client';
import { eventually } from './eventually';
import { startProxy, type CuttableProxy } from './proxy';
import { historyOn } from './history';
import type { StepView } from '../../src/api/views';

export interface NetworkOptions {
  env?: Record<string, string>;
  /** Parties whose incoming deliveries pass through a proxy the test can cut. */
  cuttable?: string[];
  /** The nodes reach the chain's RPC through a proxy the test can cut (the test itself mines directly). */
  chainProxy?: boolean;
  /** Data exchange over TLS or mutual TLS, with the local stack's throwaway CA. */
  dxTls?: 'off' | 'tls' | 'mutual';
}

export interface TestNetwork {
  stack: Stack;
  dir: string;
  provider: JsonRpcProvider;
  nodes: PartyProcesses;
  api(party: string): ApiClient;
  proxy(party: string): CuttableProxy;
  /** The proxy between the nodes and the chain's RPC (with `chainProxy`). */
  chainProxy(): CuttableProxy;
  /** Mines `blocks` blocks by hand. */
  mine(blocks?: number): Promise<void>;
  /** Mines a block every `everyMs` until stopped, as a live chain would; failures (a restart) are ignored. */
  mineInBackground(everyMs?: number): BackgroundMiner;
  /** Resolves once at least `count` transactions wait in anvil's mempool. */
  pendingTransactions(count: number): Promise<void>;
  /**
   * Starts an instance on `creator`'s node and returns its id once every other participant's node knows it (an invited node starts its workflow a moment later).
   */
  startInstance(creator: string, definition: string, roles: Record<string, string>): Promise<string>;
  /** The instance's history on `party`'s node (throws unless the API answers 200). */
  history(party: string, instanceId: string): Promise<StepView[]>;
  stop(): Promise<void>;
}

export interface BackgroundMiner {
  /** No blocks until `resume()`: for tests that need several steps in flight at once. */
  pause(): void;
  resume(): void;
  /** Stops mining; resolves once the last block has been asked for. */
  stop(): Promise<void>;
}

export async function startTestNetwork(parties: string[], confirmations: number, opts: NetworkOptions = {}): Promise<TestNetwork> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-test-'));
  const stack = await startStack({
    dir,
    parties,
    ports: 'free',
    mining: { mode: 'manual' },
    confirmations,
    searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
    dxTls: opts.dxTls,
  });
  const provider = new JsonRpcProvider(stack.network.chain.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1 });
  const proxies = new Map<string, CuttableProxy>();
  const innerPorts = new Map<string, number>();
  let nodes: PartyProcesses | undefined;
  let rpcProxy: CuttableProxy | undefined;
  const mine = async (blocks = 1): Promise<void> => {
    for (let i = 0; i < blocks; i++) await provider.send('evm_mine', []);
  };
  const stop = async () => {
    await nodes?.stop();
    for (const p of proxies.values()) await p.close();
    await rpcProxy?.close();
    provider.destroy();
    await stack.stop();
  };
  try {
    for (const party of opts.cuttable ?? []) {
      const inner = await freePort();
      innerPorts.set(party, inner);
      proxies.set(party, await startProxy(Number(new URL(stack.network.parties[party]!.dxUrl).port), inner));
    }
    let nodesNetworkPath = stack.networkPath;
    if (opts.chainProxy) {
      const port = await freePort();
      rpcProxy = await startProxy(port, Number(new URL(stack.network.chain.rpcUrl).port));
      nodesNetworkPath = join(dir, 'network-nodes.json');
      writeFileSync(nodesNetworkPath, JSON.stringify({ ...stack.network, chain: { ...stack.network.chain, rpcUrl: `http://127.0.0.1:${port}` } }, null, 2));
    }
    nodes = await startPartyProcesses(
      stack.network,
      nodesNetworkPath,
      parties,
      dir,
      { LOCKSTEP_CHAIN_POLL_MS: '100', LOCKSTEP_LOG_LEVEL: 'debug', LOCKSTEP_BATCH_WAIT_MS: '50', ...opts.env },
      (party): Record<string, string> => (innerPorts.has(party) ? { LOCKSTEP_DX_PORT: String(innerPorts.get(party)) } : {}),
    );
    const clients = Object.fromEntries(parties.map((p) => [p, new ApiClient(stack.network.parties[p]!.apiUrl, stack.network.devApiKeys?.[p])]));
    const started = nodes;
    return {
      stack,
      dir,
      provider,
      nodes: started,
      api: (party) => clients[party]!,
      proxy: (party) => {
        const p = proxies.get(party);
        if (!p) throw new Error(`${party} was not started behind a proxy`);
        return p;
      },
      chainProxy: () => {
        if (!rpcProxy) throw new Error('the network was not started with chainProxy');
        return rpcProxy;
      },
      mine,
      mineInBackground: (everyMs = 200) => {
        let running = true;
        let paused = false;
        const loop = (async () => {
          while (running) {
            if (!paused) await mine(1).catch(() => undefined);
            await new Promise((r) => setTimeout(r, everyMs));
          }
        })();
        return {
          pause: () => void (paused = true),
          resume: () => void (paused = false),
          stop: async () => {
            running = false;
            await loop;
          },
        };
      },
      history: (party, instanceId) => historyOn(clients[party]!, party, instanceId),
      startInstance: async (creator, definition, roles) => {
        const res = await clients[creator]!.post('/instances', { definition, roles });
        if (res.status !== 201) throw new Error(`starting a ${definition} instance on ${creator}: ${res.status} ${JSON.stringify(res.body)}`);
        const id = res.body.instance.id as string;
        const others = [...new Set(Object.values(roles))].filter((p) => p !== creator);
        await Promise.all(
          others.map((p) => eventually(`${id} on ${p}`, async () => ((await clients[p]!.get(`/instances/${id}`)).status === 200 ? true : undefined), 60_000)),
        );
        return id;
      },
      pendingTransactions: async (count) => {
        await eventually(`${count} transaction(s) in the mempool`, async () => {
          const status = (await provider.send('txpool_status', [])) as { pending: string };
          return Number(status.pending) >= count ? true : undefined;
        });
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
