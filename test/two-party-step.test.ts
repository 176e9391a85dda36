/**
 * The spine, end to end on the real stack: two parties, each with its own node, take the steps of
 * one purchase order together. A step is pending on both nodes until its pin is N blocks deep, then
 * confirmed on both; a party cannot take another role's step; bad input names the failing field;
 * both nodes end with identical histories.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { workflowBundlePath } from '../src/node/workflow-source';
import { instanceWorkflowId, viewQuery } from '../workflows/messages';
import { definitionsWith } from './support/definitions-dir';
import { repoRoot } from '../src/paths';
import { quietTemporalRuntime } from './support/quiet-runtime';
import type { StepView } from '../src/api/views';

const CONFIRMATIONS = 2;
let net: TestNetwork;

beforeAll(async () => {
  quietTemporalRuntime();
  // A tiny per-run message budget makes every instance continue-as-new several times mid-process.
  net = await startTestNetwork(['acme', 'globex'], CONFIRMATIONS, {
    env: { LOCKSTEP_MAX_MESSAGES_PER_RUN: '3', LOCKSTEP_DEFINITIONS: definitionsWith('guarded-totals.yaml') },
  });
}, 180_000);

afterAll(async () => {
  await net?.stop();
});


const history = (party: string, instanceId: string): Promise<StepView[]> => net.history(party, instanceId);

async function stepOn(party: string, instanceId: string, envelopeHash: string): Promise<StepView | undefined> {
  return (await history(party, instanceId)).find((s) => s.envelopeHash === envelopeHash);
}

/** Proposes a step and takes it through the chain: pending while shallow, confirmed on both at depth N. */
async function takeStep(party: string, instanceId: string, step: string, input: unknown): Promise<string> {
  const res = await net.api(party).post(`/instances/${instanceId}/steps`, { step, input });
  expect(res.status).toBe(202);
  const hash = res.body.envelopeHash as string;
  await net.pendingTransactions(1);
  for (const p of ['acme', 'globex']) {
    await eventually(`${step} known on ${p}`, () => stepOn(p, instanceId, hash));
  }
  await net.mine(CONFIRMATIONS - 1);
  for (const p of ['acme', 'globex']) {
    const seen = await eventually(`${step} sequenced on ${p}`, async () => {
      const s = await stepOn(p, instanceId, hash);
      return s?.chain ? s : undefined;
    });
    expect(seen.status).toBe('pending');
    expect(seen.chain!.confirmations).toBeLessThan(CONFIRMATIONS);
  }
  await net.mine(1);
  for (const p of ['acme', 'globex']) {
    const done = await eventually(`${step} confirmed on ${p}`, async () => {
      const s = await stepOn(p, instanceId, hash);
      return s?.status === 'confirmed' ? s : undefined;
    });
    expect(done.chain!.confirmations).toBeGreaterThanOrEqual(CONFIRMATIONS);
  }
  return hash;
}

test('two parties take a purchase order to the end, with identical histories on both nodes', async () => {
  const started = await net.api('acme').post('/instances', { definition: 'purchase-order', roles: { buyer: 'acme', seller: 'globex' } });
  expect(started.status).toBe(201);
  const id = started.body.instance.id as string;
  await eventually('instance known on globex', async () => ((await net.api('globex').get(`/instances/${id}`)).status === 200 ? true : undefined));

  const order = await takeStep('acme', id, 'order', { sku: 'BOLT-M8', quantity: 500, unitPrice: 0.12 });

  // globex plays the seller: it may not take the buyer's step, and nothing is recorded anywhere.
  const forbidden = await net.api('globex').post(`/instances/${id}/steps`, { step: 'pay', input: { amount: 60, reference: 'x' } });
  expect(forbidden.status).toBe(403);
  expect(forbidden.contentType).toContain('application/problem+json');
  expect(forbidden.body.detail).toContain('role buyer');

  // Input that violates the step's schema is refused, naming the failing field.
  const invalid = await net.api('globex').post(`/instances/${id}/steps`, { step: 'accept', input: { deliveryDate: 'next tuesday' } });
  expect(invalid.status).toBe(422);
  expect(invalid.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: '/input/deliveryDate' })]));

  // A step whose predecessor is not final yet is refused too.
  const early = await net.api('globex').post(`/instances/${id}/steps`, { step: 'ship', input: { carrier: 'DHL', trackingId: '1' } });
  expect(early.status).toBe(409);
  expect(early.body.detail).toContain('"accept"');

  for (const p of ['acme', 'globex']) expect((await history(p, id)).map((s) => s.envelopeHash)).toEqual([order]);

  await takeStep('globex', id, 'accept', { deliveryDate: '2026-12-01' });
  await takeStep('globex', id, 'ship', { carrier: 'DHL', trackingId: 'JD0146' });
  await takeStep('acme', id, 'pay', { amount: 60, reference: 'INV-7781' });

  const acme = await history('acme', id);
  const globex = await history('globex', id);
  const comparable = (h: StepView[]) =>
    h.map((s) => ({ seq: s.seq, step: s.step, author: s.author, status: s.status, envelopeHash: s.envelopeHash, block: s.chain!.blockNumber, logIndex: s.chain!.logIndex, index: s.chain!.index }));
  expect(comparable(acme)).toEqual(comparable(globex));
  expect(acme.map((s) => `${s.seq}:${s.step}:${s.author}`)).toEqual(['0:order:acme', '1:accept:globex', '2:ship:globex', '3:pay:acme']);
  expect(globex[0]!.input).toEqual({ sku: 'BOLT-M8', quantity: 500, unitPrice: 0.12 });

  for (const p of ['acme', 'globex']) {
    const ended = await eventually(`instance ended on ${p}`, async () => {
      const res = await net.api(p).get(`/instances/${id}`);
      return res.body.instance.status === 'ended' ? res.body.instance : undefined;
    });
    expect(ended.outcome).toBe('completed');
  }
  const late = await net.api('acme').post(`/instances/${id}/steps`, { step: 'order', input: { sku: 'A', quantity: 1, unitPrice: 1 } });
  expect(late.status).toBe(409);

  await replayEveryRun(id);
});

