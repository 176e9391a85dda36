/**
 * Dispute evidence on the real stack: two parties run a quote (one step only the seller may read,
 * and a race that leaves one step rejected on chain); the buyer exports the history with the CLI,
 * and a third party verifies it against the chain. Every kind of tampering is caught: forged
 * signature, data that does not match its hash, an altered envelope, wrong or missing pin
 * references, reordered or omitted steps, a step that breaks the definition's rules (even one
 * genuinely signed and pinned), and a swapped definition.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getBytes, Wallet } from 'ethers';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import type { StepView } from '../src/api/views';
import { evidenceBundleSchema, type EvidenceBundle, type EvidenceStep } from '../src/model/evidence';
import { verifyEvidence } from '../src/evidence/verify';
import { readChain } from '../src/evidence/chain-checks';
import type { EvidenceVerdict } from '../src/evidence/verdict';
import { hashJson } from '../src/envelope/canonical';
import { sealEnvelope } from '../src/envelope/seal';
import { contextOf, stepLeaf, tagOf } from '../src/chain/pins';
import { SequencerClient } from '../src/chain/sequencer';

const CONFIRMATIONS = 2;
/** Terms of the offer: about 2 KB of text. */
const TERMS = Array.from({ length: 30 }, (_, i) => `Clause ${i + 1}: delivery within 30 days of the order, payment net 60.`).join(' ');
const root = join(__dirname, '..');
let net: TestNetwork;
let instanceId: string;
let bundle: EvidenceBundle;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(['acme', 'globex'], CONFIRMATIONS, { env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'evidence') } });
}, 180_000);

afterAll(async () => {
  await net?.stop();
});

