import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { JsonRpcProvider, Network, Wallet } from 'ethers';
import { MongoClient } from 'mongodb';
import type { NetworkFile } from '../src/model/network';
import { startStack, type Stack } from '../src/stack/local-stack';
import { pidFilePath, type PidFile } from '../src/stack/pid-file';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../src/stack/search-attributes';

const [ACME, GLOBEX] = ['acme', 'globex'] as const;
const PARTIES = [ACME, GLOBEX];

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('local stack', () => {
  let dir: string;
  let stack: Stack;
  let provider: JsonRpcProvider;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-stack-test-'));
    // External servers from the environment would make this test check them instead of the stack's own.
    for (const name of ['TEMPORAL_ADDRESS', 'MONGODB_URI', 'ETH_RPC_URL']) delete process.env[name];
    stack = await startStack({
      dir,
      parties: PARTIES,
      ports: 'free',
      mining: { mode: 'manual' },
      confirmations: 1,
      searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
    });
    provider = new JsonRpcProvider(stack.network.chain.rpcUrl, Network.from(stack.network.chain.chainId), {
      staticNetwork: true,
      // ethers caches getBlockNumber for 250 ms; the mining test must see every block at once.
      cacheTimeout: -1,
    });
  }, 180_000);

  afterAll(async () => {
    provider?.destroy();
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('writes network.json with the parties and a deployed Sequencer', async () => {
    const written = JSON.parse(fs.readFileSync(stack.networkPath, 'utf8')) as NetworkFile;
    expect(stack.networkPath).toBe(path.join(dir, 'network.json'));
    expect(written).toEqual(stack.network);
    expect(Object.keys(written.parties).sort()).toEqual([...PARTIES].sort());
    for (const party of PARTIES) {
      const endpoint = written.parties[party]!;
      expect(endpoint.namespace).toBe(party);
      expect(endpoint.database).toBe(`lockstep_${party}`);
      expect(endpoint.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(new Wallet(written.devKeys![party]!).address).toBe(endpoint.address);
    }
    expect(written.chain.chainId).toBe(31337);
    expect(written.chain.confirmations).toBe(1);
    expect(await provider.getCode(written.chain.sequencer)).not.toBe('0x');
  });

  test('has a Temporal namespace with the search attributes for every party', async () => {
    const connection = await Connection.connect({ address: stack.network.temporal.address });
    try {
      for (const namespace of PARTIES) {
        const described = await connection.workflowService.describeNamespace({ namespace });
        expect(described.namespaceInfo?.name).toBe(namespace);
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
        expect(Object.keys(customAttributes)).toEqual(expect.arrayContaining(Object.keys(LOCKSTEP_SEARCH_ATTRIBUTES)));
      }
    } finally {
      await connection.close();
    }
  });

  test('answers MongoDB pings', async () => {
    const client = new MongoClient(stack.network.mongodb.uri, { serverSelectionTimeoutMS: 10_000 });
    try {
      await client.connect();
      expect((await client.db('admin').command({ ping: 1 })).ok).toBe(1);
    } finally {
      await client.close();
    }
  });

  test('mines only on evm_mine', async () => {
    const sender = new Wallet(stack.network.devKeys![ACME]!, provider);
    const before = await provider.getBlockNumber();
    const tx = await sender.sendTransaction({ to: stack.network.parties[GLOBEX]!.address, value: 1n });
    expect(await provider.getTransactionReceipt(tx.hash)).toBeNull();
    expect(await provider.getBlockNumber()).toBe(before);

    await provider.send('evm_mine', []);
    expect(await provider.getBlockNumber()).toBe(before + 1);
    expect((await provider.getTransactionReceipt(tx.hash))?.blockNumber).toBe(before + 1);
  });

  test('stop ends every process it started', async () => {
    const pidFile = JSON.parse(fs.readFileSync(pidFilePath(dir), 'utf8')) as PidFile;
    const names = pidFile.processes.map((p) => p.name);
    expect(names).toHaveLength(3);
    expect(names).toEqual(expect.arrayContaining(['temporal', 'anvil']));
    expect(names.some((name) => name === 'mongod' || name === 'ferretdb')).toBe(true);
    for (const { pid } of pidFile.processes) expect(isAlive(pid)).toBe(true);

    await stack.stop();

    for (const { pid } of pidFile.processes) {
      expect(() => process.kill(pid, 0)).toThrow();
      // Negative pid: the whole process group, i.e. the watchdog shell and the server under it.
      expect(() => process.kill(-pid, 0)).toThrow();
    }
    expect(fs.existsSync(pidFilePath(dir))).toBe(false);
    await stack.stop(); // idempotent
  });
});
