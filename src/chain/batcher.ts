/**
 * The durable batcher: steps wait in a MongoDB queue, are cut into batches (by size, by age, or
 * at once while none of the batcher's transactions awaits mining), and each batch goes out as one
 * transaction. Every decision is written down before it is acted on, so a node that crashes at
 * any point pins each queued step exactly once after restart:
 *
 *   queue item ──cut──► batch doc (leaves, nonce, signed tx) ──► items marked ──► broadcast
 *
 * Only the party's leading process runs its batcher (src/node/leadership.ts), so once it has
 * read the queue and the open batches back at start, it keeps them in memory and polls
 * nothing but the chain; MongoDB holds the durable copy it writes before acting. (On FerretDB a
 * query on anything but `_id` reads the whole collection, and both collections only grow.)
 *
 * Failures are never silent. A step the contract would refuse even alone (found by trying the
 * steps of a refused batch one by one) is set aside as failed, with a `pin.failed` event, and the
 * other steps go out without it. A batch that cannot be sent for a reason outside its content (no
 * funds, a node refusing it) keeps being sent as is, but `health` and a `pin.failing` event say
 * why, and its fees are raised only when the network took the transaction and did not mine it.
 *
 * The batcher owns its account's nonces. A transaction that is not mined in time is re-signed at
 * the same nonce with higher fees, so a nonce is never left stuck. A batch whose transaction can
 * never be mined (it reverted, or its nonce went to another transaction) is sent again with the
 * very same content under a fresh nonce: the receipts already handed to peers (root, index,
 * proof) stay valid, and its steps never wait behind it forever.
 */
import { keccak256, Wallet, type JsonRpcProvider } from 'ethers';
import type { Logger } from 'pino';
import type { PinReceipt } from '../model/pin';
import type { BatchDoc, PinQueueDoc } from '../store/documents';
import type { Store } from '../store/store';
import { merkleProof, merkleRoot } from './merkle';
import type { SequencerClient } from './sequencer';
import { BatchRefused, MAX_TAGS_PER_BATCH } from './sequencer';
import { pinFailed, pinFailing } from '../events/hooks';
import { PollLoop } from './poll-loop';

export interface BatcherOptions {
  store: Store;
  sequencer: SequencerClient;
  provider: JsonRpcProvider;
  privateKey: string;
  chainId: number;
  /** Most steps per transaction. */
  batchSize: number;
  /**
   * Longest a step waits for others to share its transaction, and only while one of this
   * batcher's transactions is still waiting to be mined: with none in flight a step goes at once.
   */
  batchWaitMs: number;
  /** Broadcast an unmined transaction again after this long (fees raised if it was refused). */
  resubmitAfterMs: number;
  /** Depth after which a mined batch is final and no longer watched. */
  confirmations: number;
  /** How often the queue and the sent batches are looked at (default 50 ms); each look is a few queries. */
  tickMs?: number;
  log: Logger;
}

export interface PinRequest {
  envelopeHash: string;
  instanceId: string;
  tag: string;
  leaf: string;
}

const DEFAULT_TICK_MS = 50;
const GAS_MARGIN_PERCENT = 20n;
const FEE_BUMP_PERCENT = 25n;

/** A reverted batch is sent again with twice the gas, but never with more than this. */
const MAX_GAS_LIMIT = 15_000_000n;

export interface BatcherHealth {
  ok: boolean;
  /** Why pins are not going out, while they are not. */
  error: string | null;
  since: string | null;
}

/** Thrown by `pin` for a step set aside as one the contract refuses: retrying cannot help. */
export class PinFailedError extends Error {
  constructor(
    readonly envelopeHash: string,
    readonly reason: string,
  ) {
    super(`step ${envelopeHash} can never be pinned: ${reason}`);
    this.name = 'PinFailedError';
  }
}

