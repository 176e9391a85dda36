import { ethers } from 'ethers';
import { LockstepError } from '../model/errors';
import { comparePositions, type ObservedTag } from '../model/pin';
import { loadSequencerArtifact } from './artifact';

export interface SequencerClientOptions {
  rpcUrl: string;
  /** Address of a deployed Sequencer contract. */
  address: string;
  /** How often ethers polls for receipts and new blocks. Default 250 ms. */
  pollingIntervalMs?: number;
  /** When known, skips chain-id detection entirely. */
  chainId?: number;
  /** Widest block range per eth_getLogs call. Default 2000 (a common RPC limit). */
  maxBlockRange?: number;
}

/** Must match `MAX_BATCH` in contracts/Sequencer.sol; checked here to fail before spending gas. */
export const MAX_TAGS_PER_BATCH = 1000;

const DEFAULT_POLLING_MS = 250;
const DEFAULT_MAX_BLOCK_RANGE = 2000;
const TAG_PATTERN = /^0x[0-9a-fA-F]{16}$/;
const ROOT_PATTERN = /^0x[0-9a-fA-F]{64}$/;

/** Throws naming the first bad tag, so a caller can find it in a batch of hundreds. */
/** The batch's own content is refused (malformed, or the contract would revert): sending it again cannot help. */
export class BatchRefused extends LockstepError {}

export function validateBatch(root: unknown, tags: readonly unknown[]): asserts tags is string[] {
  if (typeof root !== 'string' || !ROOT_PATTERN.test(root)) {
    throw new BatchRefused('validation_failed', `batch root is not a 0x-prefixed 32-byte hex string: ${String(root)}`, [{ field: '/root', message: 'malformed' }]);
  }
  if (!Array.isArray(tags) || tags.length === 0) {
    throw new BatchRefused('validation_failed', 'a batch must hold at least one tag', [{ field: '/tags', message: 'empty' }]);
  }
  if (tags.length > MAX_TAGS_PER_BATCH) {
    throw new BatchRefused('validation_failed', `a batch holds at most ${MAX_TAGS_PER_BATCH} tags, got ${tags.length}`, [{ field: '/tags', message: 'too many tags' }]);
  }
  tags.forEach((tag, index) => {
    if (typeof tag !== 'string' || !TAG_PATTERN.test(tag)) {
      const message = `tag at index ${index} is not a 0x-prefixed 8-byte hex string: ${JSON.stringify(tag)}`;
      throw new BatchRefused('validation_failed', message, [{ field: `/tags/${index}`, message }]);
    }
  });
}

/**
 * The custom error (MalformedTags, BatchTooLarge) behind a failed call, if any. ethers decodes
 * custom errors for staticCall but not for estimateGas, which only carries the raw revert
 * data, so both forms are handled here.
 */
export function decodeSequencerRevert(err: unknown): { name: string; args: unknown[] } | null {
  if (!ethers.isError(err, 'CALL_EXCEPTION')) return null;
  if (err.revert) return { name: err.revert.name, args: Array.from(err.revert.args as unknown as unknown[]) };
  if (!err.data) return null;
  try {
    const parsed = sequencerInterface().parseError(err.data);
    return parsed ? { name: parsed.name, args: parsed.args.toArray() } : null;
  } catch {
    return null; // revert data that is not one of our errors (or is truncated)
  }
}

let cachedInterface: ethers.Interface | undefined;
function sequencerInterface(): ethers.Interface {
  cachedInterface ??= new ethers.Interface(loadSequencerArtifact().abi);
  return cachedInterface;
}

function assertBlockNumber(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new LockstepError('bad_request', `${name} must be a non-negative integer, got ${value}`);
  }
}

/**
 * Thin client for the Sequencer contract: encode batches, read them back in chain order.
 * Sending (nonces, fees, resubmission) is the batcher's business; readers track their own
 * position and verify block hashes to detect reorganisations.
 */
export class SequencerClient {
  readonly provider: ethers.JsonRpcProvider;
  private readonly rpcUrl: string;
  private readonly address: string;
  private readonly iface: ethers.Interface;
  private readonly topic: string;
  private readonly maxBlockRange: number;
  private reachable?: Promise<void>;
  private networkKnown: boolean;
  private contractChecked?: Promise<void>;