function lockstep(...args: string[]) {
  const run = spawnSync(process.execPath, [join(root, 'bin', 'lockstep'), ...args], { encoding: 'utf8', cwd: net.dir, env: { ...process.env, LOCKSTEP_NETWORK: net.stack.networkPath } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

async function decided(party: string, hash: string): Promise<StepView> {
  return eventually(`${hash} decided on ${party}`, async () => {
    const res = await net.api(party).get<{ steps: StepView[] }>(`/instances/${instanceId}/steps`);
    return res.body.steps.find((s) => s.envelopeHash === hash && s.status !== 'pending');
  });
}

/** Proposes steps together, mines their pins N deep, waits until both nodes decided them. */
async function take(...steps: [party: string, step: string, input: unknown][]): Promise<StepView[]> {
  const hashes: string[] = [];
  for (const [party, step, input] of steps) {
    const res = await net.api(party).post(`/instances/${instanceId}/steps`, { step, input });
    if (res.status !== 202) throw new Error(`${step} by ${party}: ${res.status} ${JSON.stringify(res.body)}`);
    hashes.push(res.body.envelopeHash as string);
  }
  await net.pendingTransactions(steps.length);
  await net.mine(CONFIRMATIONS);
  for (const hash of hashes) await decided('globex', hash);
  return Promise.all(hashes.map((hash) => decided('acme', hash)));
}

/** `where:check` of every failed check: `bundle:…` or `<index in the bundle>:…`. */
function failures(v: EvidenceVerdict): string[] {
  return [...v.bundle.filter((c) => !c.ok).map((c) => `bundle:${c.name}`), ...v.steps.flatMap((s, i) => s.checks.filter((c) => !c.ok).map((c) => `${i}:${c.name}`))];
}

const verify = (b: unknown) => verifyEvidence(b, { rpcUrl: net.stack.network.chain.rpcUrl });
const copy = (): EvidenceBundle => structuredClone(bundle);
const stepNamed = (b: EvidenceBundle, id: string): EvidenceStep => b.steps.find((s) => s.envelope.step === id)!;

test('the buyer exports the history with the CLI, and a third party verifies it against the chain', async () => {
  const started = lockstep('instances', 'start', 'quote', '--role', 'buyer=acme', '--role', 'seller=globex', '--party', 'acme', '--json');
  expect(started.stderr).toBe('');
  instanceId = (JSON.parse(started.stdout) as { id: string }).id;
  await eventually('instance on globex', async () => ((await net.api('globex').get(`/instances/${instanceId}`)).status === 200 ? true : undefined));

  // The buyer's app works from the command line too: its task, then the step.
  const tasks = lockstep('tasks', '--party', 'acme', '--instance', instanceId, '--json');
  expect(JSON.parse(tasks.stdout)).toEqual([expect.objectContaining({ instanceId, step: 'request', actor: 'buyer' })]);
  const badLimit = lockstep('tasks', '--party', 'acme', '--limit', '0');
  expect([badLimit.code, badLimit.stderr]).toEqual([1, expect.stringContaining('--limit must be a whole number of 1 or more, got "0"')]);
  const took = lockstep('steps', 'take', instanceId, 'request', '--input', '{"item":"valve","quantity":40}', '--party', 'acme', '--json');
  expect(took.stderr).toBe('');
  const request = (JSON.parse(took.stdout) as { envelopeHash: string }).envelopeHash;
  await net.pendingTransactions(1);
  await net.mine(CONFIRMATIONS);
  expect((await decided('acme', request)).status).toBe('confirmed');
  await decided('globex', request);
  const refused = lockstep('steps', 'take', instanceId, 'costing', '--input', '{"cost":-1}', '--party', 'globex');
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('failed (422)');
  expect(refused.stderr).toContain('/input/cost: must be >= 0');

  await take(['globex', 'costing', { cost: 812.5 }]);
  // The offer's terms make its data large enough to be stored apart from the step (store.ts, DATA_INLINE_MAX_CHARS).
  const offer = lockstep('steps', 'take', instanceId, 'offer', '--input', JSON.stringify({ price: 990, terms: TERMS }), '--output', '{"discount":0.1}', '--party', 'globex', '--json');
  expect(offer.stderr).toBe('');
  const offered = (JSON.parse(offer.stdout) as { envelopeHash: string }).envelopeHash;
  await net.pendingTransactions(1);
  await net.mine(CONFIRMATIONS);
  await decided('globex', offered);
  expect((await decided('acme', offered)).status).toBe('confirmed');
  // Both act on the offer in the same block: the first sequenced wins, the other is rejected.
  const race = await take(['acme', 'accept', {}], ['globex', 'withdraw', {}]);
  expect(race.map((s) => s.status).sort()).toEqual(['confirmed', 'rejected']);

  const shown = lockstep('instances', 'show', instanceId, '--party', 'globex');
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain(`${instanceId}: quote, ended (`);
  expect(shown.stdout).toMatch(/#1\s+costing\s+globex\s+confirmed/);
  const listed = lockstep('instances', 'list', '--party', 'acme', '--json');
  expect((JSON.parse(listed.stdout) as { id: string }[]).map((i) => i.id)).toContain(instanceId);

  const out = join(net.dir, 'bundle.json');
  const exported = lockstep('export', instanceId, '--party', 'acme', '--out', out, '--json');
  expect(exported.stderr).toBe('');
  expect(JSON.parse(exported.stdout)).toMatchObject({ steps: 5, readable: 4 });
  bundle = JSON.parse(readFileSync(out, 'utf8')) as EvidenceBundle;

  // The buyer may not read the costing: the bundle holds its envelope and data hash, not the data.
  const costing = stepNamed(bundle, 'costing');
  expect(costing.data).toBeUndefined();
  expect(costing.envelope.inputHash).toMatch(/^0x[0-9a-f]{64}$/);
  expect(stepNamed(bundle, 'offer').data).toMatchObject({ input: { price: 990, terms: TERMS }, output: { discount: 0.1 } });
  expect(bundle.steps.map((s) => s.status).filter((s) => s === 'rejected')).toHaveLength(1);
  expect(bundle.steps[0]!.pin).toMatchObject({ chainId: net.stack.network.chain.chainId, contract: net.stack.network.chain.sequencer });

  const verified = lockstep('verify', out, '--rpc', net.stack.network.chain.rpcUrl, '--network', net.stack.networkPath);
  expect(verified.stderr).toBe('');
  expect(verified.code).toBe(0);
  expect(verified.stdout).toContain('verdict: the history is genuine');
  expect(verified.stdout).toMatch(/step #1 costing by globex \(nonce 1, confirmed, 0x[0-9a-f]{64}\): ok/);
  expect(verified.stdout).toContain('not readable by acme');
  expect(verified.stdout).toMatch(/rejected, as the rules require: .*instance has ended/);

  const json = lockstep('verify', out, '--rpc', net.stack.network.chain.rpcUrl, '--json');
  expect(json.code).toBe(0);
  const verdict = JSON.parse(json.stdout) as EvidenceVerdict;
  expect(verdict.ok).toBe(true);
  expect(verdict.steps).toHaveLength(5);
}, 360_000);

test('each kind of tampering is caught, at the step it touches', async () => {
  const forged = copy();
  forged.steps[0]!.signature = Wallet.createRandom().signMessageSync(getBytes(forged.steps[0]!.hash));
  expect(failures(await verify(forged))).toEqual(['0:signature']);

  const data = copy();
  (stepNamed(data, 'offer').data!.input as { price: number }).price = 1;
  expect(failures(await verify(data))).toEqual(['2:data']);
  const output = copy();
  (stepNamed(output, 'offer').data!.output as { discount: number }).discount = 0.9;
  // The changed output also breaks the step's guard, so the replay refuses it and what follows it.
  expect(failures(await verify(output))).toEqual(expect.arrayContaining(['2:data', '2:rules']));

  // An altered envelope no longer has its hash; with the hash recomputed, the signature fails instead.
  const envelope = copy();
  envelope.steps[1]!.envelope.proposedAt = '2020-01-01T00:00:00.000Z';
  expect(failures(await verify(envelope))).toEqual(expect.arrayContaining(['1:envelope', '1:signature']));
  const rehashed = copy();
  rehashed.steps[2]!.envelope.step = 'withdraw';
  rehashed.steps[2]!.hash = hashJson(rehashed.steps[2]!.envelope);
  expect(failures(await verify(rehashed))).toEqual(expect.arrayContaining(['2:signature', '2:merkle']));

  const wrongPin = copy();
  wrongPin.steps[1]!.pin = { ...wrongPin.steps[1]!.pin, blockNumber: wrongPin.steps[1]!.pin.blockNumber + 1 };
  expect(failures(await verify(wrongPin))).toEqual(expect.arrayContaining(['1:pin']));
  const borrowedPin = copy();
  borrowedPin.steps[1]!.pin = { ...borrowedPin.steps[0]!.pin };
  expect(failures(await verify(borrowedPin))).toEqual(expect.arrayContaining(['1:pin']));
  const wrongTx = copy();
  wrongTx.steps[3]!.pin.transactionHash = wrongTx.steps[0]!.pin.transactionHash;
  expect(failures(await verify(wrongTx))).toEqual(['3:pin']);
  const missingPin = copy() as unknown as { steps: Record<string, unknown>[] };
  delete missingPin.steps[2]!.pin;
  expect(failures(await verify(missingPin))).toEqual(['bundle:shape', '2:shape']);

  const reordered = copy();
  [reordered.steps[1], reordered.steps[2]] = [reordered.steps[2]!, reordered.steps[1]!];
  expect(failures(await verify(reordered))).toEqual(expect.arrayContaining(['1:order', '2:order']));
  const renumbered = copy();
  [renumbered.steps[1], renumbered.steps[2]] = [renumbered.steps[2]!, renumbered.steps[1]!];
  renumbered.steps.forEach((s, i) => (s.seq = i));
  expect(failures(await verify(renumbered))).toEqual(['2:order']);

  const truncated = copy();
  truncated.steps.splice(3);
  expect(failures(await verify(truncated))).toEqual(['bundle:complete']);

  const omitted = copy();
  omitted.steps.splice(1, 1);
  omitted.steps.forEach((s, i) => (s.seq = i));
  expect(failures(await verify(omitted))).toEqual(expect.arrayContaining(['bundle:complete', '1:rules']));

  // The exporter flips the verdicts: the winner recorded as rejected, the loser as confirmed.
  const flipped = copy();
  for (const s of flipped.steps.slice(3)) {
    if (s.status === 'confirmed') s.status = 'rejected';
    else {
      s.status = 'confirmed';
      delete s.rejection;
    }
  }
  expect(failures(await verify(flipped))).toEqual(['3:rules', '4:rules']);

  // Another definition, under its own (correct) hash: not the one the instance was started with.
  const swapped = copy();
  swapped.definition.document = { ...swapped.definition.document, steps: swapped.definition.document.steps.map((s) => (s.id === 'withdraw' ? { ...s, actor: 'buyer' } : s)) };
  swapped.definition.hash = hashJson(swapped.definition.document);
  expect(failures(await verify(swapped))).toContain('bundle:definition');

  // A definition, under its own hash, whose schema cannot be compiled: reported, not a crash.
  const unusable = copy();
  unusable.definition.document = {
    ...unusable.definition.document,
    steps: unusable.definition.document.steps.map((s) => (s.id === 'request' ? { ...s, input: { type: 'strin' } } : s)),
  };
  unusable.definition.hash = hashJson(unusable.definition.document);
  const unusableVerdict = await verify(unusable);
  expect(failures(unusableVerdict)).toEqual(expect.arrayContaining(['bundle:definition', '0:rules']));
  expect(JSON.stringify(unusableVerdict)).toMatch(/the definition's schema for step \\"request\\" cannot be used: type must be JSONType/);

  // A party address swapped for the exporter's own key is caught against a trusted network file.
  const impostor = copy();
  impostor.parties.globex = { address: Wallet.createRandom().address };
  const trusted = Object.fromEntries(Object.entries(net.stack.network.parties).map(([p, e]) => [p, e.address]));
  const checked = await verifyEvidence(impostor, { rpcUrl: net.stack.network.chain.rpcUrl, trusted: { parties: trusted } });
  expect(failures(checked)).toEqual(expect.arrayContaining(['bundle:parties']));
});

test('the CLI prints the failing checks and exits non-zero on a tampered bundle', () => {
  const tampered = copy();
  (stepNamed(tampered, 'request').data!.input as { quantity: number }).quantity = 4;
  const file = join(net.dir, 'tampered.json');
  writeFileSync(file, JSON.stringify(tampered));
  const run = lockstep('verify', file, '--rpc', net.stack.network.chain.rpcUrl);
  expect(run.code).toBe(1);
  expect(run.stdout).toMatch(/step #0 request by acme .*: FAILED/);
  expect(run.stdout).toMatch(/FAIL data: the data hashes to 0x[0-9a-f]{64}, the signed envelope says/);
  expect(run.stdout).toContain('verdict: the evidence does NOT hold');
});

test('a genuinely signed and pinned step that breaks the rules is caught; left out of a bundle, its absence is caught', async () => {
  // globex signs and pins, with its own key, a step after the instance has ended.
  const network = net.stack.network;
  const wallet = new Wallet(network.devKeys!.globex!, net.provider);
  const nonce = Math.max(...bundle.steps.filter((s) => s.envelope.author === 'globex').map((s) => s.envelope.nonce)) + 1;
  const sealed = sealEnvelope(wallet, { instanceId, definitionHash: bundle.definition.hash, step: 'offer', author: 'globex', nonce, proposedAt: new Date().toISOString(), salt: '0x01', input: { price: 1 } });
  const leaf = stepLeaf(bundle.instance.secret, 'globex', nonce, sealed.hash);
  const tag = tagOf(contextOf(bundle.instance.secret, 'globex', nonce));
  const sequencer = new SequencerClient({ rpcUrl: network.chain.rpcUrl, address: network.chain.sequencer });
  const tx = await wallet.sendTransaction({ to: network.chain.sequencer, data: sequencer.encodeBatch(leaf, [tag]) });
  sequencer.destroy();
  await net.mine(CONFIRMATIONS);
  const receipt = (await tx.wait())!;
  const log = receipt.logs[0]!;
  const injected = copy();
  injected.steps.push({
    seq: injected.steps.length,
    status: 'confirmed',
    envelope: sealed.envelope,
    hash: sealed.hash,
    signature: sealed.signature,
    data: sealed.data,
    receipt: { root: leaf, index: 0, count: 1, proof: [] },
    pin: { chainId: network.chain.chainId, contract: network.chain.sequencer, blockNumber: log.blockNumber, blockHash: log.blockHash, transactionHash: log.transactionHash, logIndex: log.index, index: 0, tag },
  });
  const verdict = await verify(injected);
  expect(failures(verdict)).toEqual(['5:rules']);
  expect(verdict.steps[5]!.checks.find((c) => c.name === 'rules')!.message).toContain('instance has ended');

  // The genuine bundle does not hold that step: an arbiter now learns the chain has one more.
  expect(failures(await verify(copy()))).toEqual(['bundle:complete']);
});

test('the evidence endpoint is authenticated like every read, answers 404 for an unknown instance, and is in the OpenAPI document', async () => {
  const acme = net.api('acme');
  expect((await acme.withKey(undefined).get(`/instances/${instanceId}/evidence`)).status).toBe(401);
  const unknown = await acme.get('/instances/no-such-instance/evidence');
  expect(unknown.status).toBe(404);
  expect(unknown.body.errors).toEqual([{ field: 'instanceId', message: 'unknown' }]);
  const doc = (await acme.get('/openapi.json')).body as { paths: Record<string, { get?: { summary: string; responses: Record<string, { content: Record<string, { schema: unknown }> }> } }> };
  const evidence = doc.paths['/instances/{id}/evidence']?.get;
  expect(evidence?.summary).toMatch(/^Evidence bundle/);
  expect(evidence?.responses['200']!.content['application/json']!.schema).toEqual(JSON.parse(JSON.stringify(evidenceBundleSchema)));
});

test("verify reads the chain for this instance's pins alone, and a step number the bundle makes up sends it nowhere", async () => {
  // Another instance with a pinned step: the Sequencer holds more than this instance's pins.
  const other = await net.startInstance('acme', 'quote', { buyer: 'acme', seller: 'globex' });
  const res = await net.api('acme').post(`/instances/${other}/steps`, { step: 'request', input: { item: 'bolt', quantity: 1 } });
  expect(res.status).toBe(202);
  await net.pendingTransactions(1);
  await net.mine(CONFIRMATIONS);
  await eventually('the other instance pinned', async () => ((await net.api('acme').get<{ steps: StepView[] }>(`/instances/${other}/steps`)).body.steps[0]?.status === 'confirmed' ? true : undefined));

  const { chain } = net.stack.network;
  const read = await readChain(chain.rpcUrl, chain.sequencer, chain.deployBlock, bundle);
  const sequencer = new SequencerClient({ rpcUrl: chain.rpcUrl, address: chain.sequencer });
  const everyPin = await sequencer.tagsBetween(chain.deployBlock, read.head);
  sequencer.destroy();
  const ours = (party: string, nonce: number) => tagOf(contextOf(bundle.instance.secret, party, nonce));
  expect(read.pins.every(({ pin, party, nonce }) => pin.tag === ours(party, nonce))).toBe(true);
  expect(read.pins.map(({ pin }) => pin.tag)).toEqual(expect.arrayContaining(bundle.steps.map((s) => s.pin.tag)));
  expect(everyPin.length).toBeGreaterThan(read.pins.length);

  // A bundle may claim any step number; the verifier looks only as far as the chain leads it.
  const madeUp = copy();
  madeUp.steps[1]!.envelope.nonce = 1_000_000_000_000;
  expect(failures(await verify(madeUp))).toEqual(expect.arrayContaining(['1:envelope', 'bundle:complete']));
}, 120_000);