export class Batcher {
  private readonly wallet: Wallet;
  /** Ticks every tickMs, and at once when a step arrives (a lone step may go at once). */
  private readonly loop: PollLoop;
  private stopped = true;
  /** Resolved at the end of each tick: what `pin` waits on between its looks. */
  private ticked = deferred();
  private recovered = false;
  /** Steps queued and not in a batch yet, oldest first. */
  private readonly waiting = new Map<string, PinQueueDoc>();
  /** Batches not final yet, by _id: what watch() follows (the objects are kept equal to their documents). */
  private readonly open = new Map<string, BatchDoc>();
  /** Envelope hash to its batch, for the steps of open batches. */
  private readonly batchOf = new Map<string, string>();
  /** Highest nonce any batch was written down with (-1: none). */
  private lastNonce = -1;
  private failure?: { error: string; since: Date };
  /** Set when anything in the current tick failed; a clean tick clears `failure`. */
  private tickFailed = false;

  constructor(private readonly opts: BatcherOptions) {
    if (opts.batchSize < 1 || opts.batchSize > MAX_TAGS_PER_BATCH) throw new Error(`batch size must be 1..${MAX_TAGS_PER_BATCH}, got ${opts.batchSize}`);
    this.wallet = new Wallet(opts.privateKey, opts.provider);
    this.loop = new PollLoop(() => this.scheduledTick(), opts.tickMs ?? DEFAULT_TICK_MS);
  }

