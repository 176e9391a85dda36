import { HDNodeWallet, JsonRpcProvider, Network } from 'ethers';
import { requireBinary } from './binaries';
import { startSupervised, type SupervisedProcess } from './supervised-process';
import { pollUntil } from './wait-until';

export type MiningMode = { mode: 'auto' } | { mode: 'interval'; blockTimeMs: number } | { mode: 'manual' };

/** anvil's (and hardhat's) well-known dev mnemonic: its accounts are pre-funded on a fresh anvil. */
export const DEV_MNEMONIC = 'test test test test test test test test test test test junk';
export const ANVIL_CHAIN_ID = 31337;

const READY_TIMEOUT_MS = 30_000;
const RPC_CALL_TIMEOUT_MS = 2_000;

/** Account `index` of the dev mnemonic: 0 deploys, party i signs with account i + 1. */
export function devWallet(index: number): HDNodeWallet {
  return HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
}

/**
 * anvil's evm_setIntervalMining takes whole seconds (it rejects 0.5 with "invalid number"),
 * while its --block-time flag accepts fractions. So whole seconds are set over RPC after the
 * deployment (which wants automine), and fractions can only be given at start.
 */
function isWholeSeconds(blockTimeMs: number): boolean {
  return blockTimeMs >= 1000 && blockTimeMs % 1000 === 0;
}

export interface AnvilOptions {
  logDir: string;
  port: number;
  accounts: number;
  mining: MiningMode;
  /** Called as soon as the process exists, before it is ready, so the caller can record its pid. */
  onSpawn?: (process: SupervisedProcess) => void;
}

export interface RunningAnvil {
  rpcUrl: string;
  /** anvil serves WebSocket JSON-RPC (subscriptions) on the same port. */
  wsUrl: string;
  provider: JsonRpcProvider;
  process: SupervisedProcess;
}

export async function startAnvil(options: AnvilOptions): Promise<RunningAnvil> {
  const anvil = requireBinary('anvil');
  const args = [
    '--host', '127.0.0.1',
    '--port', String(options.port),
    '--chain-id', String(ANVIL_CHAIN_ID),
    '--accounts', String(options.accounts),
    // anvil 1.x has no --silent; --quiet suppresses the banner and per-request logging.
    '--quiet',
  ];
  if (options.mining.mode === 'interval' && !isWholeSeconds(options.mining.blockTimeMs)) {
    args.push('--block-time', String(options.mining.blockTimeMs / 1000));
  }
  const server = startSupervised({ name: 'anvil', command: anvil, args, logDir: options.logDir });
  options.onSpawn?.(server);
  const rpcUrl = `http://127.0.0.1:${options.port}`;
  try {
    const provider = await waitForChain(rpcUrl, {
      what: `anvil on ${rpcUrl} (log: ${server.logPath})`,
      abortIf: () => server.exitDescription(),
    });
    return { rpcUrl, wsUrl: `ws://127.0.0.1:${options.port}`, provider, process: server };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** One raw JSON-RPC call with a timeout; used before a provider exists (ethers would log retries to the console). */
async function rpcCall(rpcUrl: string, method: string, params: unknown[] = []): Promise<unknown> {
  const response = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(RPC_CALL_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`${method}: HTTP ${response.status}`);
  const body = (await response.json()) as { result?: unknown; error?: { message?: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message ?? 'RPC error'}`);
  return body.result;
}

/**
 * Waits until the node answers, then returns a provider pinned to its chain id. Pinning
 * (staticNetwork) keeps ethers from re-detecting the network on every call and from logging
 * "failed to detect network" while the node is still starting.
 */
export async function waitForChain(
  rpcUrl: string,
  options: { what: string; abortIf?: () => string | null },
): Promise<JsonRpcProvider> {
  const chainId = await pollUntil(async () => Number(BigInt(String(await rpcCall(rpcUrl, 'eth_chainId')))), {
    what: options.what,
    timeoutMs: READY_TIMEOUT_MS,
    abortIf: options.abortIf,
  });
  const provider = new JsonRpcProvider(rpcUrl, Network.from(chainId), { staticNetwork: true });
  try {
    await pollUntil(() => provider.getBlockNumber(), { what: options.what, timeoutMs: READY_TIMEOUT_MS, abortIf: options.abortIf });
  } catch (err) {
    provider.destroy();
    throw err;
  }
  return provider;
}

/**
 * Switches the chain to the stack's mining mode. Called after the contract is deployed, because
 * the deployment waits for its receipt and would hang with mining off.
 * `startedWithBlockTime` says that anvil already runs with --block-time (fractional interval).
 */
export async function applyMiningMode(provider: JsonRpcProvider, mining: MiningMode, startedWithBlockTime: boolean): Promise<void> {
  switch (mining.mode) {
    case 'auto':
      return;
    case 'manual':
      await provider.send('evm_setAutomine', [false]);
      return;
    case 'interval':
      if (startedWithBlockTime) return;
      if (!isWholeSeconds(mining.blockTimeMs)) {
        throw new Error(
          `interval mining of ${mining.blockTimeMs} ms cannot be set on a running node: ` +
            'anvil\'s evm_setIntervalMining takes whole seconds (use a multiple of 1000 ms)',
        );
      }
      await provider.send('evm_setAutomine', [false]);
      await provider.send('evm_setIntervalMining', [mining.blockTimeMs / 1000]);
      return;
  }
}

/** True when startAnvil put the interval on the command line (see isWholeSeconds). */
export function needsBlockTimeFlag(mining: MiningMode): boolean {
  return mining.mode === 'interval' && !isWholeSeconds(mining.blockTimeMs);
}