/**
 * A workflow keeps the data of steps a guard reads, and hands it on at continue-as-new. Were it
 * kept whole, three quotes of 700 KB would pass Temporal's 2 MB payload limit there and wedge the
 * instance; kept as what the guard reads (each quote's amount), they cost a few bytes.
 */
test('an instance carries only what its guards read of large steps, across continue-as-new', async () => {
  const id = await net.startInstance('acme', 'guarded-totals', { buyer: 'acme', seller: 'globex' });
  const notes = 'n'.repeat(700_000);
  for (const [i, step] of ['quote-a', 'quote-b', 'quote-c'].entries()) await takeStep('globex', id, step, { amount: 10 * (i + 1), notes });

  const over = await net.api('acme').post(`/instances/${id}/steps`, { step: 'accept', input: { budget: 59 } });
  expect(over.status).toBe(422);
  expect(over.body.detail).toContain('the quotes add up to more than the budget');
  await takeStep('acme', id, 'accept', { budget: 60 });

  const connection = await Connection.connect({ address: net.stack.network.temporal.address });
  try {
    for (const party of ['acme', 'globex']) {
      const client = new Client({ connection, namespace: net.stack.network.parties[party]!.namespace });
      const { state } = await client.workflow.getHandle(instanceWorkflowId(id)).query(viewQuery);
      expect(state.ended?.outcome).toBe('accepted');
      expect(Object.fromEntries(Object.entries(state.done).map(([step, done]) => [step, done.input]))).toEqual({
        'quote-a': { amount: 10 },
        'quote-b': { amount: 20 },
        'quote-c': { amount: 30 },
        accept: { budget: 60 },
      });
    }
  } finally {
    await connection.close();
  }
  // Every node still holds and shows each quote whole.
  for (const party of ['acme', 'globex']) {
    const quotes = (await history(party, id)).filter((s) => s.step.startsWith('quote-'));
    expect(quotes.map((s) => [s.status, (s.input as { notes: string }).notes.length])).toEqual(Array(3).fill(['confirmed', 700_000]));
  }
  await replayEveryRun(id);
}, 180_000);

/**
 * Each node's workflow continued as new mid-process, and every run of it replays against the
 * workflow code as built: the determinism guard. The histories are kept under test-output/.
 */
async function replayEveryRun(instanceId: string): Promise<void> {
  const connection = await Connection.connect({ address: net.stack.network.temporal.address });
  try {
    for (const party of ['acme', 'globex']) {
      const client = new Client({ connection, namespace: net.stack.network.parties[party]!.namespace });
      const runs = await eventually(`all runs of ${instanceId} listed on ${party}`, async () => {
        const found = [];
        for await (const run of client.workflow.list({ query: `WorkflowId = '${instanceWorkflowId(instanceId)}'` })) found.push(run);
        return found.some((r) => r.status.name === 'COMPLETED') ? found : undefined;
      });
      expect(runs.length).toBeGreaterThan(1);
      expect(runs.filter((r) => r.status.name === 'CONTINUED_AS_NEW').length).toBe(runs.length - 1);
      const histories = [];
      for (const run of runs) {
        const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
        histories.push({ workflowId: `${run.workflowId}/${run.runId}`, history });
      }
      const dir = join(repoRoot(), 'test-output', 'histories', party);
      mkdirSync(dir, { recursive: true });
      // Binary protobuf: the SDK's JSON history converter trips over two copies of protobufjs here.
      histories.forEach((h, i) => writeFileSync(join(dir, `run-${i}.pb`), temporal.api.history.v1.History.encode(h.history).finish()));
      for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: workflowBundlePath() } }, histories)) {
        expect(result.error).toBeUndefined();
      }
    }
  } finally {
    await connection.close();
  }
}
