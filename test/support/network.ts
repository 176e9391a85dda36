/**
 * A real multi-party network for tests: the local stack (Temporal dev server, FerretDB, anvil
 * with manual mining) and one `lockstep node` process per party, run from the compiled build.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import { startStack, type Stack } from '../../src/stack/local-stack';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../../src/stack/search-attributes';
import { startPartyProcesses, type PartyProcesses } from '../../src/stack/party-processes';
import { ApiClient } from '../../src/api/client';
import { eventually } from './eventually';

export interface TestNetwork {
  stack: Stack;
  dir: string;
  provider: JsonRpcProvider;
  api(party: string): ApiClient;
  /** Mines `blocks` blocks by hand. */
  mine(blocks?: number): Promise<void>;
  /** Resolves once at least `count` transactions wait in anvil's mempool. */
  pendingTransactions(count: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestNetwork(parties: string[], confirmations: number, env: Record<string, string> = {}): Promise<TestNetwork> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-test-'));
  const stack = await startStack({
    dir,
    parties,
    ports: 'free',
    mining: { mode: 'manual' },
    confirmations,
    searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
  });
  const provider = new JsonRpcProvider(stack.network.chain.rpcUrl, undefined, { staticNetwork: true });
  let nodes: PartyProcesses | undefined;
  const stop = async () => {
    await nodes?.stop();
    provider.destroy();
    await stack.stop();
  };
  try {
    nodes = await startPartyProcesses(stack.network, stack.networkPath, parties, dir, { LOCKSTEP_CHAIN_POLL_MS: '100', LOCKSTEP_LOG_LEVEL: 'debug', ...env });
    const clients = Object.fromEntries(parties.map((p) => [p, new ApiClient(stack.network.parties[p]!.apiUrl, stack.network.devApiKeys?.[p])]));
    return {
      stack,
      dir,
      provider,
      api: (party) => clients[party]!,
      mine: async (blocks = 1) => {
        for (let i = 0; i < blocks; i++) await provider.send('evm_mine', []);
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
