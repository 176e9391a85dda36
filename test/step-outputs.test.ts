/**
 * Step outputs, end to end on the real stack: insurer A's adjudication of a healthcare claim
 * carries its decision (the amount covered) as the step's output. A bad output is refused by the
 * proposing node with a 422 naming the field, and nothing is sealed or sent; a receiving node
 * re-validates a peer's output itself and refuses an envelope whose output breaks the schema;
 * a good output travels in the signed data to every participant and guards read it.
 * acme plays the provider and insurer B, globex insurer A.
 */
import { Wallet } from 'ethers';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { sealEnvelope } from '../src/envelope/seal';
import { hashJson } from '../src/envelope/canonical';
import type { StepView } from '../src/api/views';

const PARTIES = ['acme', 'globex'];
const ROLES = { provider: 'acme', 'insurer-a': 'globex', 'insurer-b': 'acme' };
const CLAIM = { claimRef: 'CLM-3001', patientRef: 'p-9', procedureCode: '99213', serviceDate: '2026-11-02', amount: 480 };
let net: TestNetwork;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(PARTIES, 1);
}, 180_000);

afterAll(async () => {
  await net?.stop();
});

const history = (party: string, instanceId: string): Promise<StepView[]> => net.history(party, instanceId);

/** Proposes a step and waits until both nodes hold it confirmed; returns it as each node shows it. */
async function take(party: string, instanceId: string, body: { step: string; input: unknown; output?: unknown }): Promise<Record<string, StepView>> {
  const res = await net.api(party).post(`/instances/${instanceId}/steps`, body);
  expect(res.status).toBe(202);
  const hash = res.body.envelopeHash as string;
  await net.pendingTransactions(1);
  await net.mine(1);
  const views: Record<string, StepView> = {};
  for (const p of PARTIES) {
    views[p] = await eventually(`${body.step} confirmed on ${p}`, async () => {
      const s = (await history(p, instanceId)).find((h) => h.envelopeHash === hash);
      return s?.status === 'confirmed' ? s : undefined;
    }, 90_000);
  }
  return views;
}

test('a bad output is refused where it is proposed and where it is received; a good one reaches every participant and guards read it', async () => {
  const started = await net.api('acme').post('/instances', { definition: 'healthcare-claim', roles: ROLES });
  expect(started.status).toBe(201);
  const id = started.body.instance.id as string;
  const definitionHash = started.body.instance.definitionHash as string;
  await eventually('instance known on globex', async () => ((await net.api('globex').get(`/instances/${id}`)).status === 200 ? true : undefined));
  await take('acme', id, { step: 'submit-claim', input: CLAIM });

  // (a) The proposer refuses a bad output with a 422 naming the field, and an absent one.
  const bad = await net.api('globex').post(`/instances/${id}/steps`, { step: 'approve-primary', input: {}, output: { coveredAmount: 'most of it', by: 'me' } });
  expect(bad.status).toBe(422);
  expect(bad.body.code).toBe('validation_failed');
  expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['/output/by', '/output/coveredAmount']);
  const missing = await net.api('globex').post(`/instances/${id}/steps`, { step: 'approve-primary', input: {} });
  expect(missing.status).toBe(422);
  expect(missing.body.errors).toEqual([{ field: '/output', message: 'required: step "approve-primary" declares an output schema' }]);
  // A step without an output schema takes none.
  const stray = await net.api('globex').post(`/instances/${id}/steps`, { step: 'request-information', input: { question: 'why?' }, output: { urgent: true } });
  expect(stray.status).toBe(422);
  expect(stray.body.errors.map((e: { field: string }) => e.field)).toEqual(['/output']);
  // The guard reads the proposal's output: insurer A cannot cover more than was claimed.
  const greedy = await net.api('globex').post(`/instances/${id}/steps`, { step: 'approve-primary', input: {}, output: { coveredAmount: 481 } });
  expect(greedy.status).toBe(422);
  expect(greedy.body.code).toBe('guard');
  expect(greedy.body.errors).toEqual([{ field: '/output', message: 'insurer A cannot cover more than the amount claimed' }]);
  // Nothing was sealed, so nothing was sent: both nodes hold only the claim.
  for (const p of PARTIES) expect((await history(p, id)).map((s) => s.step)).toEqual(['submit-claim']);

  // (b) A receiving node validates a peer's output itself: globex's signed envelope with a bad output is refused by acme.
  const forged = sealEnvelope(new Wallet(net.stack.network.devKeys!.globex!), {
    instanceId: id,
    definitionHash,
    step: 'approve-primary',
    author: 'globex',
    nonce: 1,
    proposedAt: new Date().toISOString(),
    salt: hashJson('forged'),
    input: {},
    output: { coveredAmount: -5 },
  });
  const posted = await fetch(`${net.stack.network.parties.acme!.dxUrl}/dx/v1/envelopes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-lockstep-party': 'globex' },
    body: JSON.stringify(forged),
  });
  expect(posted.status).toBe(422);
  const refusal = (await posted.json()) as { code: string; errors: { field: string }[] };
  expect(refusal.code).toBe('validation_failed');
  expect(refusal.errors.map((e) => e.field)).toEqual(['/output/coveredAmount']);
  const rejected = await net.api('acme').get(`/events?types=step.rejected&instance=${id}`);
  expect(rejected.body.events).toEqual([
    expect.objectContaining({ envelopeHash: forged.hash, data: expect.objectContaining({ rejection: expect.objectContaining({ code: 'validation_failed' }) }) }),
  ]);
  expect((await history('acme', id)).map((s) => s.envelopeHash)).not.toContain(forged.hash);

  // A good output is signed with the step, delivered, shown in the history of both nodes.
  const approved = await take('globex', id, { step: 'approve-primary', input: { reviewNote: 'within plan' }, output: { coveredAmount: 400 } });
  for (const p of PARTIES) {
    expect(approved[p]!.input).toEqual({ reviewNote: 'within plan' });
    expect(approved[p]!.output).toEqual({ coveredAmount: 400 });
  }
  // Insurer B's guard reads A's output, as held on B's own node: at most 480 - 400 = 80.
  const over = await net.api('acme').post(`/instances/${id}/steps`, { step: 'settle-secondary', input: { paidAmount: 80.01 } });
  expect(over.status).toBe(422);
  expect(over.body.code).toBe('guard');
  const settled = await take('acme', id, { step: 'settle-secondary', input: { paidAmount: 80 } });
  expect(settled.globex!.output).toBeNull();
});
