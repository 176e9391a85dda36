/**
 * When each block became visible on this machine. Anvil stamps blocks in whole seconds, too coarse
 * for a profile in milliseconds, so the benchmark polls the head itself and notes the local time
 * it first saw each block number.
 */
import { JsonRpcProvider } from 'ethers';

export class BlockClock {
  private readonly provider: JsonRpcProvider;
  private readonly seen = new Map<number, number>();
  /** Transaction hash → block number, for every block seen while running. */
  private readonly included = new Map<string, number>();
  private readonly finalWaiters = new Map<string, Array<{ depth: number; resolve: (at: number) => void }>>();
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(rpcUrl: string, private readonly pollMs = 50) {
    this.provider = new JsonRpcProvider(rpcUrl, undefined, { cacheTimeout: -1, staticNetwork: true });
  }

  start(): void {
    this.running = true;
    this.loop = (async () => {
      let last = -1;
      while (this.running) {
        try {
          const head = await this.provider.getBlockNumber();
          const now = Date.now();
          // Blocks mined between two polls are stamped with the later poll's time.
          const first = last < 0 ? head : last + 1;
          for (let n = first; n <= head; n++) {
            if (!this.seen.has(n)) this.seen.set(n, now);
            const block = await this.provider.getBlock(n);
            for (const hash of block?.transactions ?? []) this.included.set(hash, n);
          }
          last = Math.max(last, head);
          this.settle(head);
        } catch {
          // A failed poll just leaves a gap in resolution.
        }
        await new Promise((r) => setTimeout(r, this.pollMs));
      }
    })();
  }

  private settle(head: number): void {
    for (const [hash, waiters] of this.finalWaiters) {
      const block = this.included.get(hash);
      if (block === undefined) continue;
      const left = waiters.filter((w) => {
        if (head < block + w.depth - 1) return true;
        w.resolve(this.seenAt(block + w.depth - 1));
        return false;
      });
      if (left.length > 0) this.finalWaiters.set(hash, left);
      else this.finalWaiters.delete(hash);
    }
  }

  /** Resolves with the time the transaction's block was `depth` deep (depth 1: included). */
  finalAt(transactionHash: string, depth: number): Promise<number> {
    return new Promise((resolve) => {
      const waiters = this.finalWaiters.get(transactionHash) ?? [];
      waiters.push({ depth, resolve });
      this.finalWaiters.set(transactionHash, waiters);
    });
  }

  /** The block that included the transaction, if seen. */
  blockOf(transactionHash: string): number | undefined {
    return this.included.get(transactionHash);
  }

  /** Local time (ms) the block was first seen, or NaN. */
  seenAt(blockNumber: number): number {
    return this.seen.get(blockNumber) ?? Number.NaN;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.provider.destroy();
  }

  get rpc(): JsonRpcProvider {
    return this.provider;
  }
}
