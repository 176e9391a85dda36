/**
 * Gas per step at batch sizes 1, 10 and 100, on a local anvil: the on-chain cost of sequencing.
 * Gas is deterministic for a given batch size and chain rules (not a timing), so one run is enough.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hexlify, JsonRpcProvider, randomBytes, Wallet } from 'ethers';
import { devWallet, startAnvil } from '../src/stack/dev-chain';
import { freePort } from '../src/stack/ports';
import { deploySequencer } from '../src/chain/deploy';
import { SequencerClient } from '../src/chain/sequencer';
import { merkleRoot } from '../src/chain/merkle';
import { repoRoot } from '../src/paths';

export interface GasFigure {
  batchSize: number;
  gasUsed: number;
  gasPerStep: number;
}

export async function measureGas(sizes: number[] = [1, 10, 100]): Promise<{ hardfork: string; figures: GasFigure[] }> {
  const logDir = mkdtempSync(join(tmpdir(), 'lockstep-gas-'));
  const anvil = await startAnvil({ logDir, port: await freePort(), accounts: 2, mining: { mode: 'auto' } });
  try {
    // ethers caches identical reads for 250 ms by default, which would reuse a stale nonce here.
    const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, { cacheTimeout: -1, staticNetwork: true });
    const wallet = new Wallet(devWallet(0).privateKey, provider);
    const { address } = await deploySequencer(wallet);
    const client = new SequencerClient({ rpcUrl: anvil.rpcUrl, address, chainId: Number((await anvil.provider.getNetwork()).chainId) });
    const figures: GasFigure[] = [];
    for (const size of sizes) {
      const tags = Array.from({ length: size }, () => hexlify(randomBytes(8)));
      const leaves = Array.from({ length: size }, () => hexlify(randomBytes(32)));
      const tx = await wallet.sendTransaction({ to: address, data: client.encodeBatch(merkleRoot(leaves), tags) });
      const receipt = (await tx.wait())!;
      figures.push({ batchSize: size, gasUsed: Number(receipt.gasUsed), gasPerStep: Math.round(Number(receipt.gasUsed) / size) });
    }
    client.destroy();
    const node = (await provider.send('anvil_nodeInfo', [])) as { hardFork?: string };
    provider.destroy();
    return { hardfork: String(node.hardFork ?? 'unknown'), figures };
  } finally {
    anvil.provider.destroy();
    await anvil.process.stop();
    rmSync(logDir, { recursive: true, force: true });
  }
}

/** Writes bench/results/gas.json (also written by every `npm run bench`). */
export function saveGas(hardfork: string, figures: GasFigure[]): void {
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'gas.json'), `${JSON.stringify({ measuredAt: new Date().toISOString(), hardfork, figures }, null, 2)}\n`);
}

/** `node dist/bench/gas.js`: the gas figures alone, without the stack. */
async function main(): Promise<void> {
  const { hardfork, figures } = await measureGas();
  console.log(`Gas per step (anvil, hardfork ${hardfork}; 8-byte tag per step, one Merkle root per batch)`);
  console.log('batch size | gas used | gas per step');
  for (const f of figures) console.log(`${String(f.batchSize).padStart(10)} | ${String(f.gasUsed).padStart(8)} | ${String(f.gasPerStep).padStart(12)}`);
  saveGas(hardfork, figures);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
