/**
 * Privacy, proven by reading every node's MongoDB database after a run (four parties: a buyer, a
 * seller and a bank in one instance, and an outsider in none). A step's data (its distinctive
 * values and its salt) is held only by the parties whose role may see it, though every
 * participant holds the step itself; the outsider holds nothing at all about the instance: not
 * its id, secret, steps, envelope hashes, signatures, tags or events. The entitled parties' copies
 * are found by the same search, so the search is shown to work.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { BSON, MongoClient } from 'mongodb';
import { startTestNetwork, type BackgroundMiner, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { contextOf, tagOf } from '../src/chain/pins';
import type { StepView } from '../src/api/views';

const PARTIES = ['alpha', 'beta', 'gamma', 'delta'];
const ROLES = { buyer: 'alpha', seller: 'beta', bank: 'gamma' };
const PARTICIPANTS = Object.values(ROLES);
let net: TestNetwork;
let mongo: MongoClient;
let miner: BackgroundMiner | undefined;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(PARTIES, 2, { env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'failure-modes') } });
  mongo = await MongoClient.connect(net.stack.network.mongodb.uri);
  miner = net.mineInBackground(200);
}, 180_000);

afterAll(async () => {
  await miner?.stop();
  await mongo?.close();
  await net?.stop();
});

const history = (party: string, id: string): Promise<StepView[]> => net.history(party, id);

async function takeAndConfirm(party: string, id: string, step: string, input: unknown): Promise<string> {
  const res = await net.api(party).post(`/instances/${id}/steps`, { step, input });
  expect({ status: res.status, body: res.body }).toMatchObject({ status: 202 });
  const hash = res.body.envelopeHash as string;
  for (const p of PARTICIPANTS) {
    await eventually(`${step} final on ${p}`, async () => ((await history(p, id)).find((s) => s.envelopeHash === hash)?.status === 'confirmed' ? true : undefined), 90_000);
  }
  return hash;
}

/** Every document of every collection of a party's database, as lower-case extended JSON. */
async function everything(party: string): Promise<string> {
  const db = mongo.db(net.stack.network.parties[party]!.database);
  const parts: string[] = [];
  for (const { name } of await db.listCollections().toArray()) {
    for (const doc of await db.collection(name).find({}).toArray()) parts.push(`${name}: ${BSON.EJSON.stringify(doc, { relaxed: true })}`);
  }
  return parts.join('\n').toLowerCase();
}

/** Which parties' databases hold `value` (hex compared without its 0x, case-insensitively). */
function holders(dumps: Record<string, string>, value: string): string[] {
  const needle = value.toLowerCase().replace(/^0x/, '');
  return PARTIES.filter((p) => dumps[p]!.includes(needle));
}

test('data is held only where its visibility allows; a non-participant holds nothing of the instance', async () => {
  const mark = randomBytes(6).toString('hex');
  const secretPrice = 700_000 + Number.parseInt(mark.slice(0, 5), 16) + 0.125;
  const started = await net.api('alpha').post('/instances', { definition: 'disclosure', roles: ROLES });
  expect(started.status).toBe(201);
  const id = started.body.instance.id as string;
  for (const p of ['beta', 'gamma']) await eventually(`${id} on ${p}`, async () => ((await net.api(p).get(`/instances/${id}`)).status === 200 ? true : undefined), 60_000);

  // A memo long enough for the quote's data to be stored apart from its step (store.ts, DATA_INLINE_MAX_CHARS); the other steps' data is kept in the step.
  const quote = await takeAndConfirm('beta', id, 'quote', { price: secretPrice, memo: `quote-memo-${mark} ${'with the terms of delivery, '.repeat(60)}` });
  const finance = await takeAndConfirm('alpha', id, 'finance', { account: `finance-account-${mark}` });
  const settle = await takeAndConfirm('gamma', id, 'settle', { reference: `settle-ref-${mark}` });

  // What the run produced, from the parties entitled to it.
  const db = (p: string) => mongo.db(net.stack.network.parties[p]!.database);
  const stepDoc = async (p: string, hash: string) => (await db(p).collection('steps').findOne({ _id: hash as never }))!;
  const dataOf = async (p: string, hash: string) => {
    const step = await stepDoc(p, hash);
    return (step.dataApart ? (await db(p).collection('step_data').findOne({ _id: hash as never }))!.data : step.data) as { salt: string };
  };
  expect((await stepDoc('beta', quote)).dataApart).toBe(true);
  expect((await stepDoc('alpha', finance)).dataApart).toBeUndefined();
  const quoteSalt = (await dataOf('beta', quote)).salt;
  const financeSalt = (await dataOf('alpha', finance)).salt;
  const settleSalt = (await dataOf('gamma', settle)).salt;
  const evidence = (await net.api('alpha').get(`/instances/${id}/evidence`)).body as { secret?: string; instance?: { secret?: string } };
  const secret = (evidence.secret ?? evidence.instance?.secret)!;
  expect(secret).toMatch(/^0x[0-9a-f]{64}$/);
  const steps = await history('alpha', id);
  expect(steps.map((s) => s.status)).toEqual(['confirmed', 'confirmed', 'confirmed']);
  const tags = steps.map((s) => tagOf(contextOf(secret, s.author, s.nonce)));

  const dumps = Object.fromEntries(await Promise.all(PARTIES.map(async (p) => [p, await everything(p)] as const)));

  // The quote: seller and buyer only; the bank holds the step without its data.
  for (const v of [`quote-memo-${mark}`, String(secretPrice), quoteSalt]) expect(holders(dumps, v)).toEqual(['alpha', 'beta']);
  // The finance request: buyer and bank only.
  for (const v of [`finance-account-${mark}`, financeSalt]) expect(holders(dumps, v)).toEqual(['alpha', 'gamma']);
  // The settlement: every participant, and not the outsider.
  for (const v of [`settle-ref-${mark}`, settleSalt]) expect(holders(dumps, v)).toEqual(['alpha', 'beta', 'gamma']);
  // Every participant holds every step (envelope hash and signature), readable or not.
  for (const s of steps) {
    expect(holders(dumps, s.envelopeHash)).toEqual(PARTICIPANTS);
    expect(holders(dumps, s.signature)).toEqual(PARTICIPANTS);
  }
  const gammaQuote = (await history('gamma', id)).find((s) => s.envelopeHash === quote)!;
  expect(gammaQuote).toEqual(expect.objectContaining({ status: 'confirmed', visible: false, input: null }));
  const betaFinance = (await history('beta', id)).find((s) => s.envelopeHash === finance)!;
  expect(betaFinance).toEqual(expect.objectContaining({ status: 'confirmed', visible: false, input: null }));

  // The outsider: nothing of the instance anywhere in its database.
  for (const v of [id, secret, ...tags]) expect(holders(dumps, v)).toEqual(PARTICIPANTS);
  expect(dumps.delta).not.toContain(mark);
  const outsider = db('delta');
  expect(await outsider.collection('instances').countDocuments({})).toBe(0);
  expect(await outsider.collection('steps').countDocuments({})).toBe(0);
  expect(await outsider.collection('slots').countDocuments({})).toBe(0);
  expect(await outsider.collection('tags').countDocuments({})).toBe(0);
  expect((await net.api('delta').get(`/instances/${id}`)).status).toBe(404);
  expect((await net.api('delta').get(`/events?instance=${id}`)).body.events).toEqual([]);
}, 300_000);
