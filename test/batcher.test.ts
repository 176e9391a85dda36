/**
 * The durable batcher against the real stack (MongoDB/FerretDB, anvil with manual mining): steps
 * are cut into batches of the configured size, each pinned exactly once, with receipts whose
 * Merkle proofs check against the root on chain; and that stays true across a crash between
 * writing a batch down and sending it, a transaction dropped from the mempool, and a reorg.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ethers } from 'ethers';
import { Collection } from 'mongodb';
import pino from 'pino';
import { Batcher, type BatcherOptions, type PinRequest } from '../src/chain/batcher';
import { verifyMerkleProof } from '../src/chain/merkle';
import { contextOf, stepLeaf, tagOf } from '../src/chain/pins';
import { SequencerClient } from '../src/chain/sequencer';
import type { ObservedTag, PinReceipt } from '../src/model/pin';
import type { BatchDoc } from '../src/store/documents';
import { Store } from '../src/store/store';
import { startStack, type Stack } from '../src/stack/local-stack';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../src/stack/search-attributes';
import { eventually } from './support/eventually';

const PARTY = 'acme';
const PIN_TIMEOUT_MS = 60_000;

type Receipt = PinReceipt & { transactionHash: string };

/** A step's pin request as the node builds it: tag and leaf from the step's masked context. */
function stepRequest(instanceSecret: string, instanceId: string, author: string, seq: number): PinRequest {
  const envelopeHash = ethers.hexlify(ethers.randomBytes(32));
  const context = contextOf(instanceSecret, author, seq);
  return { envelopeHash, instanceId, tag: tagOf(context), leaf: stepLeaf(instanceSecret, author, seq, envelopeHash) };
}

function stepRequests(n: number): PinRequest[] {
  const secret = ethers.hexlify(ethers.randomBytes(32));
  const instanceId = `inst-${randomBytes(4).toString('hex')}`;
  return Array.from({ length: n }, (_, i) => stepRequest(secret, instanceId, PARTY, i + 1));
}

