/**
 * Hostile traffic at a node's data-exchange endpoint, on the real stack: forged, tampered,
 * misdirected and replayed envelopes and invitations. Each is refused with a 4xx naming the
 * problem, logged, and recorded as a `security.refused` event; the honest parties' histories do
 * not change, and the instance goes on.
 */
import { join } from 'node:path';
import { Wallet, hexlify, randomBytes } from 'ethers';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { sealEnvelope, sealInvitation, newSecret } from '../src/envelope/seal';
import { SequencerClient } from '../src/chain/sequencer';
import { contextOf, tagOf } from '../src/chain/pins';
import type { SignedEnvelope } from '../src/model/envelope';
import type { StepView } from '../src/api/views';

const CONFIRMATIONS = 1;
const PARTIES = ['alpha', 'beta', 'gamma', 'delta'];
const ROLES = { host: 'alpha', left: 'beta', right: 'gamma' };
let net: TestNetwork;
let instanceId: string;
let definitionHash: string;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(PARTIES, CONFIRMATIONS, { env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'definitions') } });
  definitionHash = (await net.api('alpha').get('/definitions/race')).body.hash as string;
  instanceId = await net.startInstance('alpha', 'race', ROLES);
  await net.api('alpha').post(`/instances/${instanceId}/steps`, { step: 'open', input: {} });
  await net.pendingTransactions(1);
  await net.mine(CONFIRMATIONS + 1);
  await eventually('open final on beta', async () => ((await history('beta')).some((s) => s.status === 'confirmed') ? true : undefined), 60_000);
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

const wallet = (party: string) => new Wallet(net.stack.network.devKeys![party]!);

const history = (party: string): Promise<StepView[]> => net.history(party, instanceId);

function envelope(signer: string, fields: { author?: string; step?: string; nonce?: number; input?: unknown; instanceId?: string; definitionHash?: string } = {}): SignedEnvelope {
  return sealEnvelope(wallet(signer), {
    instanceId: fields.instanceId ?? instanceId,
    definitionHash: fields.definitionHash ?? definitionHash,
    step: fields.step ?? 'claim-right',
    author: fields.author ?? signer,
    nonce: fields.nonce ?? 1,
    proposedAt: new Date().toISOString(),
    salt: hexlify(randomBytes(32)),
    input: fields.input ?? {},
  });
}

