/**
 * The Sequencer contract and its client against a real anvil: batches of packed 8-byte tags
 * under a Merkle root, read back in chain order; the contract's and the client's refusals; and
 * what a batch costs per step.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ethers } from 'ethers';
import { loadSequencerArtifact } from '../src/chain/artifact';
import { deploySequencer } from '../src/chain/deploy';
import { merkleRoot } from '../src/chain/merkle';
import { decodeSequencerRevert, MAX_TAGS_PER_BATCH, SequencerClient, validateBatch } from '../src/chain/sequencer';
import { LockstepError } from '../src/model/errors';
import type { ObservedTag } from '../src/model/pin';
import { ANVIL_CHAIN_ID, devWallet, startAnvil, type RunningAnvil } from '../src/stack/dev-chain';
import { freePort } from '../src/stack/ports';

/** The target: at 100 steps a batch must cost less than this much gas per step. */
const GAS_PER_STEP_TARGET = 600;

function randomTags(n: number): string[] {
  return Array.from({ length: n }, () => ethers.hexlify(ethers.randomBytes(8)));
}

/** A realistic root: the Merkle root over one random leaf per tag. */
function rootFor(n: number): string {
  return merkleRoot(Array.from({ length: n }, () => ethers.hexlify(ethers.randomBytes(32))));
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

/** The error a synchronous call throws (fails the test if it returns). */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('Sequencer contract and client', () => {
  let dir: string;
  let anvil: RunningAnvil;
  let provider: ethers.JsonRpcProvider;
  let address: string;
  let deployBlock: number;
  let client: SequencerClient;
  let iface: ethers.Interface;
  // The author is not the deployer, so `author` in the event is really msg.sender.
  let author: ethers.HDNodeWallet;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-sequencer-test-'));
    anvil = await startAnvil({ logDir: dir, port: await freePort(), accounts: 4, mining: { mode: 'auto' } });
    provider = new ethers.JsonRpcProvider(anvil.rpcUrl, ANVIL_CHAIN_ID, { staticNetwork: true, pollingInterval: 100, cacheTimeout: -1 });
    const deployed = await deploySequencer(devWallet(0).connect(provider));
    address = deployed.address;
    deployBlock = deployed.blockNumber;
    author = devWallet(1).connect(provider);
    client = new SequencerClient({ rpcUrl: anvil.rpcUrl, address, pollingIntervalMs: 100 });
    iface = new ethers.Interface(loadSequencerArtifact().abi);
  }, 60_000);

  afterAll(async () => {
    client?.destroy();
    provider?.destroy();
    anvil?.provider.destroy();
    await anvil?.process.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function mined(hash: string): Promise<ethers.TransactionReceipt> {
    const receipt = await provider.waitForTransaction(hash, 1, 30_000);
    if (!receipt) throw new Error(`no receipt for ${hash}`);
    expect(receipt.status).toBe(1);
    return receipt;
  }

  /** Signs and sends a batch the way the batcher does: calldata from the client, gas from its estimate. */
  async function sendBatch(root: string, tags: string[], overrides: { nonce?: number } = {}): Promise<ethers.TransactionResponse> {
    const data = client.encodeBatch(root, tags);
    const gasLimit = await client.estimateBatchGas(author.address, data);
    return author.sendTransaction({ to: client.contractAddress, data, gasLimit, ...overrides });
  }

  test('deploys the Sequencer', async () => {
    expect(client.contractAddress).toBe(ethers.getAddress(address));
    expect(deployBlock).toBeGreaterThan(0);
    const artifact = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'contracts', 'build', 'Sequencer.json'), 'utf8')) as { deployedBytecode: string };
    expect(await provider.getCode(address)).toBe(artifact.deployedBytecode);
    const contract = new ethers.Contract(address, iface, provider);
    expect(await contract.getFunction('MAX_BATCH')()).toBe(BigInt(MAX_TAGS_PER_BATCH));
  });

  test('a batch sent with a wallet is read back with its tags, root, author and position', async () => {
    const tags = randomTags(3);
    const root = rootFor(3);
    // Calldata is pinBatch(root, tags packed back to back).
    const data = client.encodeBatch(root, tags);
    expect(iface.decodeFunctionData('pinBatch', data).toArray()).toEqual([root, ethers.concat(tags)]);

    const sent = await sendBatch(root, tags);
    const receipt = await mined(sent.hash);
    const head = await client.head();
    expect(head).toBeGreaterThanOrEqual(receipt.blockNumber);
    const block = (await provider.getBlock(receipt.blockNumber))!;

    const observed = await client.tagsBetween(deployBlock, head);
    expect(observed).toEqual<ObservedTag[]>(
      tags.map((tag, index) => ({
        tag,
        author: author.address,
        root,
        count: 3,
        blockNumber: receipt.blockNumber,
        blockHash: receipt.blockHash,
        timestamp: block.timestamp,
        transactionHash: sent.hash,
        logIndex: 0,
        index,
      })),
    );
    // EIP-55 checksum, not lower case (the event's indexed topic is lower-case hex).
    expect(observed[0]!.author).toBe(ethers.getAddress(author.address.toLowerCase()));
    expect(observed[0]!.author).not.toBe(author.address.toLowerCase());
    expect(await client.blockHash(receipt.blockNumber)).toBe(receipt.blockHash);
    expect(await client.blockHash(head + 1000)).toBeNull();
    expect(await client.tagsBetween(head + 1, head)).toEqual([]);
  });

  test('orders two batches mined in one block by log index', async () => {
    const tagsA = randomTags(3);
    const tagsB = randomTags(2);
    const [rootA, rootB] = [rootFor(3), rootFor(2)];
    let a: ethers.TransactionResponse;
    let b: ethers.TransactionResponse;
    await provider.send('evm_setAutomine', [false]);
    try {
      const nonce = await provider.getTransactionCount(author.address, 'pending');
      a = await sendBatch(rootA, tagsA, { nonce });
      b = await sendBatch(rootB, tagsB, { nonce: nonce + 1 });
      await provider.send('evm_mine', []);
    } finally {
      await provider.send('evm_setAutomine', [true]);
    }
    const [ra, rb] = await Promise.all([mined(a.hash), mined(b.hash)]);
    expect(rb.blockNumber).toBe(ra.blockNumber);

    const observed = await client.tagsBetween(ra.blockNumber, ra.blockNumber);
    expect(observed.map((t) => t.tag)).toEqual([...tagsA, ...tagsB]);
    expect(observed.map((t) => [t.transactionHash, t.logIndex, t.index, t.root, t.count])).toEqual([
      [a.hash, 0, 0, rootA, 3],
      [a.hash, 0, 1, rootA, 3],
      [a.hash, 0, 2, rootA, 3],
      [b.hash, 1, 0, rootB, 2],
      [b.hash, 1, 1, rootB, 2],
    ]);
    expect(new Set(observed.map((t) => t.blockHash))).toEqual(new Set([ra.blockHash]));
  });

  test('the contract refuses empty, ragged and oversized tag lists with custom errors', async () => {
    // A raw contract, bypassing the client's own checks; another account, so the author's nonces stay untouched.
    const raw = new ethers.Contract(address, iface, devWallet(2).connect(provider));
    const pinBatch = raw.getFunction('pinBatch');
    const root = rootFor(1);

    // estimateGas (what a plain send does first): ethers leaves the custom error undecoded.
    const empty = await rejectionOf(pinBatch.estimateGas(root, '0x'));
    expect(ethers.isError(empty, 'CALL_EXCEPTION')).toBe(true);
    expect(decodeSequencerRevert(empty)).toEqual({ name: 'MalformedTags', args: [0n] });

    // staticCall: ethers decodes it itself; decodeSequencerRevert reads either form.
    const ragged = await rejectionOf(pinBatch.staticCall(root, ethers.randomBytes(12)));
    expect((ragged as ethers.CallExceptionError).revert?.name).toBe('MalformedTags');
    expect(decodeSequencerRevert(ragged)).toEqual({ name: 'MalformedTags', args: [12n] });
    const short = await rejectionOf(pinBatch.estimateGas(root, ethers.randomBytes(7)));
    expect(decodeSequencerRevert(short)).toEqual({ name: 'MalformedTags', args: [7n] });

    const tooMany = ethers.concat(randomTags(MAX_TAGS_PER_BATCH + 1));
    const big = await rejectionOf(pinBatch.staticCall(root, tooMany));
    expect(decodeSequencerRevert(big)).toEqual({ name: 'BatchTooLarge', args: [1001n, 1000n] });
    expect(decodeSequencerRevert(await rejectionOf(pinBatch.estimateGas(root, tooMany)))).toEqual({ name: 'BatchTooLarge', args: [1001n, 1000n] });
    // The bound itself is allowed.
    expect(await pinBatch.estimateGas(root, ethers.concat(randomTags(MAX_TAGS_PER_BATCH)))).toBeGreaterThan(0n);

    // Not a Sequencer error at all: nothing to decode.
    expect(decodeSequencerRevert(new Error('socket hang up'))).toBeNull();

    // Forced on chain past estimation, the transaction is mined and reverts.
    const forced = await pinBatch(root, '0x', { gasLimit: 100_000 });
    await expect(forced.wait()).rejects.toMatchObject({ code: 'CALL_EXCEPTION', receipt: { status: 0 } });

    // The client's estimate names the contract's refusal (calldata built past encodeBatch's checks).
    const badData = iface.encodeFunctionData('pinBatch', [root, ethers.randomBytes(12)]);
    const estimate = await rejectionOf(client.estimateBatchGas(author.address, badData));
    expect(estimate).toBeInstanceOf(LockstepError);
    expect(estimate).toMatchObject({ code: 'precondition_failed', message: expect.stringMatching(/MalformedTags\(12\)/) });
    const bigData = iface.encodeFunctionData('pinBatch', [root, tooMany]);
    await expect(client.estimateBatchGas(author.address, bigData)).rejects.toThrow(/BatchTooLarge\(1001, 1000\)/);
  });

  test('validateBatch refuses malformed tags and roots client-side, naming the value and its index', () => {
    const root = rootFor(2);
    const [good] = randomTags(1) as [string];
    expect(() => validateBatch(root, [good, good.toUpperCase().replace('0X', '0x')])).not.toThrow();

    const bad = thrownBy(() => validateBatch(root, [good, '0x1234', good]));
    expect(bad).toBeInstanceOf(LockstepError);
    expect(bad).toMatchObject({ code: 'validation_failed', message: expect.stringMatching(/index 1 .*"0x1234"/), details: [{ field: '/tags/1' }] });

    const noPrefix = 'ab'.repeat(8);
    expect(() => validateBatch(root, [noPrefix])).toThrow(new RegExp(`index 0 .*"${noPrefix}"`));
    const nineBytes = `0x${'ab'.repeat(9)}`;
    expect(() => validateBatch(root, [good, good, nineBytes])).toThrow(new RegExp(`index 2 .*"${nineBytes}"`));
    // An old-style 32-byte pin is not a tag.
    const wholeHash = ethers.hexlify(ethers.randomBytes(32));
    expect(() => validateBatch(root, [wholeHash])).toThrow(new RegExp(`index 0 .*"${wholeHash}"`));
    expect(() => validateBatch(root, [good, `0x${'zz'.repeat(8)}`])).toThrow(/index 1 .*"0xzz/);
    expect(() => validateBatch(root, [good, 42])).toThrow(/index 1 .*42/);
    expect(() => validateBatch(root, [good, good, good, null])).toThrow(/index 3 .*null/);

    expect(() => validateBatch(root, [])).toThrow(/at least one tag/);
    expect(() => validateBatch(root, randomTags(MAX_TAGS_PER_BATCH + 1))).toThrow(/at most 1000 tags, got 1001/);
    expect(() => validateBatch(root, randomTags(MAX_TAGS_PER_BATCH))).not.toThrow();

    const shortRoot = '0x1234';
    expect(thrownBy(() => validateBatch(shortRoot, [good]))).toMatchObject({
      code: 'validation_failed',
      message: expect.stringContaining(shortRoot),
      details: [{ field: '/root' }],
    });
    const unprefixedRoot = root.slice(2);
    expect(() => validateBatch(unprefixedRoot, [good])).toThrow(unprefixedRoot);
    expect(() => validateBatch(undefined, [good])).toThrow(/root .*undefined/);

    // encodeBatch runs the same checks, so nothing malformed reaches the chain.
    expect(() => client.encodeBatch(root, [good, '0x1234'])).toThrow(/index 1 .*"0x1234"/);
    expect(() => client.encodeBatch(shortRoot, [good])).toThrow(shortRoot);
  });

  test('splits long ranges into chunks without changing the result', async () => {
    for (let i = 0; i < 3; i++) await mined((await sendBatch(rootFor(2), randomTags(2))).hash);
    const head = await client.head();
    const whole = await client.tagsBetween(0, head);
    expect(whole.length).toBeGreaterThanOrEqual(6);
    expect(new Set(whole.map((t) => t.blockNumber)).size).toBeGreaterThanOrEqual(3);
    for (const maxBlockRange of [1, 2, 3]) {
      const chunked = new SequencerClient({ rpcUrl: anvil.rpcUrl, address, maxBlockRange, chainId: ANVIL_CHAIN_ID });
      try {
        expect(await chunked.tagsBetween(0, head)).toEqual(whole);
      } finally {
        chunked.destroy();
      }
    }
  });

  test('refuses an address without a contract', async () => {
    const wrong = new SequencerClient({ rpcUrl: anvil.rpcUrl, address: devWallet(3).address });
    try {
      await expect(wrong.tagsBetween(0, 1)).rejects.toThrow(/no contract at/);
      await expect(wrong.estimateBatchGas(author.address, client.encodeBatch(rootFor(1), randomTags(1)))).rejects.toThrow(/no contract at/);
      expect(await wrong.head()).toBeGreaterThan(0); // plain chain queries still work
    } finally {
      wrong.destroy();
    }
  });

  test('an unreachable node fails promptly instead of retrying forever', async () => {
    const port = await freePort(); // nothing listens there
    const down = new SequencerClient({ rpcUrl: `http://127.0.0.1:${port}`, address });
    try {
      await expect(down.head()).rejects.toThrow(/unreachable/);
      await expect(down.tagsBetween(0, 10)).rejects.toThrow(/unreachable/);
    } finally {
      down.destroy();
    }
  });

  test(`gas per step: printed for 1, 10 and 100 steps; under ${GAS_PER_STEP_TARGET} at 100`, async () => {
    const hardfork = await provider.send('anvil_nodeInfo', []).then(
      (info: { hardFork?: string }) => info.hardFork ?? 'unknown',
      () => 'unknown',
    );
    const lines: string[] = [];
    const perStep = new Map<number, number>();
    for (const n of [1, 10, 100]) {
      const tags = randomTags(n);
      const sent = await sendBatch(rootFor(n), tags);
      const receipt = await mined(sent.hash);
      expect(receipt.gasUsed).toBeGreaterThan(0n);
      // The batch is really there, whole.
      const observed = await client.tagsBetween(receipt.blockNumber, receipt.blockNumber);
      expect(observed.map((t) => t.tag)).toEqual(tags);
      const gas = Number(receipt.gasUsed) / n;
      perStep.set(n, gas);
      lines.push(`  ${String(n).padStart(3)} steps: ${receipt.gasUsed} gas, ${gas.toFixed(0)} gas/step (calldata ${ethers.dataLength(sent.data)} bytes)`);
    }
    console.log(`Sequencer.pinBatch gas (anvil hardfork: ${hardfork}):\n${lines.join('\n')}`);
    expect(perStep.get(100)).toBeLessThan(GAS_PER_STEP_TARGET);
  });
});
