/**
 * Sequencing on the real stack, three parties: data and pins in either order, with later steps
 * held back behind missing data;
 * a shallow reorganisation re-pins a step that then becomes final once; a node killed mid-step
 * pins it exactly once after restart; a deep reorganisation is reported, not absorbed.
 */
import { join } from 'node:path';
import { startTestNetwork, type TestNetwork } from './support/network';
import { historyFingerprint as fingerprint } from './support/history';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { SequencerClient } from '../src/chain/sequencer';
import type { StepView } from '../src/api/views';

const CONFIRMATIONS = 2;
const PARTIES = ['alpha', 'beta', 'gamma'];
const ROLES = { host: 'alpha', left: 'beta', right: 'gamma' };
let net: TestNetwork;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(PARTIES, CONFIRMATIONS, {
    env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'definitions'), LOCKSTEP_RESUBMIT_AFTER_MS: '1000' },
    cuttable: ['beta'],
  });
}, 180_000);

afterAll(async () => {
  await net?.stop();
});


const history = (party: string, id: string): Promise<StepView[]> => net.history(party, id);

const startInstance = (): Promise<string> => net.startInstance('alpha', 'race', ROLES);

async function propose(party: string, id: string, step: string, input: unknown = {}): Promise<string> {
  const res = await net.api(party).post(`/instances/${id}/steps`, { step, input });
  if (res.status !== 202) throw new Error(`${party} ${step}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.envelopeHash as string;
}

/** Mines a block at a time until `done` holds (bounded). */
async function mineUntil(what: string, done: () => Promise<boolean>, maxBlocks = 200): Promise<void> {
  for (let i = 0; i < maxBlocks; i++) {
    if (await done()) return;
    await net.mine(1);
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`not done after ${maxBlocks} blocks: ${what}`);
}

const decidedEverywhere = (id: string, count: number) => async () => {
  const histories = await Promise.all(PARTIES.map((p) => history(p, id)));
  return histories.every((h) => h.filter((s) => s.status !== 'pending').length >= count);
};

test('pin before data: later steps wait behind missing data, nothing is skipped, all catch up', async () => {
  const id = await startInstance();
  net.proxy('beta').cut();
  try {
    const hostNote = await propose('alpha', id, 'note-host', { text: 'from alpha' });
    await net.pendingTransactions(1);
    await net.mine(1);
    const leftNote = await propose('beta', id, 'note-left', { text: 'from beta' });
    await net.pendingTransactions(1);
    await net.mine(CONFIRMATIONS + 1);

    // alpha and gamma hold both steps: applied in chain order.
    for (const p of ['alpha', 'gamma']) {
      await eventually(`both notes final on ${p}`, async () => ((await history(p, id)).filter((s) => s.status === 'confirmed').length === 2 ? true : undefined));
      expect((await history(p, id)).map((s) => `${s.seq}:${s.envelopeHash}`)).toEqual([`0:${hostNote}`, `1:${leftNote}`]);
    }
    // beta saw alpha's step on chain but has no data: it says so, and holds its own later step back.
    const waiting = await eventually('beta to report the missing data', async () => {
      const res = await net.api('beta').get(`/instances/${id}`);
      const w = res.body.waitingForData as { author: string; nonce: number; final: boolean }[];
      return w.some((x) => x.author === 'alpha' && x.final) ? w : undefined;
    });
    expect(waiting).toEqual([expect.objectContaining({ author: 'alpha', nonce: 1, final: true, hasEnvelope: false })]);
    // Apps hear of it too: an event names the instance and the missing pin.
    const event = await eventually('a data.waiting event on beta', async () => {
      const res = await net.api('beta').get(`/events?types=data.waiting&instance=${id}`);
      return (res.body.events as { data: { pin: string } }[])[0];
    });
    expect(event).toEqual(expect.objectContaining({ type: 'data.waiting', instanceId: id, data: { pin: 'alpha/1', waitingFor: 'data' } }));
    await new Promise((r) => setTimeout(r, 1000));
    const held = await history('beta', id);
    expect(held.map((s) => [s.envelopeHash, s.status])).toEqual([[leftNote, 'pending']]);
  } finally {
    net.proxy('beta').restore();
  }
  // The data arrives (alpha's delivery is retried): beta applies both, in chain order.
  await eventually('beta catches up', async () => ((await history('beta', id)).filter((s) => s.status === 'confirmed').length === 2 ? true : undefined), 90_000);
  const all = await Promise.all(PARTIES.map((p) => history(p, id)));
  expect(new Set(all.map(fingerprint)).size).toBe(1);
  expect((await net.api('beta').get(`/instances/${id}`)).body.waitingForData).toEqual([]);
}, 180_000);

test('a shallow reorganisation: the step goes back to pending, is pinned again and becomes final once', async () => {
  const id = await startInstance();
  const snapshot = (await net.provider.send('evm_snapshot', [])) as string;
  const open = await propose('alpha', id, 'open');
  await net.pendingTransactions(1);
  await net.mine(1);
  const firstBlock = await eventually('open sequenced on every node', async () => {
    const seen = await Promise.all(PARTIES.map(async (p) => (await history(p, id)).find((s) => s.envelopeHash === open)?.chain?.blockNumber));
    return seen.every((b) => b !== undefined) ? seen[0] : undefined;
  }, 90_000);
  await net.provider.send('evm_revert', [snapshot]);
  // The block is gone: pending everywhere, then re-sent by alpha's batcher and mined again.
  await eventually('open unsequenced after the reorg', async () => {
    const seen = await Promise.all(PARTIES.map(async (p) => (await history(p, id)).find((s) => s.envelopeHash === open)));
    return seen.every((s) => s?.status === 'pending' && s.chain === null) ? true : undefined;
  });
  await mineUntil('open final everywhere', decidedEverywhere(id, 1));
  const histories = await Promise.all(PARTIES.map((p) => history(p, id)));
  expect(new Set(histories.map(fingerprint)).size).toBe(1);
  expect(histories[0]!.map((s) => [s.envelopeHash, s.status, s.seq])).toEqual([[open, 'confirmed', 0]]);
  expect(histories[0]![0]!.chain!.blockNumber).toBeGreaterThanOrEqual(firstBlock);
}, 180_000);

test('a node killed (SIGKILL) after accepting a step pins it exactly once after restart', async () => {
  const id = await startInstance();
  const client = new SequencerClient({ rpcUrl: net.stack.network.chain.rpcUrl, address: net.stack.network.chain.sequencer, chainId: net.stack.network.chain.chainId });
  try {
    const from = (await client.head()) + 1;
    const open = await propose('alpha', id, 'open');
    await net.nodes.kill('alpha', 'SIGKILL');
    await net.nodes.start('alpha');
    await mineUntil('open final everywhere after the restart', decidedEverywhere(id, 1));
    const alphaTags = (await client.tagsBetween(from, await client.head())).filter((t) => t.author === net.stack.network.parties.alpha!.address);
    expect(alphaTags).toHaveLength(1);
    const histories = await Promise.all(PARTIES.map((p) => history(p, id)));
    expect(new Set(histories.map(fingerprint)).size).toBe(1);
    expect(histories[0]!.map((s) => [s.envelopeHash, s.status])).toEqual([[open, 'confirmed']]);
  } finally {
    client.destroy();
  }
}, 180_000);

test('a losing claim whose data reaches a node after the instance ended is decided there as everywhere else', async () => {
  const id = await startInstance();
  await propose('alpha', id, 'open');
  await mineUntil('open final everywhere', decidedEverywhere(id, 1));
  net.proxy('beta').cut();
  let winner: string;
  let loser: string;
  try {
    winner = await propose('beta', id, 'claim-left');
    await net.pendingTransactions(1);
    await net.mine(1);
    // gamma's claim is sequenced after beta's (its node does not know beta's claim is final yet).
    loser = await propose('gamma', id, 'claim-right');
    await net.pendingTransactions(1);
    await net.mine(1);
    // beta decides its own claim, the instance ends there, and beta's workflow finishes before
    // gamma's claim (cut off) reaches it.
    await mineUntil('the instance ended on beta', async () => (await net.api('beta').get(`/instances/${id}`)).body.instance.status === 'ended');
    await mineUntil('both claims decided on alpha and gamma', async () => {
      const hs = await Promise.all(['alpha', 'gamma'].map((p) => history(p, id)));
      return hs.every((h) => h.length === 3 && h.every((s) => s.status !== 'pending'));
    });
  } finally {
    net.proxy('beta').restore();
  }
  await eventually('the late claim decided on beta', async () => ((await history('beta', id)).find((s) => s.envelopeHash === loser)?.status === 'rejected' ? true : undefined), 90_000);
  const histories = await Promise.all(PARTIES.map((p) => history(p, id)));
  expect(new Set(histories.map(fingerprint)).size).toBe(1);
  const late = histories[1]!.find((s) => s.envelopeHash === loser)!;
  expect(late).toEqual(expect.objectContaining({ seq: 2, status: 'rejected', rejection: expect.objectContaining({ code: 'conflict', winner }) }));
}, 180_000);

test('a reorganisation deeper than the confirmation depth is reported and stops new steps', async () => {
  const id = await startInstance();
  const snapshot = (await net.provider.send('evm_snapshot', [])) as string;
  await propose('alpha', id, 'open');
  await mineUntil('open final everywhere', decidedEverywhere(id, 1));
  await net.mine(CONFIRMATIONS + 1);
  await new Promise((r) => setTimeout(r, 500));
  await net.provider.send('evm_revert', [snapshot]);
  await net.mine(CONFIRMATIONS + 5);
  for (const p of PARTIES) {
    const status = await eventually(`${p} to report the deep reorganisation`, async () => {
      const res = await net.api(p).get('/status');
      return res.body.chain.deepReorg ? res.body : undefined;
    });
    expect(status.chain.deepReorg.block).toBeGreaterThan(0);
  }
  const refused = await net.api('alpha').post('/instances', { definition: 'race', roles: ROLES });
  expect(refused.status).toBe(503);
  expect(refused.body.detail).toMatch(/reorganised below the confirmation depth/);
}, 120_000);
