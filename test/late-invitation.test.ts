/**
 * A participant that stores an instance's invitation after some of its steps were pinned (it was
 * unreachable, or failed before answering, while the others went on) must still find those
 * pins: its listener read their blocks before it could recognise the tags. The listener looks
 * back for that instance's tags from the invitation's `sinceBlock`. Real anvil, real document
 * store, the real Sequencer contract.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ethers } from 'ethers';
import { ChainListener } from '../src/chain/listener';
import { SequencerClient } from '../src/chain/sequencer';
import { deploySequencer } from '../src/chain/deploy';
import { contextOf, tagOf } from '../src/chain/pins';
import { startAnvil, devWallet, type RunningAnvil } from '../src/stack/dev-chain';
import { startMongo, type RunningMongo } from '../src/stack/mongo-server';
import { freePort } from '../src/stack/ports';
import { slotId, Store } from '../src/store/store';
import type { Invitation } from '../src/model/instance';

const log = pino({ level: 'silent' });
const CONFIRMATIONS = 2;

describe('an invitation stored after the instance’s first pins', () => {
  let dir: string;
  let anvil: RunningAnvil;
  let mongo: RunningMongo;
  let store: Store;
  let sequencer: SequencerClient;
  let listener: ChainListener;
  let startBlock: number;
  const beta = devWallet(1);
  let signalled = 0;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-late-invitation-test-'));
    anvil = await startAnvil({ logDir: dir, port: await freePort(), accounts: 2, mining: { mode: 'auto' } });
    mongo = await startMongo({ dir, logDir: dir, port: await freePort() });
    const deployed = await deploySequencer(devWallet(0).connect(anvil.provider));
    startBlock = deployed.blockNumber;
    sequencer = new SequencerClient({ rpcUrl: anvil.rpcUrl, address: deployed.address, pollingIntervalMs: 100 });
    store = await Store.connect(mongo.uri, 'late_invitation');
    listener = new ChainListener({
      sequencer,
      store,
      confirmations: CONFIRMATIONS,
      startBlock,
      pollMs: 60_000, // passes are run by the test
      log,
      addressOf: (party) => (party === 'beta' ? beta.address : devWallet(0).address),
      onProgress: () => Promise.resolve(void signalled++),
      onDeepReorg: () => undefined,
    });
  }, 120_000);

  afterAll(async () => {
    sequencer?.destroy();
    await store?.close();
    anvil?.provider.destroy();
    await anvil?.process.stop();
    await mongo?.process.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function mine(blocks: number): Promise<void> {
    for (let i = 0; i < blocks; i++) await anvil.provider.send('evm_mine', []);
  }

  test('its listener finds them by looking back from sinceBlock, including steps past the first window of expected tags', async () => {
    const secret = `0x${'5a'.repeat(32)}`;
    const invitation: Invitation = {
      header: { id: 'late-1', definitionId: 'd', definitionHash: `0x${'22'.repeat(32)}`, roles: { a: 'alpha', b: 'beta' }, createdBy: 'alpha', createdAt: '2026-11-21T00:00:00Z' },
      secret,
      signature: '0xsig',
      sinceBlock: await sequencer.head(),
    };
    // beta pins 18 steps (more than the 16 a node recognises ahead) while this node does not know the instance yet.
    const tags = Array.from({ length: 18 }, (_, i) => tagOf(contextOf(secret, 'beta', i + 1)));
    const contract = new ethers.Contract(sequencer.contractAddress, ['function pinBatch(bytes32 root, bytes tags)'], beta.connect(anvil.provider));
    await (await contract.getFunction('pinBatch')(`0x${'ab'.repeat(32)}`, ethers.concat(tags))).wait();
    await mine(CONFIRMATIONS);
    await listener.tick();
    expect((await store.checkpoint())?.scannedBlock).toBe(await sequencer.head());

    // The invitation comes at last: its tags are expected from now on, but their block is behind the listener.
    const instance = await store.saveInstance(invitation);
    await listener.tick();
    expect(await store.slots.findOne({ _id: slotId('late-1', 'beta', 1) })).toBeNull();

    const before = signalled;
    expect(await listener.lookBack(instance, invitation.sinceBlock!)).toBe(18);
    const slots = await Promise.all(tags.map((_, i) => store.slots.findOne({ _id: slotId('late-1', 'beta', i + 1) })));
    expect(slots.map((s) => s?.position?.index)).toEqual(tags.map((_, i) => i));
    // Deep enough already: final at once, and the signaller asked for a pass.
    expect((await store.slotsToSignal()).map((s) => s._id)).toEqual(tags.map((_, i) => slotId('late-1', 'beta', i + 1)));
    expect(signalled).toBeGreaterThan(before);
    // Looking again finds nothing new and changes nothing.
    expect(await listener.lookBack(instance, invitation.sinceBlock!)).toBe(0);
  }, 120_000);

  test('a look back from after the pins finds nothing', async () => {
    const secret = `0x${'6b'.repeat(32)}`;
    const tag = tagOf(contextOf(secret, 'beta', 1));
    const contract = new ethers.Contract(sequencer.contractAddress, ['function pinBatch(bytes32 root, bytes tags)'], beta.connect(anvil.provider));
    const pinned = await (await contract.getFunction('pinBatch')(`0x${'cd'.repeat(32)}`, tag)).wait();
    const instance = await store.saveInstance({
      header: { id: 'late-2', definitionId: 'd', definitionHash: `0x${'22'.repeat(32)}`, roles: { a: 'alpha', b: 'beta' }, createdBy: 'alpha', createdAt: '2026-11-21T00:00:00Z' },
      secret,
      signature: '0xsig',
    });
    expect(await listener.lookBack(instance, (pinned as ethers.TransactionReceipt).blockNumber + 1)).toBe(0);
    expect(await store.slots.findOne({ _id: slotId('late-2', 'beta', 1) })).toBeNull();
  }, 60_000);
});