  constructor(opts: SequencerClientOptions) {
    if (!ethers.isAddress(opts.address)) {
      throw new LockstepError('bad_request', `not an address: ${JSON.stringify(opts.address)}`);
    }
    this.rpcUrl = opts.rpcUrl;
    this.address = ethers.getAddress(opts.address);
    this.maxBlockRange = opts.maxBlockRange ?? DEFAULT_MAX_BLOCK_RANGE;
    if (!Number.isSafeInteger(this.maxBlockRange) || this.maxBlockRange < 1) {
      throw new LockstepError('bad_request', `maxBlockRange must be a positive integer, got ${opts.maxBlockRange}`);
    }

    // staticNetwork: the chain id is fetched at most once and then trusted, instead of an
    // extra eth_chainId round trip before every request. A sequencing node never switches
    // chains under a running process; if it did, block hashes would stop matching anyway.
    // cacheTimeout -1: ethers otherwise shares identical requests for 250 ms, so head()
    // right after a block is mined could return the previous block. batchStallTime 0: ethers
    // otherwise holds every request 10 ms hoping to batch it with others, and a listener pass or
    // a batch send makes several calls one after another; calls made side by side (in one turn
    // of the event loop) still go as one JSON-RPC batch.
    this.provider = new ethers.JsonRpcProvider(opts.rpcUrl, opts.chainId, {
      staticNetwork: true,
      pollingInterval: opts.pollingIntervalMs ?? DEFAULT_POLLING_MS,
      cacheTimeout: -1,
      batchStallTime: 0,
    });
    this.networkKnown = opts.chainId !== undefined;

    this.iface = sequencerInterface();
    const event = this.iface.getEvent('BatchPinned');
    if (!event) throw new Error('Sequencer ABI has no BatchPinned event: rebuild the contracts (npm run build)');
    this.topic = event.topicHash;
  }

  /** The contract's address (EIP-55). */
  get contractAddress(): string {
    return this.address;
  }

  /** Calldata of a pinBatch(root, tags) call; the batcher signs and sends it. */
  encodeBatch(root: string, tags: string[]): string {
    validateBatch(root, tags);
    return this.iface.encodeFunctionData('pinBatch', [root, ethers.concat(tags)]);
  }

  /** Gas for a batch, with the contract's own refusal decoded if it would revert. */
  async estimateBatchGas(from: string, data: string): Promise<bigint> {
    await this.ensureContract();
    try {
      return await this.provider.estimateGas({ from, to: this.address, data });
    } catch (err) {
      const revert = decodeSequencerRevert(err);
      if (!revert) throw err;
      throw new BatchRefused('precondition_failed', `Sequencer.pinBatch would revert with ${revert.name}(${revert.args.join(', ')})`);
    }
  }

  /** Latest block number. */
  async head(): Promise<number> {
    await this.ensureReachable();
    return this.provider.getBlockNumber();
  }

  /** Latest block: its number and hash (a new hash at the same height is a reorganisation). */
  async headBlock(): Promise<{ number: number; hash: string }> {
    await this.ensureReachable();
    const block = await this.provider.getBlock('latest');
    if (!block?.hash) throw new Error('the chain RPC returned no latest block');
    return { number: block.number, hash: block.hash };
  }

  /** Canonical hash of a block, or null if it is beyond the head. */
  async blockHash(blockNumber: number): Promise<string | null> {
    assertBlockNumber('blockNumber', blockNumber);
    await this.ensureReachable();
    const block = await this.provider.getBlock(blockNumber);
    return block?.hash ?? null;
  }

  /**
   * Every pin the contract emitted in [fromBlock, toBlock], in chain order; with `only`, just
   * those tags: a batch without any of them is not even decoded, and the blocks of the others are
   * never fetched for their time (a look back over many busy blocks for a few tags). An empty range
   * (fromBlock > toBlock) yields [] so that "from last seen + 1 to head" needs no special case.
   * Chunks are fetched one after the other; each pin carries its block hash so a caller can
   * check that all of them still belong to the canonical chain.
   */
  async tagsBetween(fromBlock: number, toBlock: number, only?: ReadonlySet<string>): Promise<ObservedTag[]> {
    assertBlockNumber('fromBlock', fromBlock);
    assertBlockNumber('toBlock', toBlock);
    if (fromBlock > toBlock) return [];
    await this.ensureContract();

    const tags: ObservedTag[] = [];
    for (let start = fromBlock; start <= toBlock; start += this.maxBlockRange) {
      const end = Math.min(toBlock, start + this.maxBlockRange - 1);
      const logs = await this.provider.getLogs({
        address: this.address,
        topics: [this.topic],
        fromBlock: start,
        toBlock: end,
      });
      // A tag inside the batch's data, as hex, may be misaligned there (a false hit, dropped below) but is never missed.
      const hexes = only && [...only].map((tag) => tag.slice(2).toLowerCase());
      const candidates = logs.filter((l) => !l.removed && (!hexes || hexes.some((hex) => l.data.toLowerCase().includes(hex))));
      const kept = candidates.flatMap((l) => this.parseLog(l).filter((t) => !only || only.has(t.tag)));
      const timestamps = await this.blockTimestamps(kept.map((t) => t.blockHash));
      for (const t of kept) tags.push({ ...t, timestamp: timestamps.get(t.blockHash)! });
    }
    return tags.sort(comparePositions);
  }