describe('durable batcher', () => {
  let dir: string;
  let stack: Stack;
  let provider: ethers.JsonRpcProvider;
  let sequencer: SequencerClient;
  let author: string;
  const stores: Store[] = [];
  const batchers: Batcher[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-batcher-test-'));
    // External servers from the environment would make this test use them instead of its own.
    for (const name of ['TEMPORAL_ADDRESS', 'MONGODB_URI', 'ETH_RPC_URL']) delete process.env[name];
    stack = await startStack({
      dir,
      parties: [PARTY],
      ports: 'free',
      mining: { mode: 'manual' },
      confirmations: 1,
      searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
    });
    const { chain } = stack.network;
    provider = new ethers.JsonRpcProvider(chain.rpcUrl, chain.chainId, { staticNetwork: true, cacheTimeout: -1 });
    sequencer = new SequencerClient({ rpcUrl: chain.rpcUrl, address: chain.sequencer, chainId: chain.chainId, pollingIntervalMs: 100 });
    author = stack.network.parties[PARTY]!.address;
  }, 180_000);

  afterAll(async () => {
    for (const batcher of batchers) await batcher.stop();
    for (const store of stores) await store.close();
    sequencer?.destroy();
    provider?.destroy();
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  // Each test starts from an empty mempool, so that a failure in one does not spill into the next.
  beforeEach(async () => {
    await provider.send('anvil_dropAllTransactions', []);
  });

  async function openStore(): Promise<Store> {
    const store = await Store.connect(stack.network.mongodb.uri, `batcher_test_${randomBytes(6).toString('hex')}`);
    stores.push(store);
    return store;
  }

  function newBatcher(store: Store, options: Partial<BatcherOptions> = {}): Batcher {
    const batcher = new Batcher({
      store,
      sequencer,
      provider: sequencer.provider,
      privateKey: stack.network.devKeys![PARTY]!,
      chainId: stack.network.chain.chainId,
      batchSize: 10,
      batchWaitMs: 200,
      resubmitAfterMs: 60_000,
      confirmations: 3,
      log: pino({ level: 'silent' }),
      ...options,
    });
    batchers.push(batcher);
    return batcher;
  }

  /**
   * Queues the steps before the batcher starts, so it reads them all back at once: the tests about
   * one batch's fate need its steps in that batch, where steps arriving one by one while no
   * transaction awaits mining would each go at once.
   */
  async function queued(store: Store, requests: PinRequest[]): Promise<PinRequest[]> {
    for (const request of requests) await store.enqueuePin(request);
    return requests;
  }

  async function pendingTransactions(): Promise<number> {
    const status = (await provider.send('txpool_status', [])) as { pending: string };
    return Number(status.pending);
  }

  async function mine(blocks = 1): Promise<void> {
    for (let i = 0; i < blocks; i++) await provider.send('evm_mine', []);
  }

  async function head(): Promise<number> {
    return provider.getBlockNumber();
  }

  async function batchesWithStatus(store: Store, status: BatchDoc['status'][], count: number): Promise<BatchDoc[]> {
    return eventually(`${count} batch(es) with status ${status.join('/')}`, async () => {
      const docs = await store.batches.find({ status: { $in: status } }).toArray();
      return docs.length === count ? docs : undefined;
    });
  }

  /** Our pins on chain in (fromBlock, head]. */
  async function pinnedSince(fromBlock: number): Promise<ObservedTag[]> {
    return (await sequencer.tagsBetween(fromBlock + 1, await head())).filter((t) => t.author === author);
  }

  /** Every request's tag is on chain exactly once, and its receipt proves its leaf against that batch's root. */
  function expectPinnedOnceWithValidProofs(observed: ObservedTag[], requests: PinRequest[], receipts: Receipt[]): void {
    expect(observed.map((t) => t.tag).sort()).toEqual(requests.map((r) => r.tag).sort());
    requests.forEach((request, i) => {
      const onChain = observed.filter((t) => t.tag === request.tag);
      expect(onChain).toHaveLength(1);
      const seen = onChain[0]!;
      const receipt = receipts[i]!;
      expect({ root: receipt.root, index: receipt.index, count: receipt.count }).toEqual({ root: seen.root, index: seen.index, count: seen.count });
      expect(verifyMerkleProof(request.leaf, seen.index, seen.count, receipt.proof, seen.root)).toBe(true);
      // And the proof is for this leaf only.
      expect(verifyMerkleProof(ethers.keccak256(request.leaf), seen.index, seen.count, receipt.proof, seen.root)).toBe(false);
    });
  }

  test('25 concurrent steps with batch size 10 go out as exactly 3 batches, each step once', async () => {
    const store = await openStore();
    const batcher = newBatcher(store, { batchSize: 10, batchWaitMs: 1_000 });
    const start = await head();
    const requests = await queued(store, stepRequests(25));
    batcher.start();

    const receipts = await Promise.all(requests.map((r) => batcher.pin(r, PIN_TIMEOUT_MS)));
    await eventually('3 transactions in the mempool', async () => ((await pendingTransactions()) >= 3 ? true : undefined));
    await mine();
    const docs = await batchesWithStatus(store, ['mined'], 3);

    const observed = await pinnedSince(start);
    expect(observed).toHaveLength(25);
    expectPinnedOnceWithValidProofs(observed, requests, receipts);
    const transactions = new Set(observed.map((t) => t.transactionHash));
    expect(transactions.size).toBe(3);
    expect([...transactions].map((tx) => observed.filter((t) => t.transactionHash === tx).length).sort((a, b) => a - b)).toEqual([5, 10, 10]);
    // Each receipt names the transaction its step went out in; nonces are consecutive.
    requests.forEach((request, i) => expect(receipts[i]!.transactionHash).toBe(observed.find((t) => t.tag === request.tag)!.transactionHash));
    expect(new Set(docs.map((d) => d.minedTx))).toEqual(transactions);
    const nonces = docs.map((d) => d.nonce).sort((a, b) => a - b);
    expect(nonces).toEqual([nonces[0]!, nonces[0]! + 1, nonces[0]! + 2]);
    expect(await store.pinQueue.countDocuments({ batch: { $exists: false } })).toBe(0);

    // Confirmed at depth 3, then no longer watched.
    await mine(2);
    await batchesWithStatus(store, ['final'], 3);
    await batcher.stop();
    expect(await pendingTransactions()).toBe(0);
  });

  test('a lone step goes out at once; steps arriving while its transaction awaits mining share the next one', async () => {
    const store = await openStore();
    // A batch wait far beyond the pin timeout: only the rule can send a partial batch here.
    const batcher = newBatcher(store, { batchSize: 10, batchWaitMs: 10 * PIN_TIMEOUT_MS });
    const start = await head();
    batcher.start();

    const [lone] = stepRequests(1);
    // Queued by this call: its queue document is known as written, not read back.
    const findOne = jest.spyOn(Collection.prototype, 'findOne');
    let loneReceipt: Receipt;
    try {
      loneReceipt = await batcher.pin(lone!, PIN_TIMEOUT_MS);
      expect(findOne.mock.contexts.filter((c) => (c as Collection).collectionName === 'pinQueue')).toHaveLength(0);
    } finally {
      findOne.mockRestore();
    }
    expect(loneReceipt.count).toBe(1);
    await batchesWithStatus(store, ['sent'], 1);

    // Its transaction is not mined (manual mining): the next steps wait for it, not for one another.
    const later = stepRequests(3);
    const laterReceipts = Promise.all(later.map((r) => batcher.pin(r, PIN_TIMEOUT_MS)));
    await eventually('the three steps waiting behind the unmined batch', () => Promise.resolve(batcher.waitingSteps() === 4 ? true : undefined));
    expect(await store.batches.countDocuments()).toBe(1);

    await mine();
    const receipts = await laterReceipts;
    expect(receipts.map((r) => r.count)).toEqual([3, 3, 3]);
    expect(new Set(receipts.map((r) => r.root)).size).toBe(1);
    await eventually('the second batch in the mempool', async () => ((await pendingTransactions()) >= 1 ? true : undefined));
    await mine();
    const docs = await batchesWithStatus(store, ['mined'], 2);
    expect(docs.map((d) => d.envelopeHashes.length).sort()).toEqual([1, 3]);
    const observed = await pinnedSince(start);
    expectPinnedOnceWithValidProofs(observed, [lone!, ...later], [loneReceipt, ...receipts]);
    await batcher.stop();
  });

  test('after a crash between writing a batch down and sending it, a new batcher pins its steps exactly once', async () => {
    const store = await openStore();
    const requests = stepRequests(4);
    for (const request of requests) await store.enqueuePin(request);
    const start = await head();

    // The first batcher "crashes" right after the batch document is written: its steps are
    // not yet marked as taken and the signed transaction was never broadcast.
    const crashing = Object.create(store) as Store;
    crashing.assignBatch = () => Promise.reject(new Error('simulated crash'));
    const crashed = newBatcher(crashing, { batchSize: 4 });
    await expect(crashed.tick()).rejects.toThrow('simulated crash');

    const [written, ...others] = await store.batches.find().toArray();
    expect(others).toHaveLength(0);
    expect(written).toMatchObject({ status: 'signed', envelopeHashes: requests.map((r) => r.envelopeHash) });
    expect(written!.rawTxs).toHaveLength(1);
    expect(await store.pinQueue.countDocuments({ batch: { $exists: true } })).toBe(0);
    expect(await pendingTransactions()).toBe(0);
    expect(await provider.getTransaction(written!.txHashes[0]!)).toBeNull();

    // A new process on the same database.
    const restarted = newBatcher(store, { batchSize: 4, batchWaitMs: 100 });
    restarted.start();
    const receipts = await Promise.all(requests.map((r) => restarted.pin(r, PIN_TIMEOUT_MS)));
    await eventually('the batch in the mempool', async () => ((await pendingTransactions()) >= 1 ? true : undefined));
    await mine();
    const [minedDoc] = await batchesWithStatus(store, ['mined'], 1);
    await restarted.stop();

    // It sent the transaction that was written down, not a new batch.
    expect(minedDoc!._id).toBe(written!._id);
    expect(minedDoc!.minedTx).toBe(written!.txHashes[0]);
    const observed = await pinnedSince(start);
    expect(observed).toHaveLength(4);
    expect(new Set(observed.map((t) => t.transactionHash))).toEqual(new Set([written!.txHashes[0]]));
    expect(observed[0]!.root).toBe(written!.root);
    expectPinnedOnceWithValidProofs(observed, requests, receipts);

    // One more round of work finds nothing left to send.
    await restarted.tick();
    expect(await store.batches.countDocuments()).toBe(1);
    expect(await pendingTransactions()).toBe(0);
    expect(await store.pinQueue.countDocuments({ batch: { $ne: written!._id } })).toBe(0);
  });

  test('a transaction dropped from the mempool is sent again after resubmitAfterMs and mined once', async () => {
    const store = await openStore();
    const batcher = newBatcher(store, { batchSize: 3, batchWaitMs: 100, resubmitAfterMs: 1_000 });
    const start = await head();
    const requests = await queued(store, stepRequests(3));
    batcher.start();
    const receipts = await Promise.all(requests.map((r) => batcher.pin(r, PIN_TIMEOUT_MS)));
    const [sent] = await batchesWithStatus(store, ['sent'], 1);
    const first = sent!.txHashes[0]!;
    await eventually('the batch in the mempool', async () => ((await provider.getTransaction(first)) ? true : undefined));

    await provider.send('anvil_dropTransaction', [first]);
    expect(await provider.getTransaction(first)).toBeNull();
    expect(await pendingTransactions()).toBe(0);

    await eventually('the batch sent again', async () => ((await pendingTransactions()) >= 1 ? true : undefined));
    await mine();
    const [minedDoc] = await batchesWithStatus(store, ['mined'], 1);
    await batcher.stop();

    expect(minedDoc!._id).toBe(sent!._id);
    expect(minedDoc!.txHashes).toContain(minedDoc!.minedTx);
    const observed = await pinnedSince(start);
    expect(observed).toHaveLength(3);
    expect(new Set(observed.map((t) => t.transactionHash))).toEqual(new Set([minedDoc!.minedTx]));
    const tx = await provider.getTransaction(minedDoc!.minedTx!);
    expect(tx?.nonce).toBe(sent!.nonce);
    expectPinnedOnceWithValidProofs(observed, requests, receipts);
    expect(await pendingTransactions()).toBe(0);
  });

  test('a batch mined just before the stale-nonce check is not retired (and so not pinned twice)', async () => {
    // A provider that mines a block at the worst moment: after the batcher found no receipt for
    // its overdue batch, right before it asks whether the batch's nonce has been used.
    class MineBeforeNonceCheck extends ethers.JsonRpcProvider {
      armed = false;
      fired = false;
      override async getTransactionCount(address: ethers.AddressLike, blockTag?: ethers.BlockTag): Promise<number> {
        if (this.armed && blockTag === 'latest') {
          this.armed = false;
          await this.send('evm_mine', []);
          this.fired = true;
        }
        return super.getTransactionCount(address, blockTag);
      }
    }
    const { chain } = stack.network;
    const racing = new MineBeforeNonceCheck(chain.rpcUrl, chain.chainId, { staticNetwork: true, cacheTimeout: -1 });
    try {
      const store = await openStore();
      const batcher = newBatcher(store, { provider: racing, batchSize: 2, batchWaitMs: 100, resubmitAfterMs: 300 });
      const start = await head();
      const requests = await queued(store, stepRequests(2));
      batcher.start();
      const receipts = await Promise.all(requests.map((r) => batcher.pin(r, PIN_TIMEOUT_MS)));
      await eventually('the batch in the mempool', async () => ((await pendingTransactions()) >= 1 ? true : undefined));
      racing.armed = true;
      await eventually('the block mined during the nonce check', () => Promise.resolve(racing.fired ? true : undefined));
      await batcher.stop();
      // One more full round: a retired batch's steps would be cut into a new batch here.
      await batcher.tick();

      const docs = await store.batches.find().toArray();
      expect(docs.map((d) => d.status)).toEqual(['mined']);
      const observed = await pinnedSince(start);
      expect(observed).toHaveLength(2);
      expect(new Set(observed.map((t) => t.transactionHash))).toEqual(new Set([docs[0]!.minedTx]));
      expectPinnedOnceWithValidProofs(observed, requests, receipts);
      expect(await pendingTransactions()).toBe(0);
    } finally {
      racing.destroy();
    }
  });

  test('a batch reorganised out of the chain is sent again, same root, and mined again', async () => {
    const store = await openStore();
    const batcher = newBatcher(store, { batchSize: 2, batchWaitMs: 100, confirmations: 3 });
    const start = await head();
    const snapshot = (await provider.send('evm_snapshot', [])) as string;
    const requests = await queued(store, stepRequests(2));
    batcher.start();
    const receipts = await Promise.all(requests.map((r) => batcher.pin(r, PIN_TIMEOUT_MS)));
    await eventually('the batch in the mempool', async () => ((await pendingTransactions()) >= 1 ? true : undefined));
    await mine();
    const [minedDoc] = await batchesWithStatus(store, ['mined'], 1);
    const minedTx = minedDoc!.minedTx!;
    const before = await pinnedSince(start);
    expect(before.map((t) => [t.transactionHash, t.root])).toEqual([
      [minedTx, minedDoc!.root],
      [minedTx, minedDoc!.root],
    ]);

    // The block with the batch disappears.
    expect(await provider.send('evm_revert', [snapshot])).toBe(true);
    expect(await head()).toBe(start);
    expect(await provider.getTransactionReceipt(minedTx)).toBeNull();

    // The batcher notices and sends the same batch again.
    await batchesWithStatus(store, ['sent'], 1);
    await eventually('the batch in the mempool again', async () => ((await pendingTransactions()) >= 1 ? true : undefined));
    await mine();
    const [again] = await batchesWithStatus(store, ['mined'], 1);
    expect(again!._id).toBe(minedDoc!._id);
    expect(again!.root).toBe(minedDoc!.root);

    const after = await pinnedSince(start);
    expect(after).toHaveLength(2);
    expect(new Set(after.map((t) => t.root))).toEqual(new Set([minedDoc!.root]));
    expect(new Set(after.map((t) => t.transactionHash))).toEqual(new Set([again!.minedTx]));
    expectPinnedOnceWithValidProofs(after, requests, receipts);

    await mine(2);
    await batchesWithStatus(store, ['final'], 1);
    await batcher.stop();
    expect(await store.batches.countDocuments()).toBe(1);
    expect(await pendingTransactions()).toBe(0);
  });
});
