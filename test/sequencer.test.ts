import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ethers } from 'ethers';
import { loadSequencerArtifact } from '../src/chain/artifact';
import { repoRoot } from '../src/paths';
import { deploySequencer } from '../src/chain/deploy';
import { decodeSequencerRevert, SequencerClient } from '../src/chain/sequencer';
import type { ObservedPin } from '../src/model/pin';

// ---------------------------------------------------------------------------------------
// A private anvil for this file. Kept local on purpose: the shared stack module is written
// separately, and this test must only depend on the chain code it exercises.
// ---------------------------------------------------------------------------------------

const MNEMONIC = 'test test test test test test test test test test test junk';
const CHAIN_ID = 31337;

interface Anvil {
  rpcUrl: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function rpc(rpcUrl: string, method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: unknown; error?: unknown };
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

async function startAnvil(): Promise<Anvil> {
  const pkg = require.resolve('@foundry-rs/anvil-linux-amd64/package.json');
  const bin = path.join(path.dirname(pkg), 'bin', 'anvil');
  const port = await freePort();
  const rpcUrl = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    bin,
    ['--host', '127.0.0.1', '--port', String(port), '--silent', '--chain-id', String(CHAIN_ID), '--mnemonic', MNEMONIC],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`anvil exited with ${child.exitCode}: ${stderr}`);
    try {
      await rpc(rpcUrl, 'eth_chainId');
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`anvil did not answer on ${rpcUrl} within 30 s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    rpcUrl,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

function account(index: number): ethers.HDNodeWallet {
  return ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
}

/** Runtime code as compiled; the contract has no immutables, so it equals the code on chain. */
function loadDeployedBytecode(): string {
  const file = path.join(repoRoot(), 'contracts', 'build', 'Sequencer.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { deployedBytecode: string }).deployedBytecode;
}

function randomPins(n: number): string[] {
  return Array.from({ length: n }, () => ethers.hexlify(ethers.randomBytes(32)));
}

// ---------------------------------------------------------------------------------------

describe('Sequencer contract and client', () => {
  let anvil: Anvil;
  let provider: ethers.JsonRpcProvider;
  let deployer: ethers.HDNodeWallet;
  const author = account(0);
  let address: string;
  let deployBlock: number;
  let client: SequencerClient;

  beforeAll(async () => {
    anvil = await startAnvil();
    provider = new ethers.JsonRpcProvider(anvil.rpcUrl, CHAIN_ID, {
      staticNetwork: true,
      pollingInterval: 100,
      cacheTimeout: -1,
    });
    // Deploy from a different account than the author, so `author` is really msg.sender.
    deployer = account(1).connect(provider);
    // Deployed here rather than in a test so that every test can also run alone (-t).
    const deployed = await deploySequencer(deployer);
    address = deployed.address;
    deployBlock = deployed.blockNumber;
    client = new SequencerClient({ rpcUrl: anvil.rpcUrl, address, privateKey: author.privateKey, pollingIntervalMs: 100 });
  });

  afterAll(async () => {
    client?.destroy();
    provider?.destroy();
    await anvil?.stop();
  });

  async function mined(hash: string): Promise<ethers.TransactionReceipt> {
    const receipt = await provider.waitForTransaction(hash, 1, 30_000);
    if (!receipt) throw new Error(`no receipt for ${hash}`);
    expect(receipt.status).toBe(1);
    return receipt;
  }

  test('deploys the Sequencer', async () => {
    expect(ethers.isAddress(address)).toBe(true);
    expect(deployBlock).toBeGreaterThan(0);
    const code = await provider.getCode(address);
    expect(code).toBe(loadDeployedBytecode());
    const receiptBlock = await provider.getBlock(deployBlock);
    expect(receiptBlock?.transactions.length).toBe(1);
  });

  test('submits a batch and reads it back in order', async () => {
    const pins = randomPins(3);
    const nonceBefore = await provider.getTransactionCount(author.address, 'pending');
    const sent = await client.submitPins(pins);
    expect(sent.transactionHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(sent.nonce).toBe(nonceBefore);
    const receipt = await mined(sent.transactionHash);

    const head = await client.head();
    expect(head).toBeGreaterThanOrEqual(receipt.blockNumber);
    const observed = await client.pinsBetween(deployBlock, head);
    const block = (await provider.getBlock(receipt.blockNumber))!;
    expect(observed).toEqual<ObservedPin[]>(
      pins.map((pin, index) => ({
        pin,
        author: author.address,
        batchHash: ethers.keccak256(ethers.concat(pins)),
        blockNumber: receipt.blockNumber,
        blockHash: receipt.blockHash,
        timestamp: block.timestamp,
        transactionHash: sent.transactionHash,
        logIndex: 0,
        index,
      })),
    );
    // EIP-55 checksum, not lower case.
    expect(observed[0]!.author).toBe(ethers.getAddress(author.address.toLowerCase()));
    expect(await client.blockHash(receipt.blockNumber)).toBe(receipt.blockHash);
    expect(await client.blockHash(head + 1000)).toBeNull();
    expect(await client.pinsBetween(head + 1, head)).toEqual([]);
  });

  test('orders two batches mined in one block by log index', async () => {
    await provider.send('evm_setAutomine', [false]);
    let a: { transactionHash: string; nonce: number };
    let b: { transactionHash: string; nonce: number };
    const pinsA = randomPins(3);
    const pinsB = randomPins(2);
    try {
      // Concurrent submissions: the NonceManager must give them distinct nonces.
      [a, b] = await Promise.all([client.submitPins(pinsA), client.submitPins(pinsB)]);
      expect(b.nonce).toBe(a.nonce + 1);
      await provider.send('evm_mine', []);
    } finally {
      await provider.send('evm_setAutomine', [true]);
    }
    const [ra, rb] = await Promise.all([mined(a.transactionHash), mined(b.transactionHash)]);
    expect(ra.blockNumber).toBe(rb.blockNumber);

    const observed = await client.pinsBetween(ra.blockNumber, ra.blockNumber);
    expect(observed.map((p) => p.pin)).toEqual([...pinsA, ...pinsB]);
    expect(observed.map((p) => [p.transactionHash, p.logIndex, p.index])).toEqual([
      [a.transactionHash, 0, 0],
      [a.transactionHash, 0, 1],
      [a.transactionHash, 0, 2],
      [b.transactionHash, 1, 0],
      [b.transactionHash, 1, 1],
    ]);
    expect(new Set(observed.map((p) => p.blockHash)).size).toBe(1);
  });

  test('the contract rejects an empty or oversized batch with custom errors', async () => {
    // Another account, so this test leaves the client's nonce sequence alone.
    const raw = new ethers.Contract(address, loadSequencerArtifact().abi, account(2).connect(provider));

    // estimateGas (what a plain send does first): ethers leaves the custom error undecoded.
    const empty = await raw.getFunction('pinBatch').estimateGas([]).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(ethers.isError(empty, 'CALL_EXCEPTION')).toBe(true);
    expect(decodeSequencerRevert(empty)).toEqual({ name: 'EmptyBatch', args: [] });
    await expect(raw.getFunction('pinBatch')([])).rejects.toMatchObject({ code: 'CALL_EXCEPTION', data: raw.interface.getError('EmptyBatch')?.selector });

    // staticCall: ethers decodes it itself.
    const big = await raw.getFunction('pinBatch').staticCall(randomPins(1001)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((big as ethers.CallExceptionError).revert?.name).toBe('BatchTooLarge');
    expect(decodeSequencerRevert(big)).toEqual({ name: 'BatchTooLarge', args: [1001n, 1000n] });

    // Forced on chain past estimation, the transaction is mined and reverts.
    const forced = await raw.getFunction('pinBatch')([], { gasLimit: 100_000 });
    await expect(forced.wait()).rejects.toMatchObject({ code: 'CALL_EXCEPTION', receipt: { status: 0 } });

    // The client refuses both before spending anything.
    await expect(client.submitPins([])).rejects.toThrow(/must not be empty/);
    await expect(client.submitPins(randomPins(1001))).rejects.toThrow(/at most 1000/);
  });

  test('refuses malformed pins client-side, naming the value and its index', async () => {
    const good = randomPins(1)[0]!;
    await expect(client.submitPins([good, '0x1234', good])).rejects.toThrow(/index 1 .*"0x1234"/);
    const noPrefix = 'ab'.repeat(32);
    await expect(client.submitPins([noPrefix])).rejects.toThrow(new RegExp(`index 0 .*"${noPrefix}"`));
    const notHex = `0x${'zz'.repeat(32)}`;
    await expect(client.submitPins([good, good, notHex])).rejects.toThrow(/index 2/);
    await expect(client.submitPins([good, 42 as unknown as string])).rejects.toThrow(/index 1 .*42/);
    // A refused batch must not burn a nonce: the next real one still goes through.
    const sent = await client.submitPins([good]);
    await mined(sent.transactionHash);
  });

  test('splits long ranges into chunks without changing the result', async () => {
    for (let i = 0; i < 3; i++) await mined((await client.submitPins(randomPins(2))).transactionHash);
    const head = await client.head();
    const whole = await client.pinsBetween(0, head);
    expect(whole.length).toBeGreaterThanOrEqual(6);
    expect(new Set(whole.map((p) => p.blockNumber)).size).toBeGreaterThanOrEqual(3);
    for (const maxBlockRange of [1, 2, 3]) {
      const chunked = new SequencerClient({ rpcUrl: anvil.rpcUrl, address, maxBlockRange, chainId: CHAIN_ID });
      try {
        expect(await chunked.pinsBetween(0, head)).toEqual(whole);
      } finally {
        chunked.destroy();
      }
    }
  });

  test('recovers when the key was also used outside the client', async () => {
    await mined((await client.submitPins(randomPins(1))).transactionHash); // nonce cache primed
    const elsewhere = author.connect(provider);
    await mined((await elsewhere.sendTransaction({ to: account(3).address, value: 1n })).hash);
    const next = await provider.getTransactionCount(author.address, 'latest');
    const sent = await client.submitPins(randomPins(1)); // first attempt: "nonce too low"
    expect(sent.nonce).toBe(next);
    await mined(sent.transactionHash);
  });

  test('a reader without a key can read but not submit', async () => {
    const reader = new SequencerClient({ rpcUrl: anvil.rpcUrl, address });
    try {
      expect((await reader.pinsBetween(0, await reader.head())).length).toBeGreaterThan(0);
      await expect(reader.submitPins(randomPins(1))).rejects.toThrow(/privateKey/);
    } finally {
      reader.destroy();
    }
  });

  test('refuses an address without a contract', async () => {
    const wrong = new SequencerClient({ rpcUrl: anvil.rpcUrl, address: account(7).address, privateKey: author.privateKey });
    try {
      await expect(wrong.pinsBetween(0, 1)).rejects.toThrow(/no contract at/);
      await expect(wrong.submitPins(randomPins(1))).rejects.toThrow(/no contract at/);
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
      await expect(down.pinsBetween(0, 10)).rejects.toThrow(/unreachable/);
    } finally {
      down.destroy();
    }
  });

  test('measures gas per pin', async () => {
    const lines: string[] = [];
    for (const n of [1, 10, 100]) {
      const sent = await client.submitPins(randomPins(n));
      const receipt = await mined(sent.transactionHash);
      expect(receipt.gasUsed).toBeGreaterThan(0n);
      const perPin = Number(receipt.gasUsed) / n;
      lines.push(`  ${String(n).padStart(3)} pins: ${receipt.gasUsed} gas, ${perPin.toFixed(0)} gas/pin`);
    }
    console.log(`Sequencer.pinBatch gas:\n${lines.join('\n')}`);
  });
});