  destroy(): void {
    this.provider.destroy();
  }

  /** Chain time of each block: deadlines are measured against it, never a node's clock. */
  private async blockTimestamps(blockHashes: string[]): Promise<Map<string, number>> {
    const times = new Map<string, number>();
    for (const hash of new Set(blockHashes)) {
      const block = await this.provider.getBlock(hash);
      if (!block) throw new LockstepError('unavailable', `block ${hash} vanished while reading pins (reorganisation?)`);
      times.set(hash, block.timestamp);
    }
    return times;
  }

  private parseLog(log: ethers.Log): Omit<ObservedTag, 'timestamp'>[] {
    const parsed = this.iface.parseLog({ topics: [...log.topics], data: log.data });
    if (!parsed || parsed.name !== 'BatchPinned') {
      throw new Error(`unexpected log in tx ${log.transactionHash} at index ${log.index}`);
    }
    const author = ethers.getAddress(parsed.args.author as string);
    const root = ethers.hexlify(parsed.args.root as string);
    const packed = ethers.getBytes(parsed.args.tags as string);
    const count = Math.floor(packed.length / 8);
    return Array.from({ length: count }, (_, index) => ({
      tag: ethers.hexlify(packed.slice(index * 8, index * 8 + 8)),
      author,
      root,
      count,
      blockNumber: log.blockNumber,
      blockHash: log.blockHash,
      transactionHash: log.transactionHash,
      logIndex: log.index,
      index,
    }));
  }

  /**
   * A wrong address would otherwise fail silently: a call to an account without code
   * succeeds and emits nothing, and a log query returns nothing. Checked once per client.
   */
  private async ensureContract(): Promise<void> {
    await this.ensureReachable();
    if (!this.contractChecked) {
      this.contractChecked = this.provider.getCode(this.address).then((code) => {
        if (code === '0x') {
          throw new LockstepError(
            'precondition_failed',
            `no contract at ${this.address} on ${this.rpcUrl}: is the Sequencer deployed on this chain?`,
          );
        }
      });
      this.contractChecked.catch(() => (this.contractChecked = undefined)); // retry next time
    }
    await this.contractChecked;
  }

  /**
   * ethers' JsonRpcProvider, when it does not know the chain id yet, retries detection every
   * second forever, logging each failure and holding every request until the node answers.
   * A single explicit probe first makes an unreachable node a prompt, catchable error; once
   * it succeeds the provider's own one-time detection will too, and is then cached.
   */
  private async ensureReachable(): Promise<void> {
    if (this.networkKnown) return;
    if (!this.reachable) {
      this.reachable = probeChainId(this.rpcUrl).then(
        () => {
          this.networkKnown = true;
        },
        (err: unknown) => {
          this.reachable = undefined; // let the next call try again
          throw new LockstepError(
            'unavailable',
            `chain node at ${this.rpcUrl} is unreachable: ${err instanceof Error ? err.message : String(err)}`,
          );
        },
      );
    }
    await this.reachable;
  }
}

/** One eth_chainId request, no retries. */
async function probeChainId(rpcUrl: string): Promise<bigint> {
  const request = new ethers.FetchRequest(rpcUrl);
  request.timeout = 10_000;
  request.setHeader('content-type', 'application/json');
  request.body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] });
  const response = await request.send();
  response.assertOk();
  const body = response.bodyJson as { result?: unknown; error?: { message?: string } };
  if (typeof body.result !== 'string') {
    throw new Error(`eth_chainId failed: ${body.error?.message ?? JSON.stringify(body)}`);
  }
  return BigInt(body.result);
}
