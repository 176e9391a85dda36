/**
 * Conflicts at scale on the real stack: three parties, 50 instances, and in each the two claims
 * that exclude each other fired at the same moment by two different parties. The chain order
 * settles each one: exactly one claim wins per instance, the other is rejected as a conflict that
 * names the winner, and every node ends with the same history for every instance. And an
 * invitation delivered again once its instance has ended (an inviting activity's retry) starts no
 * new run of the workflow, whose initial state would judge a late step differently.
 */
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { Client, Connection } from '@temporalio/client';
import { startTestNetwork, type TestNetwork } from './support/network';
import { historyFingerprint } from './support/history';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import type { StepView } from '../src/api/views';
import type { InstanceDoc } from '../src/store/documents';
import { instanceWorkflowId } from '../workflows/messages';
import { invitationOf } from '../activities';

const CONFIRMATIONS = 2;
const INSTANCES = 50;
const PARTIES = ['alpha', 'beta', 'gamma'];
const ROLES = { host: 'alpha', left: 'beta', right: 'gamma' };
let net: TestNetwork;
/** The instances of the first test, all ended once it has run. */
let ids: string[] = [];

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(PARTIES, CONFIRMATIONS, { env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'definitions') } });
}, 180_000);

afterAll(async () => {
  await net?.stop();
});

type HistoryStep = StepView & { instanceId: string };

/** Every step this node holds for the race definition's claims or opens, across instances. */
async function steps(party: string, query: string): Promise<HistoryStep[]> {
  const res = await net.api(party).get<{ steps: HistoryStep[] }>(`/history?limit=500&${query}`);
  if (res.status !== 200) throw new Error(`${party}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.steps;
}


/** Runs `fn` over `items`, at most `limit` at a time. */
async function inBatches<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += limit) out.push(...(await Promise.all(items.slice(i, i + limit).map(fn))));
  return out;
}

/** Mines a block at a time until `done` holds; bounded in blocks. */
async function mineUntil(what: string, done: () => Promise<boolean>, maxBlocks = 400): Promise<void> {
  for (let i = 0; i < maxBlocks; i++) {
    if (await done()) return;
    await net.mine(1);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`not done after ${maxBlocks} blocks: ${what}`);
}

/**
 * Proposes a claim as a well-behaved app does: a 503 (the node's worker too busy to answer in
 * time, which a burst on a loaded machine can cause) is retried after a pause under the same
 * Idempotency-Key, so a retry attaches to the first attempt; a bounded number of times.
 */
async function claim(party: string, id: string, step: string) {
  const headers = { 'Idempotency-Key': `${id}/${step}` };
  for (let attempt = 1; ; attempt++) {
    const res = await net.api(party).post(`/instances/${id}/steps`, { step, input: {} }, { headers });
    if (res.status !== 503 || attempt === 5) return res;
    await new Promise((r) => setTimeout(r, 1000 * attempt));
  }
}

test(`${INSTANCES} instances, competing claims fired concurrently: one winner each, identical histories on every node`, async () => {
  ids = await inBatches(Array.from({ length: INSTANCES }, (_, i) => i), 10, async () => {
    const res = await net.api('alpha').post('/instances', { definition: 'race', roles: ROLES });
    expect(res.status).toBe(201);
    return res.body.instance.id as string;
  });
  await eventually('every instance known on every node', async () => {
    for (const p of ['beta', 'gamma']) {
      const res = await net.api(p).get<{ instances: unknown[] }>('/instances?definition=race&limit=500');
      if (res.body.instances.length < INSTANCES) return undefined;
    }
    return true;
  }, 180_000, 500);

  await inBatches(ids, 10, async (id) => {
    const res = await net.api('alpha').post(`/instances/${id}/steps`, { step: 'open', input: {} });
    expect(res.status).toBe(202);
  });
  await mineUntil('every open final on the claimants\' nodes', async () => {
    const counts = await Promise.all(['beta', 'gamma'].map(async (p) => (await steps(p, 'step=open&status=confirmed')).length));
    return counts.every((c) => c === INSTANCES);
  });

  // Both claims of every instance at once: neither claimant can know of the other's.
  const claims = await Promise.all(
    ids.flatMap((id) => [claim('beta', id, 'claim-left'), claim('gamma', id, 'claim-right')]),
  );
  expect(claims.map((c) => c.status)).toEqual(claims.map(() => 202));

  // Both claims of every instance, on every node: a 202 means the claim is accepted, and it is
  // stored by then unless storing took over 10 s (Temporal slow to dispatch its publish activity).
  await mineUntil('every claim decided on every node', async () => {
    const counts = await Promise.all(PARTIES.map(async (p) => (await steps(p, 'status=pending')).length));
    const decided = await Promise.all(
      PARTIES.flatMap((p) => ['claim-left', 'claim-right'].map(async (step) => (await steps(p, `step=${step}`)).filter((s) => s.status !== 'pending').length)),
    );
    return counts.every((c) => c === 0) && decided.every((d) => d === INSTANCES);
  });

  let divergent = 0;
  for (const id of ids) {
    const histories = await Promise.all(PARTIES.map((p) => net.history(p, id)));
    if (new Set(histories.map(historyFingerprint)).size !== 1) divergent++;
    const claimSteps = histories[0]!.filter((s) => s.step.startsWith('claim-'));
    expect(claimSteps).toHaveLength(2);
    const winners = claimSteps.filter((s) => s.status === 'confirmed');
    const losers = claimSteps.filter((s) => s.status === 'rejected');
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    expect(losers[0]!.rejection).toEqual(expect.objectContaining({ code: 'conflict', winner: winners[0]!.envelopeHash }));
    // The winner is the one sequenced first.
    const pos = (s: StepView) => [s.chain!.blockNumber, s.chain!.logIndex, s.chain!.index];
    const [w, l] = [pos(winners[0]!), pos(losers[0]!)];
    expect(w[0]! < l[0]! || (w[0] === l[0] && (w[1]! < l[1]! || (w[1] === l[1] && w[2]! < l[2]!)))).toBe(true);
    const ended = await net.api('gamma').get(`/instances/${id}`);
    expect(ended.body.instance.outcome).toBe(winners[0]!.step === 'claim-left' ? 'left' : 'right');
  }
  expect(divergent).toBe(0);
}, 900_000);

test("an invitation delivered again after its instance ended starts no new run of the participant's workflow", async () => {
  const id = ids[0]!;
  const network = net.stack.network;
  const before = await net.history('gamma', id);
  expect(before.filter((s) => s.status !== 'pending')).toHaveLength(3);
  // The invitation as the creator stored it, sent again as its inviting activity's retry would.
  const mongo = await MongoClient.connect(network.mongodb.uri);
  const temporal = await Connection.connect({ address: network.temporal.address });
  try {
    const doc = await mongo.db(network.parties.alpha!.database).collection<InstanceDoc>('instances').findOne({ _id: id });
    const invitation = invitationOf(doc!);
    const res = await fetch(`${network.parties.gamma!.dxUrl}/dx/v1/invitations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-lockstep-party': 'alpha' },
      body: JSON.stringify(invitation),
    });
    expect(res.status).toBe(200);
    const workflow = new Client({ connection: temporal, namespace: network.parties.gamma!.namespace }).workflow.getHandle(instanceWorkflowId(id));
    expect((await workflow.describe()).status.name).toBe('COMPLETED');
    expect(await net.history('gamma', id)).toEqual(before);
  } finally {
    await mongo.close();
    await temporal.close();
  }
}, 120_000);
