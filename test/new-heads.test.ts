/**
 * New-head notices against a real anvil (its WebSocket endpoint): every mined block is announced,
 * the subscription comes back after the chain node restarts, and a notice wakes the chain
 * listener long before its next poll.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ChainListener } from '../src/chain/listener';
import { NewHeads } from '../src/chain/new-heads';
import { SequencerClient } from '../src/chain/sequencer';
import type { Store } from '../src/store/store';
import { startAnvil, type RunningAnvil } from '../src/stack/dev-chain';
import { freePort } from '../src/stack/ports';
import { eventually } from './support/eventually';

const log = pino({ level: 'silent' });

describe('chain new-head notices', () => {
  let dir: string;
  let port: number;
  let anvil: RunningAnvil;
  const stops: (() => unknown)[] = [];

  async function startChain(): Promise<RunningAnvil> {
    return startAnvil({ logDir: dir, port, accounts: 2, mining: { mode: 'auto' } });
  }

  async function mine(blocks = 1): Promise<void> {
    for (let i = 0; i < blocks; i++) await anvil.provider.send('evm_mine', []);
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-new-heads-test-'));
    port = await freePort();
    anvil = await startChain();
  }, 60_000);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    anvil?.provider.destroy();
    await anvil?.process.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every mined block is announced, and again after the chain node restarts', async () => {
    let heard = 0;
    const heads = new NewHeads(anvil.wsUrl, () => heard++, log);
    stops.push(() => heads.stop());
    heads.start();
    // Subscribed once a mined block is heard (blocks mined before the subscription are not announced).
    await eventually('the first announced block', async () => {
      await mine();
      return heard > 0 ? true : undefined;
    });
    const before = heard;
    await mine(3);
    await eventually('three more announced blocks', () => Promise.resolve(heard >= before + 3 ? true : undefined));

    // The node goes away and comes back on the same port: the subscription is made again.
    anvil.provider.destroy();
    await anvil.process.stop();
    anvil = await startChain();
    const afterRestart = heard;
    await eventually(
      'a block announced after the restart',
      async () => {
        await mine();
        return heard > afterRestart ? true : undefined;
      },
      30_000,
      500,
    );
    heads.stop();
  }, 60_000);

  test('a notice wakes the chain listener long before its next poll', async () => {
    const sequencer = new SequencerClient({ rpcUrl: anvil.rpcUrl, address: '0x0000000000000000000000000000000000000001', pollingIntervalMs: 100 });
    stops.push(() => sequencer.destroy());
    // A follower's listener keeps the head, and reads the leader's checkpoint only to check it
    // against the chain (none here); it polls once a minute here.
    const listener = new ChainListener({
      sequencer,
      store: { checkpoint: () => Promise.resolve(null) } as unknown as Store,
      confirmations: 1,
      startBlock: 0,
      pollMs: 60_000,
      log,
      addressOf: () => undefined,
      onProgress: () => Promise.resolve(),
      onDeepReorg: () => undefined,
    });
    stops.push(() => listener.stop());
    void listener.follow();
    const start = await anvil.provider.getBlockNumber();
    await eventually('the listener at the current head', () => Promise.resolve(listener.head === start ? true : undefined));

    // Without notices the next poll is a minute away: the head stays where it was.
    await mine();
    await new Promise((r) => setTimeout(r, 500));
    expect(listener.head).toBe(start);

    const heads = new NewHeads(anvil.wsUrl, () => listener.wake(), log);
    stops.push(() => heads.stop());
    heads.start();
    await eventually('the listener woken by a new block', async () => {
      await mine();
      const top = await anvil.provider.getBlockNumber();
      return listener.head === top && top > start + 1 ? true : undefined;
    });
    heads.stop();
    await listener.stop();
  });

  test('a URL that is not ws:// or wss:// is refused, naming it', () => {
    expect(() => new NewHeads('http://127.0.0.1:8545', () => undefined, log)).toThrow('chain WebSocket URL must start with ws:// or wss://, got http://127.0.0.1:8545');
  });
});
