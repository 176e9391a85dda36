import { ethers } from 'ethers';
import { LockstepError } from '../model/errors';
import { comparePositions, type ObservedPin } from '../model/pin';
import { loadSequencerArtifact } from './artifact';

export interface SequencerClientOptions {
  rpcUrl: string;
  /** Address of a deployed Sequencer contract. */
  address: string;
  /** Needed only to submit pins; a reader can omit it. */
  privateKey?: string;
  /** How often ethers polls for receipts and new blocks. Default 250 ms. */
  pollingIntervalMs?: number;
  /** When known, skips chain-id detection entirely. */
  chainId?: number;
  /** Widest block range per eth_getLogs call. Default 2000 (a common RPC limit). */
  maxBlockRange?: number;
}

/** Must match `MAX_BATCH` in contracts/Sequencer.sol; checked here to fail before spending gas. */
export const MAX_PINS_PER_BATCH = 1000;

const DEFAULT_POLLING_MS = 250;
const DEFAULT_MAX_BLOCK_RANGE = 2000;
// estimateGas is exact for this deterministic function, but a margin is free (unused gas
// is refunded) and protects against estimators that under-count the calldata floor.
const GAS_MARGIN_PERCENT = 10n;
const PIN_PATTERN = /^0x[0-9a-fA-F]{64}$/;

/** Throws naming the first bad pin, so a caller can find it in a batch of hundreds. */
export function validatePins(pins: readonly unknown[]): asserts pins is string[] {
  if (!Array.isArray(pins)) throw new LockstepError('validation_failed', 'pins must be an array');
  if (pins.length === 0) {
    throw new LockstepError('validation_failed', 'a pin batch must not be empty', [
      { field: '/pins', message: 'empty' },
    ]);
  }
  if (pins.length > MAX_PINS_PER_BATCH) {
    throw new LockstepError(
      'validation_failed',
      `a pin batch holds at most ${MAX_PINS_PER_BATCH} pins, got ${pins.length}`,
      [{ field: '/pins', message: 'too many pins' }],
    );
  }
  pins.forEach((pin, index) => {
    if (typeof pin !== 'string' || !PIN_PATTERN.test(pin)) {
      const shown = typeof pin === 'string' ? JSON.stringify(pin.length > 80 ? `${pin.slice(0, 80)}…` : pin) : String(pin);
      const message = `pin at index ${index} is not a 0x-prefixed 32-byte hex string: ${shown}`;
      throw new LockstepError('validation_failed', message, [{ field: `/pins/${index}`, message }]);
    }
  });
}

/**
 * The custom error (EmptyBatch, BatchTooLarge) behind a failed call, if any. ethers decodes
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
 * Thin client for the Sequencer contract: submit pin batches, read them back in chain order.
 * It holds no state beyond the provider and the nonce counter; readers track their own
 * position and verify block hashes to detect reorgs.
 */
export class SequencerClient {
  readonly provider: ethers.JsonRpcProvider;
  private readonly rpcUrl: string;
  private readonly address: string;
  private readonly contract: ethers.Contract;
  private readonly iface: ethers.Interface;
  private readonly topic: string;
  private readonly signer?: ethers.NonceManager;
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
    // right after a block is mined could return the previous block.
    this.provider = new ethers.JsonRpcProvider(opts.rpcUrl, opts.chainId, {
      staticNetwork: true,
      pollingInterval: opts.pollingIntervalMs ?? DEFAULT_POLLING_MS,
      cacheTimeout: -1,
    });
    this.networkKnown = opts.chainId !== undefined;

    this.iface = sequencerInterface();
    const event = this.iface.getEvent('BatchPinned');
    if (!event) throw new Error('Sequencer ABI has no BatchPinned event: rebuild the contracts (npm run build)');
    this.topic = event.topicHash;