  start(): void {
    this.stopped = false;
    // Another process may have led (and sent batches) since this one last ran: read it all back.
    this.recovered = false;
    this.waiting.clear();
    this.open.clear();
    this.batchOf.clear();
    this.loop.start(this.opts.tickMs ?? DEFAULT_TICK_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop.stop();
  }

  /** Whether pins are going out; if not, why and since when. */
  get health(): BatcherHealth {
    return { ok: this.failure === undefined, error: this.failure?.error ?? null, since: this.failure?.since.toISOString() ?? null };
  }

  /** Whether a transaction of this batcher is signed or sent and not mined yet. */
  private awaitingMining(): boolean {
    for (const batch of this.open.values()) if (batch.status === 'signed' || batch.status === 'sent') return true;
    return false;
  }

  /** Steps queued here and not yet mined: waiting for a batch, or in one not mined yet. */
  waitingSteps(): number {
    let unmined = 0;
    for (const batch of this.open.values()) if (batch.status === 'signed' || batch.status === 'sent') unmined += batch.envelopeHashes.length;
    return this.waiting.size + unmined;
  }

  /** Queues a step (idempotent) and resolves with its receipt once its batch is on its way. */
  async pin(request: PinRequest, timeoutMs: number): Promise<PinReceipt & { transactionHash: string }> {
    const { store } = this.opts;
    const hash = request.envelopeHash;
    const queued = await store.enqueuePin(request);
    // Queued by this call: the document is what was just written, so it is not read back below.
    if (queued && this.recovered) this.takeIn(queued);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.waiting.has(hash) || this.batchOf.has(hash)) {
        const batch = this.open.get(this.batchOf.get(hash) ?? '');
        if (batch && batch.status !== 'signed') return receiptOf(batch, batch.envelopeHashes.indexOf(hash));
      } else if (this.recovered || this.stopped) {
        // Not in memory: new, or batched earlier (by a previous process, or before a retry); or
        // this process does not lead (replicas), and the leader's batcher takes it from the queue.
        const item = await store.pinQueue.findOne({ _id: hash });
        if (item?.failed) throw new PinFailedError(hash, item.failed);
        if (item?.batch) {
          const batch = await store.batches.findOne({ _id: item.batch });
          if (batch && batch.status !== 'signed') return receiptOf(batch, item.index!);
        } else if (item) {
          this.takeIn(item);
        }
      }
      const tickMs = this.opts.tickMs ?? DEFAULT_TICK_MS;
      await Promise.race([this.ticked.promise, sleep(tickMs)]);
    }
    throw new Error(`step ${request.envelopeHash} not batched within ${timeoutMs} ms (is the chain reachable?)`);
  }

  /** Adds a queued step to the steps waiting for a batch, unless stopped or already known here. */
  private takeIn(item: PinQueueDoc): void {
    if (this.stopped || this.waiting.has(item._id) || this.batchOf.has(item._id)) return;
    this.waiting.set(item._id, item);
    this.loop.wake();
  }

  /** One tick of the loop: failures are reported (health) and the next tick tries again. */
  private async scheduledTick(): Promise<void> {
    try {
      await this.tick();
    } catch (err) {
      this.opts.log.warn({ err }, 'batcher tick failed; retrying');
      this.failed((err as Error).message);
    } finally {
      const done = this.ticked;
      this.ticked = deferred();
      done.resolve();
    }
  }

  async tick(): Promise<void> {
    this.tickFailed = false;
    if (!this.recovered) {
      await this.recover();
      this.recovered = true;
    }
    await this.cut();
    await this.watch();
    if (!this.tickFailed && this.failure) {
      this.opts.log.info({ since: this.failure.since, error: this.failure.error }, 'batcher healthy again');
      this.failure = undefined;
    }
  }

  private failed(error: string): void {
    this.tickFailed = true;
    if (this.failure?.error !== error) this.failure = { error, since: this.failure?.since ?? new Date() };
  }

  /**
   * At start (and after a crash): reads the open batches and the queue back. Items of batches
   * already written down belong to them, not to a new batch.
   */
  private async recover(): Promise<void> {
    const { store } = this.opts;
    const last = await store.batches.find({}).sort({ nonce: -1 }).limit(1).toArray();
    this.lastNonce = last[0]?.nonce ?? -1;
    for (const batch of await store.batches.find({ status: { $in: ['signed', 'sent', 'mined'] } }).toArray()) this.track(batch);
    for (const batch of this.open.values()) {
      if (batch.status === 'signed' || batch.status === 'sent') await store.assignBatch(batch);
      if (batch.status === 'signed') await this.broadcast(batch, batch.rawTxs[batch.rawTxs.length - 1]!);
    }
    for (const item of await store.pinQueue.find({ batch: { $exists: false }, failed: { $exists: false } }).sort({ queuedAt: 1, _id: 1 }).toArray()) {
      if (!this.batchOf.has(item._id)) this.waiting.set(item._id, item);
    }
  }

  private track(batch: BatchDoc): void {
    this.open.set(batch._id, batch);
    for (const hash of batch.envelopeHashes) this.batchOf.set(hash, batch._id);
  }

  private untrack(batch: BatchDoc): void {
    this.open.delete(batch._id);
    for (const hash of batch.envelopeHashes) if (this.batchOf.get(hash) === batch._id) this.batchOf.delete(hash);
  }

  private async cut(): Promise<void> {
    const { batchSize, batchWaitMs } = this.opts;
    if (this.waiting.size === 0) return;
    const items: PinQueueDoc[] = [];
    for (const item of this.waiting.values()) {
      items.push(item);
      if (items.length === batchSize) break;
    }
    // Nagle's rule: a partial batch waits (for more steps, up to batchWaitMs) only while an
    // earlier transaction awaits mining. A lone step then pays no wait, and under load the steps
    // that arrive during one block still share a transaction.
    const oldest = items[0]!.queuedAt.getTime();
    if (items.length < batchSize && Date.now() - oldest < batchWaitMs && this.awaitingMining()) return;
    try {
      await this.send(items);
    } catch (err) {
      // The contract (or the batch's own checks) refuses this content: find the steps it refuses
      // alone and set them aside, so one bad step never holds the queue. Anything else (the chain
      // unreachable, no contract there): the next tick tries again, and health says why.
      if (!(err instanceof BatchRefused)) throw err;
      await this.isolate(items, err.message);
    }
  }

  /** Tries each step of a refused batch alone; the ones refused alone can never be pinned. */
  private async isolate(items: PinQueueDoc[], reason: string): Promise<void> {
    const { store, sequencer } = this.opts;
    let setAside = 0;
    for (const item of items) {
      try {
        await sequencer.estimateBatchGas(this.wallet.address, sequencer.encodeBatch(merkleRoot([item.leaf]), [item.tag]));
        continue;
      } catch (err) {
        // Not a refusal of the content (the chain is unreachable, say): the next tick tries again.
        if (!(err instanceof BatchRefused)) throw err;
        const why = err.message;
        await store.pinQueue.updateOne({ _id: item._id }, { $set: { failed: why } });
        this.waiting.delete(item._id);
        await pinFailed(store.events, { instanceId: item.instanceId, envelopeHash: item._id, reason: why });
        this.opts.log.error({ instanceId: item.instanceId, envelopeHash: item._id, reason: why }, 'step can never be pinned; set aside');
        setAside++;
      }
    }
    if (setAside === 0) this.failed(`a batch of ${items.length} steps is refused, though none is alone: ${reason}`);
  }

  private async send(items: PinQueueDoc[]): Promise<void> {
    const { store, sequencer, provider, chainId } = this.opts;
    const leaves = items.map((i) => i.leaf);
    const root = merkleRoot(leaves);
    const data = sequencer.encodeBatch(root, items.map((i) => i.tag));
    // Three independent questions to the chain node: asked side by side, one round trip instead of three.
    const [nonce, gas, fees] = await Promise.all([this.nextNonce(), sequencer.estimateBatchGas(this.wallet.address, data), provider.getFeeData()]);
    const tx = {
      to: sequencer.contractAddress,
      data,
      nonce,
      chainId,
      type: 2,
      gasLimit: gas + (gas * GAS_MARGIN_PERCENT) / 100n,
      maxFeePerGas: fees.maxFeePerGas ?? fees.gasPrice ?? 1_000_000_000n,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas ?? 0n,
    };
    const raw = await this.wallet.signTransaction(tx);
    const batch: BatchDoc = {
      _id: `${root}:${nonce}`,
      root,
      leaves,
      tags: items.map((i) => i.tag),
      envelopeHashes: items.map((i) => i._id),
      nonce,
      rawTxs: [raw],
      txHashes: [txHashOf(raw)],
      maxFeePerGas: tx.maxFeePerGas.toString(),
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas.toString(),
      gasLimit: tx.gasLimit.toString(),
      status: 'signed',
      createdAt: new Date(),
      lastSentAt: new Date(),
    };
    await store.batches.insertOne(batch);
    for (const item of items) this.waiting.delete(item._id);
    this.track(batch);
    this.lastNonce = Math.max(this.lastNonce, nonce);
    // Should either of these fail, watch() takes the batch (still 'signed') up again.
    await store.assignBatch(batch);
    await this.broadcast(batch, raw);
    this.opts.log.info({ batch: batch._id, steps: items.length, nonce, transactionHash: batch.txHashes[0] }, 'batch sent');
  }

  private async nextNonce(): Promise<number> {
    const onChain = await this.opts.provider.getTransactionCount(this.wallet.address, 'pending');
    return Math.max(onChain, this.lastNonce + 1);
  }

  private async broadcast(batch: BatchDoc, raw: string): Promise<void> {
    let refused: string | undefined;
    try {
      // Not broadcastTransaction: that also asks for the block number and recovers the sender in
      // JavaScript, for a response object nothing here reads. Errors come the same way (ethers
      // maps JSON-RPC errors in send).
      await this.opts.provider.send('eth_sendRawTransaction', [raw]);
    } catch (err) {
      const message = (err as Error).message;
      // Already known: an earlier broadcast got through. Anything else is handled by watch().
      if (!/already known|known transaction|already imported/i.test(message)) {
        refused = shortReason(message);
        this.opts.log.warn({ batch: batch._id, err: message }, 'broadcast refused; will retry');
      }
    }
    const status = batch.status === 'mined' ? 'mined' : 'sent';
    if (refused) {
      this.failed(`pin transaction refused: ${refused}`);
      await this.save(batch, { status, lastSentAt: new Date(), refused });
      await this.reportFailing(batch, `pin transaction refused: ${refused}`);
    } else {
      await this.save(batch, { status, lastSentAt: new Date() }, batch.refused !== undefined ? ['refused'] : []);
    }
  }

  /** Tells the apps of every instance with a step in the batch, once per batch. */
  private async reportFailing(batch: BatchDoc, reason: string): Promise<void> {
    const items = await this.opts.store.pinQueue.find({ _id: { $in: batch.envelopeHashes } }).toArray();
    const instances = [...new Set(items.map((i) => i.instanceId))];
    for (const instanceId of instances) {
      const steps = items.filter((i) => i.instanceId === instanceId).map((i) => i._id);
      await pinFailing(this.opts.store.events, { batch: batch._id, instanceId, steps, reason });
    }
  }

  /** Writes a change to a batch down, then applies it to the batch this process follows. */
  private async save(batch: BatchDoc, set: Partial<BatchDoc>, unset: (keyof BatchDoc)[] = []): Promise<void> {
    await this.opts.store.batches.updateOne(
      { _id: batch._id },
      unset.length > 0 ? { $set: set, $unset: Object.fromEntries(unset.map((k) => [k, ''])) } : { $set: set },
    );
    const followed = this.open.get(batch._id);
    for (const target of new Set([batch, ...(followed ? [followed] : [])])) {
      Object.assign(target, set);
      for (const key of unset) delete target[key];
    }
  }

  /** Follows sent batches to their receipts; re-sends, re-prices or retires the stragglers. */
  private async watch(): Promise<void> {
    const { store, provider, resubmitAfterMs } = this.opts;
    for (const batch of [...this.open.values()].filter((b) => b.status === 'signed')) {
      // Written down, but assigning or broadcasting it failed earlier in this process.
      await store.assignBatch(batch);
      await this.broadcast(batch, batch.rawTxs[batch.rawTxs.length - 1]!);
    }
    for (const batch of [...this.open.values()].filter((b) => b.status === 'sent')) {
      const receipt = await this.findReceipt(batch);
      if (receipt) {
        if (receipt.status === 1) {
          await this.save(batch, { status: 'mined', minedTx: receipt.hash, minedBlock: receipt.blockNumber });
        } else {
          this.failed(`pin transaction ${receipt.hash} reverted`);
          await this.reportFailing(batch, `pin transaction ${receipt.hash} reverted`);
          await this.retire(batch, `transaction ${receipt.hash} reverted`, true);
        }
        continue;
      }
      if (batch.refused) this.failed(`pin transaction refused: ${batch.refused}`);
      if (Date.now() - batch.lastSentAt.getTime() < resubmitAfterMs) continue;
      const mined = await provider.getTransactionCount(this.wallet.address, 'latest');
      if (mined > batch.nonce) {
        // The batch itself may have been mined since findReceipt above looked (a block can land
        // between the two calls): look again, or retiring it would queue its steps again and
        // pin them a second time. Only with still no receipt was the nonce used by another tx.
        if (await this.findReceipt(batch)) continue;
        await this.retire(batch, `nonce ${batch.nonce} was consumed by another transaction`, false);
        continue;
      }
      // Refused (no funds, say): raising the fees would only make it dearer once it can go.
      if (batch.refused && !/underpriced|fee too low|replacement/i.test(batch.refused)) {
        await this.broadcast(batch, batch.rawTxs[batch.rawTxs.length - 1]!);
        continue;
      }
      await this.reprice(batch);
    }
    // A mined batch whose receipt vanished was reorganised away: send it again.
    const mined = [...this.open.values()].filter((b) => b.status === 'mined');
    const head = mined.length > 0 ? await provider.getBlockNumber() : 0;
    for (const batch of mined) {
      const receipt = await this.findReceipt(batch);
      if (receipt && head - receipt.blockNumber + 1 >= this.opts.confirmations) {
        await this.save(batch, { status: 'final' });
        this.untrack(batch);
      } else if (!receipt) {
        this.opts.log.warn({ batch: batch._id, block: batch.minedBlock }, 'batch reorganised out of the chain; sending it again');
        await this.save(batch, { status: 'sent' }, ['minedTx', 'minedBlock']);
        await this.broadcast(batch, batch.rawTxs[batch.rawTxs.length - 1]!);
      }
    }
  }

  private async findReceipt(batch: BatchDoc) {
    for (const hash of batch.txHashes) {
      const receipt = await this.opts.provider.getTransactionReceipt(hash);
      if (receipt) return receipt;
    }
    return null;
  }

  /** Same nonce, same data, higher fees: replaces a transaction the network has not mined in time. */
  private async reprice(batch: BatchDoc): Promise<void> {
    const bump = (v: string) => (BigInt(v) * (100n + FEE_BUMP_PERCENT)) / 100n + 1n;
    const fees = await this.opts.provider.getFeeData();
    const atLeast = (bumped: bigint, market: bigint | null) => (market !== null && market > bumped ? market : bumped);
    const maxFeePerGas = atLeast(bump(batch.maxFeePerGas), fees.maxFeePerGas);
    const maxPriorityFeePerGas = atLeast(bump(batch.maxPriorityFeePerGas), fees.maxPriorityFeePerGas);
    const raw = await this.sign(batch, batch.nonce, BigInt(batch.gasLimit), maxFeePerGas, maxPriorityFeePerGas);
    await this.save(batch, {
      rawTxs: [...batch.rawTxs, raw],
      txHashes: [...batch.txHashes, txHashOf(raw)],
      maxFeePerGas: maxFeePerGas.toString(),
      maxPriorityFeePerGas: maxPriorityFeePerGas.toString(),
    });
    this.opts.log.warn({ batch: batch._id, nonce: batch.nonce, maxFeePerGas: maxFeePerGas.toString() }, 'batch not mined in time; re-sent with higher fees');
    await this.broadcast(batch, raw);
  }

  private sign(batch: BatchDoc, nonce: number, gasLimit: bigint, maxFeePerGas: bigint, maxPriorityFeePerGas: bigint): Promise<string> {
    return this.wallet.signTransaction({
      to: this.opts.sequencer.contractAddress,
      data: this.opts.sequencer.encodeBatch(batch.root, batch.tags),
      nonce,
      chainId: this.opts.chainId,
      type: 2,
      gasLimit,
      maxFeePerGas,
      maxPriorityFeePerGas,
    });
  }

  /**
   * A transaction that can never be mined must not hold its steps hostage. The batch goes out
   * again, same content, under a fresh nonce (with twice the gas if it reverted, the only way our
   * contract reverts on a well-formed batch being out of gas): every receipt stays valid.
   */
  private async retire(batch: BatchDoc, reason: string, reverted: boolean): Promise<void> {
    const nonce = await this.nextNonce();
    const doubled = BigInt(batch.gasLimit) * 2n;
    const gasLimit = reverted ? (doubled > MAX_GAS_LIMIT ? MAX_GAS_LIMIT : doubled) : BigInt(batch.gasLimit);
    const raw = await this.sign(batch, nonce, gasLimit, BigInt(batch.maxFeePerGas), BigInt(batch.maxPriorityFeePerGas));
    this.opts.log.error({ batch: batch._id, reason, nonce }, 'batch transaction can never be mined; sending the same batch under a new nonce');
    await this.save(batch, { nonce, gasLimit: gasLimit.toString(), rawTxs: [raw], txHashes: [txHashOf(raw)], reason, status: 'sent', lastSentAt: new Date() });
    this.lastNonce = Math.max(this.lastNonce, nonce);
    await this.broadcast(batch, raw);
  }
}

export function receiptOf(batch: BatchDoc, index: number): PinReceipt & { transactionHash: string } {
  return {
    root: batch.root,
    index,
    count: batch.leaves.length,
    proof: merkleProof(batch.leaves, index),
    transactionHash: batch.minedTx ?? batch.txHashes[batch.txHashes.length - 1]!,
  };
}

/** A signed transaction's hash is the keccak-256 of its serialised form (typed ones included), no parsing needed. */
function txHashOf(raw: string): string {
  return keccak256(raw);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The first line of a JSON-RPC refusal, without ethers' request dump. */
function shortReason(message: string): string {
  const m = /"message":\s*"([^"]+)"/.exec(message);
  return (m ? m[1]! : message.split('(')[0]!).trim().slice(0, 200);
}
