/**
 * A real multi-party network for tests: the local stack (Temporal dev server, FerretDB, anvil
 * with manual mining) and one `lockstep node` process per party, run from the compiled build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import { startStack, type Stack } from '../../src/stack/local-stack';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../../src/stack/search-attributes';
import { repoRoot } from '../../src/paths';
import { ApiClient } from './api';
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

export async function startTestNetwork(parties: string[], confirmations: number): Promise<TestNetwork> {
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
  const nodes: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => stopChild(n)));
    provider.destroy();
    await stack.stop();
  };
  try {
    for (const party of parties) {
      const out = openSync(join(dir, `node-${party}.log`), 'a');
      nodes.push(
        spawn(process.execPath, [join(repoRoot(), 'dist/src/cli/main.js'), 'node', '--party', party, '--network', stack.networkPath], {
          stdio: ['ignore', out, out],
          env: { ...process.env, LOCKSTEP_CHAIN_POLL_MS: '100', LOCKSTEP_LOG_LEVEL: 'debug' },
        }),
      );
    }
    const clients = Object.fromEntries(parties.map((p) => [p, new ApiClient(stack.network.parties[p]!.apiUrl)]));
    for (const party of parties) {
      await eventually(`${party}'s node to be ready (log: ${dir}/node-${party}.log)`, async () => ((await clients[party]!.get('/status')).status === 200 ? true : undefined), 90_000, 250);
    }
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

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