    if (opts.privateKey !== undefined) {
      // NonceManager hands out nonces locally, so concurrent submitPins calls don't all
      // read the same pending nonce from the node and replace each other.
      this.signer = new ethers.NonceManager(new ethers.Wallet(opts.privateKey, this.provider));
    }
    this.contract = new ethers.Contract(this.address, this.iface, this.signer ?? this.provider);
  }

  /**
   * Sends one pinBatch transaction and resolves once the node accepted it (not once mined).
   * Pins reach the chain in nonce order, which for concurrent calls is call order.
   */
  async submitPins(pins: string[]): Promise<{ transactionHash: string; nonce: number }> {
    validatePins(pins);
    if (!this.signer) throw new LockstepError('precondition_failed', 'SequencerClient needs a privateKey to submit pins');
    await this.ensureContract();

    // Estimate before touching the NonceManager: it reserves a nonce as soon as
    // sendTransaction is called, and a revert during its own estimation would leave a gap
    // that blocks every later transaction.
    let estimate: bigint;
    try {
      estimate = await this.contract.getFunction('pinBatch').estimateGas(pins);
    } catch (err) {
      const revert = decodeSequencerRevert(err);
      if (!revert) throw err;
      throw new LockstepError('precondition_failed', `Sequencer.pinBatch would revert with ${revert.name}(${revert.args.join(', ')})`);
    }
    const gasLimit = estimate + (estimate * GAS_MARGIN_PERCENT) / 100n;
    try {
      return await this.send(pins, gasLimit);
    } catch (err) {
      // The node refused the nonce because the key was used elsewhere (another process,
      // a manual transaction): our transaction was not accepted, so one retry with a fresh
      // nonce cannot duplicate the batch.
      if (!ethers.isError(err, 'NONCE_EXPIRED') && !ethers.isError(err, 'REPLACEMENT_UNDERPRICED')) throw err;
      return this.send(pins, gasLimit);
    }
  }

  private async send(pins: string[], gasLimit: bigint): Promise<{ transactionHash: string; nonce: number }> {
    try {
      const tx = (await this.contract.getFunction('pinBatch')(pins, { gasLimit })) as ethers.ContractTransactionResponse;
      return { transactionHash: tx.hash, nonce: tx.nonce };
    } catch (err) {
      // The reserved nonce may not have reached the node; re-read it rather than leave a gap.
      this.signer?.reset();
      throw err;
    }
  }

  /** Latest block number. */
  async head(): Promise<number> {
    await this.ensureReachable();
    return this.provider.getBlockNumber();
  }

  /** Canonical hash of a block, or null if it is beyond the head. */
  async blockHash(blockNumber: number): Promise<string | null> {
    assertBlockNumber('blockNumber', blockNumber);
    await this.ensureReachable();
    const block = await this.provider.getBlock(blockNumber);
    return block?.hash ?? null;
  }

  /**
   * Every pin the contract emitted in [fromBlock, toBlock], in chain order. An empty range
   * (fromBlock > toBlock) yields [] so that "from last seen + 1 to head" needs no special case.
   * Chunks are fetched one after the other; each pin carries its block hash so a caller can
   * check that all of them still belong to the canonical chain.
   */
  async pinsBetween(fromBlock: number, toBlock: number): Promise<ObservedPin[]> {
    assertBlockNumber('fromBlock', fromBlock);
    assertBlockNumber('toBlock', toBlock);
    if (fromBlock > toBlock) return [];
    await this.ensureContract();

    const pins: ObservedPin[] = [];
    for (let start = fromBlock; start <= toBlock; start += this.maxBlockRange) {
      const end = Math.min(toBlock, start + this.maxBlockRange - 1);
      const logs = await this.provider.getLogs({
        address: this.address,
        topics: [this.topic],
        fromBlock: start,
        toBlock: end,
      });
      const timestamps = await this.blockTimestamps(logs.filter((l) => !l.removed).map((l) => l.blockHash));
      for (const log of logs) {
        if (log.removed) continue;
        pins.push(...this.parseLog(log, timestamps.get(log.blockHash)!));
      }
    }
    return pins.sort(comparePositions);
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

  private parseLog(log: ethers.Log, timestamp: number): ObservedPin[] {
    const parsed = this.iface.parseLog({ topics: [...log.topics], data: log.data });
    if (!parsed || parsed.name !== 'BatchPinned') {
      throw new Error(`unexpected log in tx ${log.transactionHash} at index ${log.index}`);
    }
    const author = ethers.getAddress(parsed.args.author as string);
    const batchHash = ethers.hexlify(parsed.args.batchHash as string);
    const batch = parsed.args.pins as ethers.Result;
    return batch.toArray().map((pin, index) => ({
      pin: ethers.hexlify(pin as string),
      author,
      batchHash,
      blockNumber: log.blockNumber,
      blockHash: log.blockHash,
      timestamp,
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