async function post(to: string, route: 'envelopes' | 'invitations', body: unknown, sender?: string): Promise<{ status: number; body: { code?: string; detail?: string } }> {
  const res = await fetch(`${net.stack.network.parties[to]!.dxUrl}/dx/v1/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(sender ? { 'x-lockstep-party': sender } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { code?: string; detail?: string } };
}

const ATTACKS: { name: string; send: () => Promise<{ status: number; body: { code?: string; detail?: string } }>; status: number; detail: RegExp }[] = [
  {
    name: 'an envelope claiming gamma as author, signed with delta\'s key',
    send: () => post('beta', 'envelopes', envelope('delta', { author: 'gamma' })),
    status: 401,
    detail: /signature is not gamma's/,
  },
  {
    name: 'a genuine envelope whose data was changed in transit',
    send: () => {
      const e = envelope('gamma');
      return post('beta', 'envelopes', { ...e, data: { ...e.data!, input: { prize: 'all of it' } } });
    },
    status: 400,
    detail: /step data does not match the envelope/,
  },
  {
    name: 'a genuine envelope whose step was changed after signing',
    send: () => {
      const e = envelope('gamma');
      return post('beta', 'envelopes', { ...e, envelope: { ...e.envelope, step: 'claim-left' } });
    },
    status: 400,
    detail: /envelope hash mismatch/,
  },
  {
    name: 'a second, different envelope under a step number alpha already used (a replay with new content)',
    send: () => post('beta', 'envelopes', envelope('alpha', { step: 'note-host', nonce: 1, input: { text: 'rewritten history' } })),
    status: 409,
    detail: /alpha already sent a different envelope/,
  },
  {
    name: 'an envelope from delta, who plays no role in the instance',
    send: () => post('beta', 'envelopes', envelope('delta', { step: 'claim-left' })),
    status: 403,
    detail: /delta is not a participant/,
  },
  {
    name: 'gamma taking beta\'s step (a role it does not play)',
    send: () => post('beta', 'envelopes', envelope('gamma', { step: 'claim-left' })),
    status: 403,
    detail: /gamma does not play "left"/,
  },
  {
    name: 'delta relaying an envelope gamma signed',
    send: () => post('beta', 'envelopes', envelope('gamma'), 'delta'),
    status: 403,
    detail: /delta may not forward an envelope authored by gamma/,
  },
  {
    name: 'an envelope for a definition hash the instance does not run',
    send: () => post('beta', 'envelopes', envelope('gamma', { definitionHash: `0x${'ab'.repeat(32)}` })),
    status: 409,
    detail: /definition 0xabab.* but instance .* runs/,
  },
  {
    name: 'an invitation in alpha\'s name, signed by delta',
    send: () => {
      const header = { id: crypto.randomUUID(), definitionId: 'race', definitionHash, roles: { host: 'alpha', left: 'beta', right: 'delta' }, createdBy: 'alpha', createdAt: new Date().toISOString() };
      return post('beta', 'invitations', sealInvitation(wallet('delta'), header, newSecret()));
    },
    status: 401,
    detail: /not alpha's/,
  },
];

test('each forged, tampered, misdirected or replayed request is refused, naming the problem, and recorded as a security event', async () => {
  const before = JSON.stringify(await history('beta'));
  const from = (await net.api('beta').get('/events?types=security.refused')).body.next as number;
  for (const attack of ATTACKS) {
    const res = await attack.send();
    expect({ attack: attack.name, status: res.status }).toEqual({ attack: attack.name, status: attack.status });
    expect(res.body.detail).toMatch(attack.detail);
  }
  const events = await eventually('every refusal recorded', async () => {
    const res = await net.api('beta').get<{ events: { data: { code: string; message: string } }[] }>(`/events?types=security.refused&after=${from}`);
    return res.body.events.length >= ATTACKS.length ? res.body.events : undefined;
  });
  expect(events).toHaveLength(ATTACKS.length);
  ATTACKS.forEach((attack, i) => expect(events[i]!.data.message).toMatch(attack.detail));
  // Nothing was stored: beta's history is as it was, and the same as every honest node's.
  expect(JSON.stringify(await history('beta'))).toBe(before);
  const fingerprints = await Promise.all(['alpha', 'beta', 'gamma'].map(async (p) => JSON.stringify((await history(p)).map((s) => [s.envelopeHash, s.status, s.seq]))));
  expect(new Set(fingerprints).size).toBe(1);
});

test("a pin of gamma's next step sent from another address does not count, and is recorded as a security event", async () => {
  // delta learned the instance's secret (say, from a leaked evidence bundle) and pins gamma's
  // next tag first, from its own address and from one the network has never seen.
  const secret = (await net.api('alpha').get(`/instances/${instanceId}/evidence`)).body.instance.secret as string;
  const tag = tagOf(contextOf(secret, 'gamma', 1));
  const chain = net.stack.network.chain;
  const sequencer = new SequencerClient({ rpcUrl: chain.rpcUrl, address: chain.sequencer, chainId: chain.chainId });
  const stranger = Wallet.createRandom().connect(net.provider);
  try {
    await net.provider.send('anvil_setBalance', [stranger.address, '0x56BC75E2D63100000']);
    for (const signer of [wallet('delta').connect(net.provider), stranger]) {
      await signer.sendTransaction({ to: chain.sequencer, data: sequencer.encodeBatch(hexlify(randomBytes(32)), [tag]), gasLimit: 200_000 });
    }
  } finally {
    sequencer.destroy();
  }
  await net.pendingTransactions(2);
  await net.mine(CONFIRMATIONS + 1);
  for (const p of ['alpha', 'beta', 'gamma']) {
    const refused = await eventually(`both foreign pins refused on ${p}`, async () => {
      const res = await net.api(p).get<{ events: { instanceId: string; data: { route: string; sender: string; author: string; message: string } }[] }>(`/events?types=security.refused&instance=${instanceId}`);
      const chainRefusals = res.body.events.filter((e) => e.data.route === 'chain');
      return chainRefusals.length >= 2 ? chainRefusals : undefined;
    });
    expect(refused.map((e) => e.data.sender).sort()).toEqual([wallet('delta').address, stranger.address].sort());
    expect(refused.every((e) => e.data.author === 'gamma' && /does not count/.test(e.data.message))).toBe(true);
  }
  // Nothing was sequenced for gamma: no step of gamma's is in anyone's history.
  for (const p of ['alpha', 'beta', 'gamma']) expect((await history(p)).filter((s) => s.author === 'gamma')).toEqual([]);
});

test('after the attacks the instance goes on: a genuine claim is taken and final on every participant', async () => {
  const res = await net.api('gamma').post(`/instances/${instanceId}/steps`, { step: 'claim-right', input: {} });
  expect(res.status).toBe(202);
  await net.pendingTransactions(1);
  await net.mine(CONFIRMATIONS + 1);
  for (const p of ['alpha', 'beta', 'gamma']) {
    await eventually(`the claim final on ${p}`, async () => ((await history(p)).some((s) => s.step === 'claim-right' && s.status === 'confirmed') ? true : undefined), 60_000);
  }
  const outcome = (await net.api('beta').get(`/instances/${instanceId}`)).body.instance.outcome as string;
  expect(outcome).toBe('right');
});
