/**
 * Concurrent writes to one document on the real document store (FerretDB here, or mongod where
 * installed): every change survives. On FerretDB this holds only because the store sends its
 * writes to any one document one at a time (src/store/serial-writes.ts).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Collection, MongoClient, ObjectId, type Db } from 'mongodb';
import { startMongo, type RunningMongo } from '../src/stack/mongo-server';
import { freePort } from '../src/stack/ports';
import { ALL, isFerretDb, withBoundedCommands, withSerialWrites, withSignal, WriteLine, writeKeys } from '../src/store/serial-writes';
import { DATA_INLINE_MAX_CHARS, slotId, Store, TAG_WINDOW } from '../src/store/store';
import { EventLog, eventId } from '../src/events/log';
import type { SignedEnvelope } from '../src/model/envelope';
import type { Invitation } from '../src/model/instance';
import * as pins from '../src/chain/pins';
import { contextOf, stepLeaf, tagOf } from '../src/chain/pins';
import { merkleRoot } from '../src/chain/merkle';
import { BEAT_TIMEOUT_MS, HEARTBEAT_MS, NodeLiveness, STALE_AFTER_MS } from '../src/node/liveness';
import { Leadership } from '../src/node/leadership';
import { eventually } from './support/eventually';
import pino from 'pino';

let mongo: RunningMongo;
let client: MongoClient;
let raw: Db;

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-store-test-'));
  mongo = await startMongo({ dir, logDir: dir, port: await freePort() });
  client = new MongoClient(mongo.uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  raw = client.db('store_writes');
}, 90_000);

afterAll(async () => {
  await client?.close();
  await mongo?.process.stop();
});

/**
 * What `run` returns, and how many calls of the driver's `methods` it made, by collection. The
 * driver's findOne is a find: counting finds counts both.
 */
async function calls<T>(run: () => Promise<T>, methods: readonly ('find' | 'updateOne' | 'insertOne')[]): Promise<{ value: T; count: Record<string, number> }> {
  const spies = methods.map((method) => jest.spyOn(Collection.prototype, method));
  try {
    const value = await run();
    const count: Record<string, number> = {};
    for (const spy of spies) for (const context of spy.mock.contexts) count[(context as Collection).collectionName] = (count[(context as Collection).collectionName] ?? 0) + 1;
    return { value, count };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

test('the server is recognised for what it is', async () => {
  expect(await isFerretDb(raw)).toBe(mongo.kind === 'ferretdb');
});

test('a lookup by _id is an index search, not a scan of the collection', async () => {
  const docs = raw.collection<{ _id: string; n: number }>('by_id');
  await docs.insertMany(Array.from({ length: 50 }, (_, n) => ({ _id: `doc-${n}`, n })));
  const explained = (await raw.command({ explain: { find: 'by_id', filter: { _id: 'doc-7' } } })) as { queryPlanner: unknown };
  const plan = JSON.stringify(explained.queryPlanner);
  // FerretDB reports SQLite's plan; as released, 1.24.2 said `SCAN` here (scripts/provision.js, FERRETDB_PATCHES).
  if (mongo.kind === 'ferretdb') expect(plan).toMatch(/SEARCH \S+ USING INDEX \S+__id_/);
  else expect(plan).toMatch(/IDHACK|EXPRESS|IXSCAN/);
  expect((await docs.findOne({ _id: 'doc-7' }))?.n).toBe(7);
});

test('concurrent $set of different fields on one document: every field is kept', async () => {
  const db = withSerialWrites(raw);
  const docs = db.collection<{ _id: string } & Record<string, unknown>>('slots');
  const ids = Array.from({ length: 20 }, (_, i) => `slot-${i}`);
  await docs.insertMany(ids.map((_id) => ({ _id })));
  const fields = ['position', 'envelopeHash', 'receipt', 'proven', 'signaled'];
  await Promise.all(ids.flatMap((_id) => fields.map((f) => docs.updateOne({ _id }, { $set: { [f]: `${_id}:${f}` } }))));
  for (const doc of await raw.collection('slots').find({}).toArray()) {
    for (const f of fields) expect(doc[f]).toBe(`${String(doc._id)}:${f}`);
  }
});

test('concurrent bulkWrites of different fields on the same documents: every field is kept', async () => {
  const db = withSerialWrites(raw);
  const docs = db.collection<{ _id: string } & Record<string, unknown>>('bulk');
  const ids = Array.from({ length: 10 }, (_, i) => `doc-${i}`);
  await docs.insertMany(ids.map((_id) => ({ _id })));
  const fields = ['confirmed', 'signaled', 'position', 'receipt'];
  await Promise.all(
    fields.map((f) => docs.bulkWrite(ids.map((_id) => ({ updateOne: { filter: { _id }, update: { $set: { [f]: `${_id}:${f}` } } } })), { ordered: false })),
  );
  for (const doc of await raw.collection('bulk').find({}).toArray()) {
    for (const f of fields) expect(doc[f]).toBe(`${String(doc._id)}:${f}`);
  }
});

describe('a step number takes one envelope', () => {
  let store: Store;
  const secret = `0x${'11'.repeat(32)}`;
  const invitation: Invitation = {
    header: { id: 'inst-claim', definitionId: 'd', definitionHash: `0x${'22'.repeat(32)}`, roles: { a: 'alpha', b: 'beta' }, createdBy: 'alpha', createdAt: '2026-01-01T00:00:00Z' },
    secret,
    signature: '0xsig',
  };
  const envelope = (hash: string, nonce: number): SignedEnvelope => ({
    envelope: { v: 1, instanceId: 'inst-claim', definitionHash: invitation.header.definitionHash, step: 's', author: 'alpha', nonce, proposedAt: '2026-01-01T00:00:01Z', inputHash: hash },
    hash,
    signature: '0xsig',
  });

  beforeAll(async () => {
    store = await Store.connect(mongo.uri, 'store_claims');
  });
  afterAll(async () => {
    await store?.close();
  });

  test('a fresh slot is created and claimed; the same envelope again changes nothing; another is refused', async () => {
    const instance = await store.saveInstance(invitation);
    await store.savePendingStep(instance, envelope('0xaaa', 1), false);
    await store.savePendingStep(instance, envelope('0xaaa', 1), false);
    await expect(store.savePendingStep(instance, envelope('0xbbb', 1), false)).rejects.toThrow(/alpha already sent a different envelope \(0xaaa\)/);
    const slot = await store.slots.findOne({ _id: slotId('inst-claim', 'alpha', 1) });
    expect(slot).toMatchObject({ envelopeHash: '0xaaa', author: 'alpha', nonce: 1, tag: tagOf(contextOf(secret, 'alpha', 1)), proven: false, signaled: 'none' });
    expect(await store.step('0xbbb')).toBeNull();
  });

  test('two different envelopes for one fresh step number at once: exactly one is taken', async () => {
    const instance = (await store.instance('inst-claim'))!;
    const outcomes = await Promise.allSettled(['0xccc', '0xddd', '0xccc'].map((hash) => store.savePendingStep(instance, envelope(hash, 3), false)));
    const slot = await store.slots.findOne({ _id: slotId('inst-claim', 'alpha', 3) });
    const winner = slot!.envelopeHash!;
    expect(['0xccc', '0xddd']).toContain(winner);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(winner === '0xccc' ? 2 : 1);
    expect(await store.step(winner === '0xccc' ? '0xddd' : '0xccc')).toBeNull();
  });

  test('a slot the listener proved between the claim of its envelope and the storing of the step: the step still shows its position', async () => {
    const instance = (await store.instance('inst-claim'))!;
    const hash = `0x${'ee'.repeat(32)}`;
    const leaf = stepLeaf(secret, 'alpha', 4, hash);
    const receipt = { root: merkleRoot([leaf]), index: 0, count: 1, proof: [] };
    // As the data exchange leaves it between its two writes: the slot claimed, the step not yet stored.
    await store.slots.insertOne({ _id: slotId('inst-claim', 'alpha', 4), instanceId: 'inst-claim', author: 'alpha', nonce: 4, tag: tagOf(contextOf(secret, 'alpha', 4)), envelopeHash: hash, receipt, signaled: 'none', proven: false });
    const tag = tagOf(contextOf(secret, 'alpha', 4));
    const position = { tag, author: '0xA', root: receipt.root, index: 0, count: 1, blockNumber: 9, blockHash: '0xb9', timestamp: 1, transactionHash: '0xt9', logIndex: 0 };
    expect(await store.observeTags([position], () => '0xA')).toHaveLength(1);
    expect(await store.slots.findOne({ _id: slotId('inst-claim', 'alpha', 4) })).toMatchObject({ proven: true });
    await store.savePendingStep(instance, { ...envelope(hash, 4), receipt }, false);
    expect((await store.step(hash))?.chain).toMatchObject({ blockNumber: 9, blockHash: '0xb9', logIndex: 0, index: 0 });
  });

  test('a listener pass cut short after writing a position is finished when the same sequencing is read again, without taking back finality', async () => {
    const tag = tagOf(contextOf(secret, 'alpha', 5));
    const position = { tag, author: '0xA', root: '0xr5', index: 0, count: 1, blockNumber: 11, blockHash: '0xb11', timestamp: 1, transactionHash: '0xt11', logIndex: 0 };
    const id = slotId('inst-claim', 'alpha', 5);
    expect(await store.observeTags([position], () => '0xA')).toHaveLength(1);
    // As a pass leaves it when its working-set write fails (a dropped connection): the position
    // written, the slot missing from the working set, so never final, never signalled.
    await store.unsettled.deleteOne({ _id: id });
    expect(await store.observeTags([position], () => '0xA')).toHaveLength(0); // not a first sequencing
    await store.saveCheckpoint(11, 11, '0xb11');
    expect((await store.slotsToSignal()).map((slot) => slot._id)).toContain(id);
    // Read once more (another failed pass): still final.
    await store.observeTags([position], () => '0xA');
    expect(await store.unsettled.findOne({ _id: id })).toMatchObject({ blockNumber: 11 });
    expect((await store.slotsToSignal()).map((slot) => slot._id)).toContain(id);
    // A later sequencing of the same tag still does not count.
    await store.observeTags([{ ...position, blockNumber: 12, blockHash: '0xb12' }], () => '0xA');
    expect(await store.slots.findOne({ _id: id })).toMatchObject({ position: { blockNumber: 11 } });
  });

  test('sequencings become final together, when a pass records its final block, and are signalled in chain order', async () => {
    const at = (nonce: number, blockNumber: number) => ({
      tag: tagOf(contextOf(secret, 'alpha', nonce)), author: '0xA', root: `0xr${nonce}`, index: 0, count: 1, blockNumber, blockHash: `0xb${blockNumber}`, timestamp: 1, transactionHash: `0xt${blockNumber}`, logIndex: 0,
    });
    const [earlier, later] = [at(6, 29), at(7, 50)];
    const ids = [slotId('inst-claim', 'alpha', 6), slotId('inst-claim', 'alpha', 7)];
    await store.saveCheckpoint(60, 20, '0xb20');
    expect(await store.observeTags([later, earlier], () => '0xA')).toHaveLength(2);
    const signalled = async () => (await store.slotsToSignal()).map((slot) => slot._id).filter((id) => ids.includes(id));
    expect(await signalled()).toEqual([]);
    expect((await store.unconfirmedBlocks()).map((b) => b.blockNumber)).toEqual(expect.arrayContaining([29, 50]));
    // An entry an earlier version marked final before recording its block (a pass cut short there) is not final yet.
    await store.unsettled.updateOne({ _id: ids[1]! }, { $set: { confirmed: true } });
    expect(await signalled()).toEqual([]);
    // The pass records block 65 final: both are, at once.
    await store.saveCheckpoint(66, 65, '0xb65');
    expect(await signalled()).toEqual(ids);
    expect((await store.unconfirmedBlocks()).map((b) => b.blockNumber)).not.toEqual(expect.arrayContaining([29]));
    expect((await store.waitingForData()).filter((w) => ids.includes(w._id)).map((w) => w.final)).toEqual([true, true]);
  });

  test("the name of a step this process stored lately is known from memory; another process's memory knows nothing of it", async () => {
    const instance = (await store.instance('inst-claim'))!;
    const hash = `0x${'99'.repeat(32)}`;
    await store.savePendingStep(instance, envelope(hash, 9), false);
    expect(store.stepStoredLately(hash)).toBe('s');
    expect(store.stepStoredLately(`0x${'98'.repeat(32)}`)).toBeUndefined();
    const other = await Store.connect(mongo.uri, 'store_claims');
    try {
      expect(other.stepStoredLately(hash)).toBeUndefined();
      // A repeat delivery there finds the step's event recorded before: the step is known to be stored, but its event is not held.
      await other.savePendingStep(instance, envelope(hash, 9), false);
      expect(other.storedLately(hash)).toBe(true);
      expect(other.stepStoredLately(hash)).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  test('while leading, a slot written before the term is found when its insert fails: another envelope is refused, a slot with only its position is claimed and proven', async () => {
    const instance = (await store.instance('inst-claim'))!;
    store.lead();
    try {
      // Step 1 holds 0xaaa since the first test, before this term: the term does not know it.
      await expect(store.savePendingStep(instance, envelope('0xfff', 1), false)).rejects.toThrow(/alpha already sent a different envelope \(0xaaa\)/);
      expect(await store.step('0xfff')).toBeNull();
      expect(await store.slots.findOne({ _id: slotId('inst-claim', 'alpha', 1) })).toMatchObject({ envelopeHash: '0xaaa' });
      await store.savePendingStep(instance, envelope('0xaaa', 1), false);
      // Step 8's tag was seen by an earlier term's listener: the slot holds its position only.
      const hash = `0x${'88'.repeat(32)}`;
      const receipt = { root: merkleRoot([stepLeaf(secret, 'alpha', 8, hash)]), index: 0, count: 1, proof: [] };
      const tag = tagOf(contextOf(secret, 'alpha', 8));
      const position = { tag, author: '0xA', root: receipt.root, index: 0, count: 1, blockNumber: 13, blockHash: '0xb13', timestamp: 1, transactionHash: '0xt13', logIndex: 0 };
      await store.slots.insertOne({ _id: slotId('inst-claim', 'alpha', 8), instanceId: 'inst-claim', author: 'alpha', nonce: 8, tag, position, signaled: 'none', proven: false });
      await store.savePendingStep(instance, { ...envelope(hash, 8), receipt }, false);
      expect(await store.slots.findOne({ _id: slotId('inst-claim', 'alpha', 8) })).toMatchObject({ envelopeHash: hash, receipt, position: { blockNumber: 13 }, proven: true });
      await expect(store.savePendingStep(instance, envelope('0x999', 8), false)).rejects.toThrow(/alpha already sent a different envelope/);
    } finally {
      store.follow();
    }
  });

  test('a slot the listener created first (tag seen before the data) is claimed and keeps its position', async () => {
    const instance = (await store.instance('inst-claim'))!;
    const tag = tagOf(contextOf(secret, 'alpha', 2));
    const position = { tag, author: '0xA', root: '0xr', index: 0, count: 1, blockNumber: 7, blockHash: '0xb', timestamp: 1, transactionHash: '0xt', logIndex: 0 };
    const ours = await store.observeTags([position], () => '0xA');
    expect(ours).toHaveLength(1);
    await store.savePendingStep(instance, envelope('0xccc', 2), false);
    expect(await store.slots.findOne({ _id: slotId('inst-claim', 'alpha', 2) })).toMatchObject({ envelopeHash: '0xccc', position, proven: false });
    // The window of expected tags moved on past the observed one.
    expect(await store.tags.findOne({ _id: tagOf(contextOf(secret, 'alpha', 17)) })).not.toBeNull();
  });
});

describe("the leading process's memory of the chain records it writes", () => {
  let store: Store;
  /** Each instance its own byte, for its secret and its steps' hashes: tags of one secret, author and step number are the same in every instance. */
  const byteOf = (instanceId: string) => ({ 'inst-term': '44', 'inst-order': '66', 'inst-shown': '77' })[instanceId]!;
  const secretOf = (instanceId: string) => `0x${byteOf(instanceId).repeat(32)}`;
  const invitation = (id: string): Invitation => ({
    header: { id, definitionId: 'd', definitionHash: `0x${'22'.repeat(32)}`, roles: { a: 'alpha', b: 'beta' }, createdBy: 'alpha', createdAt: '2026-01-01T00:00:00Z' },
    secret: secretOf(id),
    signature: '0xsig',
  });
  /** A step of alpha's with its receipt, as the batcher gives it, and where the chain sequenced it. */
  const pinned = (instanceId: string, nonce: number, blockNumber: number) => {
    const secret = secretOf(instanceId);
    const hash = `0x${byteOf(instanceId)}${nonce.toString(16).padStart(2, '0').repeat(31)}`;
    const leaf = stepLeaf(secret, 'alpha', nonce, hash);
    const receipt = { root: merkleRoot([leaf]), index: 0, count: 1, proof: [] };
    const signed: SignedEnvelope = {
      envelope: { v: 1, instanceId, definitionHash: `0x${'22'.repeat(32)}`, step: 's', author: 'alpha', nonce, proposedAt: '2026-01-01T00:00:01Z', inputHash: hash },
      hash,
      signature: '0xsig',
      receipt,
    };
    const sighting = { tag: tagOf(contextOf(secret, 'alpha', nonce)), author: '0xA', root: receipt.root, index: 0, count: 1, blockNumber, blockHash: `0xb${blockNumber}`, timestamp: 1, transactionHash: `0xt${blockNumber}`, logIndex: 0 };
    return { id: slotId(instanceId, 'alpha', nonce), hash, signed, sighting };
  };

  /** What `run` returns, and how many reads it sent to each collection. */
  const reads = <T>(run: () => Promise<T>) => calls(run, ['find']);

  /** A step's way to final and signalled, as the leader's data exchange, listener and signaller take it. */
  async function journey(instanceId: string, nonce: number, blockNumber: number): Promise<string[]> {
    const step = pinned(instanceId, nonce, blockNumber);
    const instance = (await store.instance(instanceId))!;
    await store.savePendingStep(instance, step.signed, false);
    expect(await store.observeTags([step.sighting], () => '0xA')).toHaveLength(1);
    await store.saveCheckpoint(blockNumber, blockNumber, `0xb${blockNumber}`);
    const told = (await store.slotsToSignal()).map((slot) => slot._id);
    await store.markSignaled(told.map((id) => ({ id, level: 'full' as const })));
    return told;
  }

  beforeAll(async () => {
    store = await Store.connect(mongo.uri, 'store_term');
    await store.saveInstance(invitation('inst-term'));
  });
  afterAll(async () => {
    await store?.close();
  });
  afterEach(() => store.follow());

  test('while leading, a step goes from claimed to signalled without reading its slot, the working set or the checkpoint back from the database', async () => {
    // Following: every record read from the database (the working set on each pass).
    const following = await reads(() => journey('inst-term', 1, 10));
    expect(following.value).toEqual([pinned('inst-term', 1, 10).id]);
    expect(following.count.slots).toBeGreaterThanOrEqual(4);
    expect(following.count.unsettled).toBeGreaterThanOrEqual(1);
    expect(following.count.checkpoints).toBeGreaterThanOrEqual(1);

    store.lead();
    await store.unconfirmedBlocks(); // the working set, read once per term
    await store.checkpoint();
    const leading = await reads(() => journey('inst-term', 2, 11));
    expect(leading.value).toEqual([pinned('inst-term', 2, 11).id]);
    // On FerretDB the claim of a slot the term does not know tries the insert without a look
    // first; MongoDB's conditional upsert reads the slot first, to tell whether the claim proves it.
    expect(leading.count.slots ?? 0).toBe(mongo.kind === 'ferretdb' ? 0 : 1);
    expect(leading.count).not.toHaveProperty('unsettled');
    expect(leading.count).not.toHaveProperty('checkpoints');
    // The database holds what memory said: proven, told in full, settled.
    expect(await store.slots.findOne({ _id: pinned('inst-term', 2, 11).id })).toMatchObject({ proven: true, signaled: 'full', position: { blockNumber: 11 } });
    expect(await store.unsettled.findOne({ _id: pinned('inst-term', 2, 11).id })).toBeNull();
    expect(await store.checkpoints.findOne({ _id: 'chain' })).toMatchObject({ scannedBlock: 11, confirmedBlock: 11, confirmedBlockHash: '0xb11' });
    expect((await store.step(pinned('inst-term', 2, 11).hash))?.chain).toMatchObject({ blockNumber: 11 });
  });

  test('a slot is proven by the last of its envelope, receipt and sequencing to arrive, in whichever order, without a write of its own', async () => {
    // The author's receipt comes once its own envelope is stored; the sequencing at any time.
    const orders = [
      ['envelope', 'receipt', 'sequencing'],
      ['envelope', 'sequencing', 'receipt'],
      ['sequencing', 'envelope', 'receipt'],
    ] as const;
    // Six steps, all within alpha's window of expected tags.
    const instance = await store.saveInstance(invitation('inst-order'));
    let nonce = 0;
    for (const leading of [false, true]) {
      if (leading) store.lead();
      for (const order of orders) {
        nonce++;
        const step = pinned('inst-order', nonce, 100 + nonce);
        const { count } = await calls(async () => {
          for (const part of order) {
            if (part === 'envelope') await store.savePendingStep(instance, { ...step.signed, receipt: undefined }, false);
            if (part === 'receipt') await store.saveReceipt(instance, { envelopeHash: step.hash, instanceId: 'inst-order', author: 'alpha', nonce }, step.signed.receipt!);
            if (part === 'sequencing') expect(await store.observeTags([step.sighting], () => '0xA')).toHaveLength(1);
          }
        }, ['updateOne', 'insertOne']);
        expect({ order, leading, slotWrites: count.slots }).toEqual({ order, leading, slotWrites: 3 });
        expect({ order, slot: await store.slots.findOne({ _id: step.id }) }).toMatchObject({ order, slot: { proven: true } });
        expect({ order, chain: (await store.step(step.hash))?.chain }).toMatchObject({ order, chain: { blockNumber: 100 + nonce } });
      }
    }
  });

  test("a pending step shows where it sits on chain from its slot, without a write to the step; a reorganisation takes it back", async () => {
    const instance = await store.saveInstance(invitation('inst-shown'));
    const step = pinned('inst-shown', 1, 200);
    await store.savePendingStep(instance, step.signed, false);
    expect((await store.step(step.hash))?.chain).toBeUndefined();
    const sequenced = await calls(() => store.observeTags([step.sighting], () => '0xA'), ['updateOne']);
    expect(sequenced.value).toHaveLength(1);
    expect(sequenced.count.steps ?? 0).toBe(0);
    expect((await store.step(step.hash))?.chain).toMatchObject({ blockNumber: 200, blockHash: '0xb200' });
    expect((await store.history('inst-shown')).map((s) => s.chain?.blockNumber)).toEqual([200]);
    // The block leaves the chain: pending, and nowhere on it, again.
    expect(await store.forgetBlocks([200])).toBe(1);
    expect((await store.step(step.hash))?.chain).toBeUndefined();
    expect((await store.history('inst-shown'))[0]?.chain).toBeUndefined();
  });

  test('a write that fails may have applied: the slot is read from the database again', async () => {
    store.lead();
    const step = pinned('inst-term', 3, 12);
    await store.savePendingStep((await store.instance('inst-term'))!, { ...step.signed, receipt: undefined }, false);
    // The receipt's write to the slot applies, but its answer is lost (a dropped connection).
    // eslint-disable-next-line @typescript-eslint/unbound-method -- applied to each collection below
    const real = Collection.prototype.updateOne;
    const update = jest.spyOn(Collection.prototype, 'updateOne').mockImplementation(async function (this: Collection, ...args: Parameters<typeof real>) {
      const result = await real.apply(this, args);
      if (this.collectionName !== 'slots') return result;
      update.mockRestore();
      throw new Error('connection closed');
    });
    await expect(store.saveReceipt((await store.instance('inst-term'))!, { envelopeHash: step.hash, instanceId: 'inst-term', author: 'alpha', nonce: 3 }, step.signed.receipt!)).rejects.toThrow(/connection closed/);
    const { value: slot, count } = await reads(() => store.slot(step.id));
    expect(slot?.receipt).toEqual(step.signed.receipt);
    expect(count.slots).toBe(1);
  });

  test('another term starts from the database: what another leader wrote meanwhile is seen', async () => {
    store.lead();
    const step = pinned('inst-term', 4, 13);
    await store.savePendingStep((await store.instance('inst-term'))!, step.signed, false);
    expect(await store.checkpoint()).toMatchObject({ confirmedBlock: 11 });
    store.follow();
    // Another process leads a while: it records the step sequenced and moves the checkpoint.
    await store.slots.updateOne({ _id: step.id }, { $set: { position: step.sighting } });
    await store.checkpoints.updateOne({ _id: 'chain' }, { $set: { scannedBlock: 13, confirmedBlock: 13 } });
    expect((await store.slot(step.id))?.position).toMatchObject({ blockNumber: 13 });
    store.lead();
    expect((await store.slot(step.id))?.position).toMatchObject({ blockNumber: 13 });
    expect(await store.checkpoint()).toMatchObject({ confirmedBlock: 13 });
  });

  test('a working set read while one of its entries was written is not kept: the next pass reads it again', async () => {
    store.lead();
    const step = pinned('inst-term', 5, 14);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let read!: () => void;
    const readDone = new Promise<void>((resolve) => (read = resolve));
    // eslint-disable-next-line @typescript-eslint/unbound-method -- applied to each collection below
    const realFind = Collection.prototype.find;
    const find = jest.spyOn(Collection.prototype, 'find').mockImplementation(function (this: Collection, ...args: Parameters<typeof realFind>) {
      const cursor = realFind.apply(this, args);
      if (this.collectionName !== 'unsettled') return cursor;
      find.mockRestore();
      return {
        toArray: async () => {
          const docs = await cursor.toArray();
          read();
          await gate;
          return docs;
        },
      } as unknown as typeof cursor;
    });
    const first = store.unconfirmedBlocks();
    await readDone;
    // The listener records a sequencing after the read, before its answer is taken in.
    expect(await store.observeTags([step.sighting], () => '0xA')).toHaveLength(1);
    release();
    expect((await first).map((b) => b.blockNumber)).not.toContain(14);
    expect((await store.unconfirmedBlocks()).map((b) => b.blockNumber)).toContain(14);
  });
});

test("sliding an author's window of expected tags computes the one tag it adds", async () => {
  const store = await Store.connect(mongo.uri, 'store_window');
  try {
    const secret = `0x${'55'.repeat(32)}`;
    const instance = await store.saveInstance({
      header: { id: 'inst-window', definitionId: 'd', definitionHash: `0x${'22'.repeat(32)}`, roles: { a: 'alpha', b: 'beta' }, createdBy: 'alpha', createdAt: '2026-01-01T00:00:00Z' },
      secret,
      signature: '0xsig',
    });
    const sighting = (nonce: number) => ({ tag: tagOf(contextOf(secret, 'alpha', nonce)), author: '0xA', root: '0xr', index: 0, count: 1, blockNumber: 20 + nonce, blockHash: `0xb${nonce}`, timestamp: 1, transactionHash: `0xt${nonce}`, logIndex: 0 });
    const computed = jest.spyOn(pins, 'contextOf');
    try {
      for (const nonce of [1, 2, 3]) {
        const seen = sighting(nonce);
        computed.mockClear();
        expect(await store.observeTags([seen], () => '0xA')).toHaveLength(1);
        expect(computed.mock.calls.map(([, author, n]) => `${author}/${n}`)).toEqual([`alpha/${nonce + TAG_WINDOW}`]);
      }
    } finally {
      computed.mockRestore();
    }
    expect(await store.tags.findOne({ _id: tagOf(contextOf(secret, 'alpha', 3 + TAG_WINDOW)) })).toMatchObject({ instanceId: instance._id, author: 'alpha', nonce: 3 + TAG_WINDOW });
    // A restarted node knows none of them: its first slide inserts the whole window, most of it
    // there already, without looking any up.
    const restarted = await Store.connect(mongo.uri, 'store_window');
    try {
      const slid = await calls(() => restarted.observeTags([sighting(4)], () => '0xA'), ['find']);
      expect(slid.value).toHaveLength(1);
      expect(slid.count.tags).toBe(1); // the sighting's own tag
    } finally {
      await restarted.close();
    }
    expect(await store.tags.findOne({ _id: tagOf(contextOf(secret, 'alpha', 4 + TAG_WINDOW)) })).toMatchObject({ nonce: 4 + TAG_WINDOW });
  } finally {
    await store.close();
  }
});

describe("an instance's history", () => {
  let store: Store;
  const header = (id: string): Invitation['header'] => ({ id, definitionId: 'd', definitionHash: `0x${'22'.repeat(32)}`, roles: { a: 'alpha', b: 'beta' }, createdBy: 'alpha', createdAt: '2026-01-01T00:00:00Z' });
  const invitation = (id: string): Invitation => ({ header: header(id), secret: `0x${'33'.repeat(32)}`, signature: '0xsig' });
  const envelope = (instanceId: string, hash: string, author: string, nonce: number, proposedAt: string): SignedEnvelope => ({
    envelope: { v: 1, instanceId, definitionHash: header(instanceId).definitionHash, step: `s${nonce}`, author, nonce, proposedAt, inputHash: hash },
    hash,
    signature: '0xsig',
  });
  const position = (blockNumber: number) => ({ blockNumber, blockHash: `0xb${blockNumber}`, timestamp: blockNumber, transactionHash: `0xt${blockNumber}`, logIndex: 0, index: 0 });

  /** What `run` returns, and the filters of the finds it sent to the steps collection other than lookups by `_id` alone. */
  async function stepFinds<T>(run: () => Promise<T>): Promise<{ value: T; filters: unknown[] }> {
    const find = jest.spyOn(Collection.prototype, 'find');
    try {
      const value = await run();
      const filters = find.mock.calls
        .filter((_, i) => (find.mock.contexts[i] as Collection).collectionName === 'steps')
        .map(([filter]) => filter)
        .filter((filter) => Object.keys(filter ?? {}).join() !== '_id');
      return { value, filters };
    } finally {
      find.mockRestore();
    }
  }

  beforeAll(async () => {
    store = await Store.connect(mongo.uri, 'store_history');
  });
  afterAll(async () => {
    await store?.close();
  });

  test('decided steps in sequence, then pending ones as proposed; other instances\' steps never show', async () => {
    const instance = await store.saveInstance(invitation('inst-history'));
    const other = await store.saveInstance(invitation('inst-other'));
    await store.savePendingStep(other, envelope('inst-other', '0xo1', 'alpha', 1, '2026-01-01T00:00:00Z'), false);
    const steps: Array<[string, string, number, string]> = [
      ['0xh1', 'alpha', 1, '2026-01-01T00:00:03Z'],
      ['0xh2', 'beta', 1, '2026-01-01T00:00:01Z'],
      ['0xh3', 'alpha', 2, '2026-01-01T00:00:04Z'],
      ['0xh4', 'beta', 2, '2026-01-01T00:00:02Z'],
    ];
    for (const [hash, author, nonce, at] of steps) await store.savePendingStep(instance, envelope('inst-history', hash, author, nonce, at), false);
    // Chain order, not proposal order: 0xh1 before 0xh2.
    await store.recordDecision({ instanceId: 'inst-history', envelopeHash: '0xh1', status: 'confirmed', seq: 0, position: position(5) });
    await store.recordDecision({ instanceId: 'inst-history', envelopeHash: '0xh2', status: 'rejected', seq: 1, position: position(6), rejection: { code: 'conflict', message: 'lost' } });
    const { value: history, filters } = await stepFinds(() => store.history('inst-history'));
    expect(history.map((s) => [s.envelopeHash, s.status])).toEqual([
      ['0xh1', 'confirmed'],
      ['0xh2', 'rejected'],
      ['0xh4', 'pending'],
      ['0xh3', 'pending'],
    ]);
    // On FerretDB a filter on instanceId reads every step of every instance: the history reads its own by _id.
    expect(filters).toEqual(mongo.kind === 'ferretdb' ? [] : [{ instanceId: 'inst-history' }]);
    expect((await store.confirmedSteps('inst-history')).map((s) => s.envelopeHash)).toEqual(['0xh1']);
  });

  test('on FerretDB, a step listed but not stored (a crash between the two writes) is left out, and an instance stored before the list is read by instanceId', async () => {
    if (mongo.kind !== 'ferretdb') return expect((await store.instance('inst-history'))?.stepIds).toBeUndefined();
    await store.instances.updateOne({ _id: 'inst-history' }, { $addToSet: { stepIds: '0xnever-stored' } });
    expect((await store.history('inst-history')).map((s) => s.envelopeHash)).toEqual(['0xh1', '0xh2', '0xh4', '0xh3']);
    // As an instance stored by an earlier version: no list, so its history is found by its steps' instanceId.
    await store.instances.updateOne({ _id: 'inst-history' }, { $unset: { stepIds: '' } });
    const { value: history, filters } = await stepFinds(() => store.history('inst-history'));
    expect(history.map((s) => s.envelopeHash)).toEqual(['0xh1', '0xh2', '0xh4', '0xh3']);
    expect(filters).toEqual([{ instanceId: 'inst-history' }]);
  });

  test("large step data is stored once, apart from the step, which its decision then updates without it; small data stays in the step; reads with data see both", async () => {
    const instance = await store.saveInstance(invitation('inst-data'));
    const salt = `0x${'44'.repeat(32)}`;
    const large = { salt, input: { lines: Array.from({ length: 200 }, (_, i) => ({ sku: `SKU-${i}`, quantity: i })) }, output: { accepted: true } };
    const small = { salt, input: { amount: 5 } };
    expect(JSON.stringify(large).length).toBeGreaterThan(DATA_INLINE_MAX_CHARS);
    expect(JSON.stringify(small).length).toBeLessThanOrEqual(DATA_INLINE_MAX_CHARS);
    const returned = await store.savePendingStep(instance, { ...envelope('inst-data', '0xd1', 'alpha', 1, '2026-01-01T00:00:01Z'), data: large }, true);
    await store.savePendingStep(instance, { ...envelope('inst-data', '0xd2', 'beta', 1, '2026-01-01T00:00:02Z'), data: small }, true);
    // Not visible to this party: stored without data, anywhere.
    await store.savePendingStep(instance, { ...envelope('inst-data', '0xd3', 'beta', 2, '2026-01-01T00:00:03Z'), data: large }, false);
    expect(returned.data).toEqual(large);

    const stored = async (hash: string) => store.steps.findOne({ _id: hash });
    expect(await stored('0xd1')).toMatchObject({ dataApart: true });
    expect((await stored('0xd1'))?.data).toBeUndefined();
    expect(await store.stepData.findOne({ _id: '0xd1' })).toEqual({ _id: '0xd1', data: large });
    expect((await stored('0xd2'))?.data).toEqual(small);
    expect((await stored('0xd2'))?.dataApart).toBeUndefined();
    expect(await store.stepData.findOne({ _id: '0xd2' })).toBeNull();
    expect((await stored('0xd3'))?.data).toBeUndefined();
    expect(await store.stepData.findOne({ _id: '0xd3' })).toBeNull();

    // A decision is a write to the step alone.
    const { count } = await calls(() => store.recordDecision({ instanceId: 'inst-data', envelopeHash: '0xd1', status: 'confirmed', seq: 0, position: position(7), step: 's1', author: 'alpha' }), ['updateOne', 'insertOne']);
    expect(count.step_data).toBeUndefined();
    expect((await stored('0xd1'))?.status).toBe('confirmed');

    expect((await store.step('0xd1'))?.data).toBeUndefined();
    expect((await store.step('0xd1', { withData: true }))?.data).toEqual(large);
    const history = await store.history('inst-data');
    expect(history.map((s) => [s.envelopeHash, s.data])).toEqual([
      ['0xd1', large],
      ['0xd2', small],
      ['0xd3', undefined],
    ]);
    expect(await store.confirmedSteps('inst-data')).toEqual([{ step: 's1', envelopeHash: '0xd1', author: 'alpha', timestamp: 7, input: large.input, output: large.output }]);
    // A reader of names and order alone (next steps, human tasks) leaves the data where it is.
    const { value: bare, count: bareReads } = await calls(() => store.confirmedSteps('inst-data', undefined, { withData: false }), ['find']);
    expect(bare).toEqual([{ step: 's1', envelopeHash: '0xd1', author: 'alpha', timestamp: 7 }]);
    expect(bareReads.step_data).toBeUndefined();
    expect((await calls(() => store.confirmedSteps('inst-data'), ['find'])).count.step_data).toBe(1);
    // A repeat delivery stores nothing twice.
    await store.savePendingStep(instance, { ...envelope('inst-data', '0xd1', 'alpha', 1, '2026-01-01T00:00:01Z'), data: large }, true);
    expect(await store.stepData.countDocuments({ _id: '0xd1' })).toBe(1);
  });
});

test('the event log numbers concurrent events once each, without gaps, and a restarted node goes on after the last', async () => {
  const db = mongo.kind === 'ferretdb' ? withSerialWrites(raw) : raw;
  const first = new EventLog(db, mongo.kind === 'ferretdb');
  await first.ensureIndexes();
  const emitted = await Promise.all(Array.from({ length: 15 }, (_, i) => first.emit({ type: 'instance.started', key: `numbering:${i}`, data: {} })));
  expect(emitted.map((e) => e!.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  expect(await first.emit({ type: 'instance.started', key: 'numbering:3', data: {} })).toBeNull();
  expect(await first.head()).toBe(15);
  const restarted = new EventLog(db, mongo.kind === 'ferretdb');
  expect(await restarted.head()).toBe(15);
  expect((await restarted.emit({ type: 'instance.started', key: 'numbering:after', data: {} }))?.seq).toBe(16);
  expect(await restarted.emit({ type: 'instance.started', key: 'numbering:3', data: {} })).toBeNull();
  expect((await restarted.readAfter(0, 100)).events.map((e) => e.seq)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
});

test('a new fact is recorded without looking it up first; one recorded before is refused, and its number read past at once', async () => {
  const ferret = mongo.kind === 'ferretdb';
  const db = client.db('event_repeats');
  const log = () => new EventLog(ferret ? withSerialWrites(db) : db, ferret);
  const [first, other] = [log(), log()];
  await first.ensureIndexes();
  const findOne = jest.spyOn(Collection.prototype, 'findOne');
  const insertMany = jest.spyOn(Collection.prototype, 'insertMany');
  const insertOne = jest.spyOn(Collection.prototype, 'insertOne');
  const keyLookups = () => findOne.mock.contexts.filter((context) => (context as Collection).collectionName === 'eventKeys').length + findOne.mock.calls.filter(([filter]) => String((filter as { _id?: unknown })?._id).startsWith('#')).length;
  try {
    expect((await first.emit({ type: 'instance.started', key: 'repeat:a', instanceId: 'i', data: {} }))?.seq).toBe(1);
    expect(keyLookups()).toBe(0);
    // The event and its key document in one command.
    expect(insertMany).toHaveBeenCalledTimes(1);
    expect(insertOne).not.toHaveBeenCalled();
    // Again from the same process: known, so refused without a command.
    expect(await first.emit({ type: 'instance.started', key: 'repeat:a', instanceId: 'i', data: {} })).toBeNull();
    expect(insertMany).toHaveBeenCalledTimes(1);
    expect(insertOne).not.toHaveBeenCalled();
    // From a process that does not know it (a replica, a restarted node): refused by the key's unique index.
    expect(await other.emit({ type: 'instance.started', key: 'repeat:a', instanceId: 'i', data: {} })).toBeNull();
    expect(await other.has('repeat:a')).toBe(true);
    expect(await other.has('repeat:never')).toBe(false);
  } finally {
    findOne.mockRestore();
    insertMany.mockRestore();
    insertOne.mockRestore();
  }
  const next = await first.emit({ type: 'step.proposed', key: 'repeat:b', instanceId: 'i', data: {} });
  // The refused repeat took number 2 on the way: a reader goes past it at once, without waiting for it to fill.
  expect(next?.seq).toBe(3);
  const read = await log().readAfter(0, 100);
  expect(read).toEqual({ events: [expect.objectContaining({ seq: 1, type: 'instance.started' }), expect.objectContaining({ seq: 3, type: 'step.proposed' })], readTo: 3 });
  expect(await log().get(2)).toBeNull();
});

test('events this process recorded lately are read back from memory, the same as another process reads them from the database', async () => {
  const ferret = mongo.kind === 'ferretdb';
  const db = client.db('recent_events');
  const writer = new EventLog(ferret ? withSerialWrites(db) : db, ferret);
  for (let i = 0; i < 5; i++) await writer.emit({ type: 'step.confirmed', key: `recent:${i}`, instanceId: `i${i % 2}`, data: { i } });
  const findOne = jest.spyOn(Collection.prototype, 'findOne');
  // Lookups of the five recorded events (not the probes for numbers other processes may have taken past them).
  const recorded = new Set([1, 2, 3, 4, 5].map(eventId));
  const eventLookups = () =>
    findOne.mock.calls.filter((args, i) => (findOne.mock.contexts[i] as Collection).collectionName === 'events' && recorded.has(String((args[0] as { _id?: unknown })?._id))).length;
  try {
    const own = await writer.readAfter(0, 100, { instanceId: 'i1' });
    expect(eventLookups()).toBe(0);
    const other = await new EventLog(db, ferret).readAfter(0, 100, { instanceId: 'i1' });
    expect(eventLookups()).toBeGreaterThan(0);
    expect(own).toEqual(other);
    expect(own.events.map((e) => e.data)).toEqual([{ i: 1 }, { i: 3 }]);
    expect(await writer.get(5)).toEqual((await new EventLog(db, ferret).readAfter(4, 1)).events[0]);
  } finally {
    findOne.mockRestore();
  }
});

test('a reader stops before a number this process is still writing, without looking it up, and a reader starting now starts before it', async () => {
  const ferret = mongo.kind === 'ferretdb';
  const db = client.db('events_in_flight');
  const log = new EventLog(ferret ? withSerialWrites(db) : db, ferret);
  await log.ensureIndexes();
  expect((await log.emit({ type: 'step.confirmed', key: 'flight:a', data: {} }))?.seq).toBe(1);
  // The write of flight:b held back, as a busy database holds it.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  // eslint-disable-next-line @typescript-eslint/unbound-method -- applied to each collection below
  const real = Collection.prototype.insertMany;
  const insertMany = jest.spyOn(Collection.prototype, 'insertMany').mockImplementation(async function (this: Collection, ...args: Parameters<typeof real>) {
    if ((args[0] as { key?: string }[]).some((d) => d.key === 'flight:b')) await held;
    return real.apply(this, args);
  });
  const findOne = jest.spyOn(Collection.prototype, 'findOne');
  try {
    const b = log.emit({ type: 'step.confirmed', key: 'flight:b', data: {} });
    expect((await log.emit({ type: 'step.confirmed', key: 'flight:c', data: {} }))?.seq).toBe(3);
    // (Probes past the highest number, for other processes' events, are another matter.)
    const lookupsOfTwo = () => findOne.mock.calls.filter(([filter]) => (filter as { _id?: unknown })?._id === eventId(2)).length;
    expect(await log.readAfter(0, 100)).toEqual({ events: [expect.objectContaining({ seq: 1 })], readTo: 1 });
    expect(lookupsOfTwo()).toBe(0);
    // A reader starting now (a WebSocket stream, a webhook) starts before it, not at the highest number.
    expect(await log.head()).toBe(3);
    const start = await log.readerStart();
    expect(start).toBe(1);
    release();
    expect((await b)?.seq).toBe(2);
    expect((await log.readAfter(0, 100)).events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await log.readAfter(start, 100)).events.map((e) => e.seq)).toEqual([2, 3]);
    expect(await log.readerStart()).toBe(3);
  } finally {
    insertMany.mockRestore();
    findOne.mockRestore();
  }
});

test('a counter taken concurrently with $inc hands out every number once', async () => {
  const counters = withSerialWrites(raw).collection<{ _id: string; value: number }>('counters');
  const taken = await Promise.all(
    Array.from({ length: 40 }, async () => (await counters.findOneAndUpdate({ _id: 'c' }, { $inc: { value: 1 } }, { upsert: true, returnDocument: 'after' }))!.value),
  );
  expect([...taken].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
});

test('a failed write does not block the writes queued after it', async () => {
  const queue = new WriteLine();
  const order: string[] = [];
  const failing = queue.run(() => {
    order.push('first');
    return Promise.reject(new Error('boom'));
  });
  const second = queue.run(() => {
    order.push('second');
    return Promise.resolve(2);
  });
  await expect(failing).rejects.toThrow('boom');
  expect(await second).toBe(2);
  expect(order).toEqual(['first', 'second']);
});

test('a write that never finishes is abandoned with an error after the timeout, and the writes behind it go on', async () => {
  const queue = new WriteLine(200);
  // As a driver write on a connection the server closed: it never settles.
  const stuck = queue.run(() => new Promise<never>(() => undefined));
  const next = queue.run(() => Promise.resolve('next'));
  await expect(stuck).rejects.toThrow(/did not finish within 200 ms; abandoned/);
  expect(await next).toBe('next');
});

/** A loopback TCP relay to the store; `freeze` stops relaying on the connections open now (as a server gone silent), new ones relay as usual. */
async function relayTo(uri: string): Promise<{ uri: string; freeze(): void; close(): Promise<void> }> {
  const target = new URL(uri);
  const open = new Set<net.Socket>();
  const every = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    open.add(client).add(upstream);
    every.add(client).add(upstream);
    const drop = () => (client.destroy(), upstream.destroy());
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    freeze: () => {
      for (const socket of open) {
        socket.unpipe();
        socket.pause();
      }
      open.clear();
    },
    close: async () => {
      for (const socket of every) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('a command abandoned on a silent connection gives its connection back: with a pool of one, the next command still runs', async () => {
  const relay = await relayTo(mongo.uri);
  const viaRelay = new MongoClient(relay.uri, { maxPoolSize: 1, serverSelectionTimeoutMS: 5_000, directConnection: true });
  try {
    const db = withSerialWrites(viaRelay.db('store_stuck'), new WriteLine(300));
    const docs = db.collection<{ _id: string; n: number }>('docs');
    await docs.insertOne({ _id: 'a', n: 1 });
    // Each kind of bounded command in turn: a read, a write through the line, a cursor.
    const commands: Array<() => Promise<unknown>> = [() => docs.findOne({ _id: 'a' }), () => docs.updateOne({ _id: 'a' }, { $inc: { n: 1 } }), () => docs.find({}).toArray()];
    for (const command of commands) {
      relay.freeze();
      await expect(command()).rejects.toThrow(/did not finish within 300 ms; abandoned/);
      // The only connection hung; had it stayed checked out, this would wait for it until abandoned too.
      expect(await docs.findOne({ _id: 'a' })).toMatchObject({ _id: 'a' });
    }
  } finally {
    await viaRelay.close(true).catch(() => undefined);
    await relay.close();
  }
}, 30_000);

test('a heartbeat sent on a connection that went silent is abandoned, and the next beat comes before the process looks gone', async () => {
  const relay = await relayTo(mongo.uri);
  const viaRelay = new MongoClient(relay.uri, { serverSelectionTimeoutMS: 5_000, directConnection: true });
  const liveness = new NodeLiveness(withBoundedCommands(viaRelay.db('store_beats')), pino({ level: 'silent' }));
  try {
    await liveness.start();
    await eventually('a first beat', () => Promise.resolve(liveness.lastBeat > 0 ? true : undefined), 5_000, 50);
    const frozenAt = Date.now();
    relay.freeze();
    // A tick, the silent beat's bound, the next beat: within the time after which a leader steps
    // down (STALE_AFTER_MS - HEARTBEAT_MS; without the bound, the store's 30 s).
    const within = HEARTBEAT_MS + BEAT_TIMEOUT_MS + 1_000;
    expect(within).toBeLessThan(STALE_AFTER_MS - HEARTBEAT_MS);
    await eventually('a beat after the silent one', () => Promise.resolve(liveness.lastBeat > frozenAt ? true : undefined), within, 100);
  } finally {
    await liveness.stop();
    await viaRelay.close(true).catch(() => undefined);
    await relay.close();
  }
}, 30_000);

test('heartbeats and leadership go through a connection pool of their own, not the one every other command of the node waits for', async () => {
  const store = await Store.connect(mongo.uri, 'store_pulse');
  const liveness = new NodeLiveness(store.pulse, pino({ level: 'silent' }));
  const leadership = new Leadership(store.pulse, liveness, { start: () => undefined, stop: () => Promise.resolve() }, pino({ level: 'silent' }));
  const checkedOut = { main: 0, pulse: 0 };
  store.db.client.on('connectionCheckedOut', () => checkedOut.main++);
  store.pulse.client.on('connectionCheckedOut', () => checkedOut.pulse++);
  try {
    expect(store.pulse.client).not.toBe(store.db.client);
    await liveness.start();
    await leadership.start();
    expect(leadership.isLeader).toBe(true);
    expect(checkedOut.main).toBe(0);
    expect(checkedOut.pulse).toBeGreaterThan(0);
    // The main pool is the rest of the node's: its commands still go there.
    await store.instance('none');
    expect(checkedOut.main).toBeGreaterThan(0);
  } finally {
    await leadership.stop();
    await liveness.stop();
    await store.close();
  }
});

test('two processes numbering one event log (replicas): every event once, under its own number, with no gaps', async () => {
  const db = client.db('event_replicas');
  const ferret = mongo.kind === 'ferretdb';
  // Two processes: each its own write line and its own count of the numbers handed out.
  const [one, two] = [0, 1].map(() => new EventLog(ferret ? withSerialWrites(db) : db, ferret));
  await one!.ensureIndexes();
  await one!.emit({ type: 'instance.started', key: 'first', data: {} });
  await two!.head(); // `two` reads the highest number now, so its next numbers collide with `one`'s
  const emitted = await Promise.all(
    Array.from({ length: 12 }, (_, i) => [
      one!.emit({ type: 'instance.started', key: `one:${i}`, data: {} }),
      two!.emit({ type: 'instance.started', key: `two:${i}`, data: {} }),
    ]).flat(),
  );
  expect(emitted.every((e) => e !== null)).toBe(true);
  // A fact the other process recorded is not recorded again.
  expect(await two!.emit({ type: 'instance.started', key: 'one:3', data: {} })).toBeNull();
  expect(await one!.emit({ type: 'instance.started', key: 'two:5', data: {} })).toBeNull();
  // Each reads every event, the other's recorded after its own included (each looks for the
  // other's numbers at most once a second).
  await new Promise((r) => setTimeout(r, 1_100));
  const heads = await Promise.all([one!.head(), two!.head()]);
  expect(heads[0]).toBe(heads[1]);
  for (const log of [one!, two!]) {
    const read = await log.readAfter(0, 100);
    expect(read.events.map((e) => e.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    // The numbers the refused repeats took, if any, are read past at once.
    expect(read.readTo).toBe(heads[0]);
  }
  const keys = await db.collection<{ _id: string; key: string }>('events').find({}).toArray();
  expect(new Set(keys.map((k) => k.key)).size).toBe(keys.length);
  if (!ferret) return;
  // A process took the next number and died before writing it; another recorded the one after: readers step over the hole.
  const [hole, after] = [heads[0] + 1, heads[0] + 2];
  const third = new EventLog(withSerialWrites(db), true);
  await third.head();
  await db.collection<{ _id: string }>('events').insertOne({ _id: eventId(after), key: 'after-a-hole', type: 'instance.started', at: new Date().toISOString(), data: {}, seq: after, recordedAt: new Date(Date.now() - 60_000) } as never);
  const fresh = new EventLog(withSerialWrites(db), true);
  expect(await fresh.head()).toBe(after);
  expect((await fresh.readAfter(hole - 1, 10)).events.map((e) => e.seq)).toEqual([after]);
});

test('heartbeats (written through bounded commands, not the line) do not wait behind a slow write', async () => {
  const queue = new WriteLine(1_000);
  const db = withSerialWrites(raw, queue);
  const pulse = withBoundedCommands(raw);
  // A write that holds the line, as a backlog of store writes would.
  const stuck = queue.run(() => new Promise<never>(() => undefined));
  let queuedDone = false;
  const queued = db.collection('lined').insertOne({ _id: 'behind' } as never).then(() => (queuedDone = true));
  await pulse.collection('heartbeats').insertOne({ _id: 'process-1', seenAt: new Date() } as never);
  expect(queuedDone).toBe(false);
  expect(await raw.collection('heartbeats').findOne({ _id: 'process-1' as never })).not.toBeNull();
  await expect(stuck).rejects.toThrow(/abandoned/);
  await queued;
  expect(queuedDone).toBe(true);
});

test('facts whose key documents are in the older eventKeys collection, or missing after a crash, are still recorded once', async () => {
  const db = client.db('event_keys_legacy');
  const ferret = mongo.kind === 'ferretdb';
  const event = (seq: number, key: string) => ({ _id: eventId(seq), seq, key, type: 'instance.started', at: new Date().toISOString(), data: {}, recordedAt: new Date() });
  const log = () => new EventLog(ferret ? withSerialWrites(db) : db, ferret);
  await log().ensureIndexes();
  // Written by the earlier layout: the key document in its own collection.
  await db.collection('events').insertOne(event(1, 'old:a') as never);
  await db.collection('eventKeys').insertOne({ _id: 'old:a', seq: 1 } as never);
  // An event whose key document a crash kept from being written.
  await db.collection('events').insertOne(event(2, 'crash:b') as never);
  if (!ferret) await db.collection('counters').insertOne({ _id: 'events', value: 2 } as never);
  const first = log();
  expect(await first.has('old:a')).toBe(true);
  expect(await first.has('crash:b')).toBe(false);
  expect(await first.emit({ type: 'instance.started', key: 'old:a', data: {} })).toBeNull();
  expect(await first.emit({ type: 'instance.started', key: 'crash:b', data: {} })).toBeNull();
  // The repeat wrote the missing key document: another process knows the fact now.
  expect(await log().has('crash:b')).toBe(true);
  const fresh = await first.emit({ type: 'instance.started', key: 'new:c', data: {} });
  expect((await log().readAfter(0, 100)).events.map((e) => e.seq)).toEqual([1, 2, fresh!.seq]);
  expect(await log().has('new:c')).toBe(true);
});

test('an event log written with numeric ids is renumbered under string ids once, and read on from there', async () => {
  const db = client.db('event_legacy');
  const ferret = mongo.kind === 'ferretdb';
  const old = db.collection<{ _id: number | string; seq: number }>('events');
  for (const seq of [1, 2, 3]) await old.insertOne({ _id: seq, seq, key: `legacy:${seq}`, type: 'instance.started', at: new Date().toISOString(), data: {}, recordedAt: new Date() } as never);
  const log = new EventLog(ferret ? withSerialWrites(db) : db, ferret);
  await log.ensureIndexes();
  expect((await old.find({}).toArray()).map((d) => d._id).sort()).toEqual([eventId(1), eventId(2), eventId(3)]);
  if (!ferret) await db.collection('counters').insertOne({ _id: 'events', value: 3 } as never);
  expect((await log.emit({ type: 'instance.started', key: 'after-renumbering', data: {} }))?.seq).toBe(4);
  expect((await log.readAfter(0, 10)).events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  // Once done, a later start reads nothing more (the mark is in `counters`).
  await old.insertOne({ _id: 99, seq: 99, key: 'stray', type: 'instance.started', at: new Date().toISOString(), data: {}, recordedAt: new Date() } as never);
  await new EventLog(db, ferret).ensureIndexes();
  expect(await old.findOne({ _id: 99 })).not.toBeNull();
});

describe('the write line', () => {
  /** A write that records when it starts and finishes only when released. */
  function held(journal: string[], name: string) {
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    return {
      task: () => {
        journal.push(`start ${name}`);
        return done.then(() => journal.push(`end ${name}`));
      },
      release,
    };
  }
  const settle = () => new Promise((r) => setTimeout(r, 10));

  test('writes to different documents go side by side, up to the limit; writes to one document one at a time, in order', async () => {
    const line = new WriteLine(5_000, 2);
    const journal: string[] = [];
    const [a1, b1, a2, c1] = ['a1', 'b1', 'a2', 'c1'].map((n) => held(journal, n));
    const runs = [line.run(a1!.task, ['a']), line.run(b1!.task, ['b']), line.run(a2!.task, ['a']), line.run(c1!.task, ['c'])];
    await settle();
    expect(journal).toEqual(['start a1', 'start b1']); // a2 waits for a1; c1 for a free place
    a1!.release();
    await settle();
    // a1's place goes to the first write whose document is free: a2 (in order behind a1).
    expect(journal).toEqual(['start a1', 'start b1', 'end a1', 'start a2']);
    b1!.release();
    await settle();
    expect(journal.slice(4)).toEqual(['end b1', 'start c1']);
    a2!.release();
    c1!.release();
    await Promise.all(runs);
    expect(line.stats.writes).toBe(4);
  });

  test('a write whose documents are unknown goes alone: after every write asked before it, before every write asked after it', async () => {
    const line = new WriteLine(5_000, 4);
    const journal: string[] = [];
    const [a, all, b] = ['a', 'all', 'b'].map((n) => held(journal, n));
    const runs = [line.run(a!.task, ['a']), line.run(all!.task, ALL), line.run(b!.task, ['b'])];
    await settle();
    expect(journal).toEqual(['start a']);
    a!.release();
    await settle();
    expect(journal).toEqual(['start a', 'end a', 'start all']);
    all!.release();
    await settle();
    expect(journal.slice(3)).toEqual(['end all', 'start b']);
    b!.release();
    await Promise.all(runs);
  });

  test('a write names the documents its arguments pin down, and ALL otherwise', () => {
    const oid = new ObjectId();
    expect(writeKeys('slots', 'updateOne', [{ _id: 's-1', status: 'pending' }, { $set: {} }])).toEqual(['slots\u0000string:s-1']);
    expect(writeKeys('slots', 'findOneAndUpdate', [{ _id: oid }, { $inc: {} }])).toEqual([`slots\u0000oid:${oid.toHexString()}`]);
    expect(writeKeys('events', 'insertOne', [{ _id: 7 }])).toEqual(['events\u0000number:7']);
    expect(writeKeys('events', 'insertOne', [{ type: 'x' }])).toEqual([]); // a fresh _id: no other write can touch it
    expect(writeKeys('tags', 'insertMany', [[{ _id: 't1' }, { _id: 't2' }]])).toEqual(['tags\u0000string:t1', 'tags\u0000string:t2']);
    expect(writeKeys('b', 'bulkWrite', [[{ updateOne: { filter: { _id: 'x' }, update: {} } }, { insertOne: { document: { _id: 'y' } } }]])).toEqual(['b\u0000string:x', 'b\u0000string:y']);
    expect(writeKeys('steps', 'updateOne', [{ status: 'pending' }, { $set: {} }])).toBe(ALL);
    expect(writeKeys('steps', 'updateOne', [{ _id: { $in: ['a', 'b'] } }, { $set: {} }])).toBe(ALL);
    expect(writeKeys('steps', 'updateMany', [{ _id: 'a' }, { $set: {} }])).toBe(ALL);
    expect(writeKeys('b', 'bulkWrite', [[{ updateMany: { filter: { _id: 'x' }, update: {} } }]])).toBe(ALL);
  });

  test('the backlog: how many writes wait for their turn, and how long the first of them has waited', async () => {
    const line = new WriteLine(5_000, 1);
    expect(line.stats).toMatchObject({ queued: 0, oldestWaitMs: 0 });
    const journal: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((n) => held(journal, n));
    const runs = [line.run(a!.task, ['a']), line.run(b!.task, ['b']), line.run(c!.task, ['c'])];
    await new Promise((r) => setTimeout(r, 60));
    const behind = line.stats;
    expect(behind.queued).toBe(2);
    expect(behind.oldestWaitMs).toBeGreaterThanOrEqual(50);
    a!.release();
    b!.release();
    c!.release();
    await Promise.all(runs);
    expect(line.stats).toMatchObject({ writes: 3, queued: 0, oldestWaitMs: 0 });
  });

  test('dropping the queue (a process stepping down): writes not begun fail, naming why, without running; the one under way finishes; later writes run', async () => {
    const line = new WriteLine(5_000, 1);
    const journal: string[] = [];
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => held(journal, n));
    const runA = line.run(a!.task, ['a']);
    const [runB, runC] = [line.run(b!.task, ['b']), line.run(c!.task, ALL)];
    await settle();
    expect(line.dropQueued('this process stopped leading')).toBe(2);
    await expect(runB).rejects.toThrow('a store write was not made: this process stopped leading');
    await expect(runC).rejects.toThrow('a store write was not made: this process stopped leading');
    expect(line.stats.queued).toBe(0);
    const runD = line.run(d!.task, ['d']);
    a!.release();
    d!.release();
    await Promise.all([runA, runD]);
    expect(journal).toEqual(['start a', 'end a', 'start d', 'end d']);
    expect(line.dropQueued('again')).toBe(0);
  });

  test("a bounded command's abort signal goes in its options, wherever the method takes them", () => {
    const { signal } = new AbortController();
    expect(withSignal('updateOne', [{ _id: 'a' }, { $set: {} }, { upsert: true }], signal)).toEqual([{ _id: 'a' }, { $set: {} }, { upsert: true, signal }]);
    expect(withSignal('findOne', [], signal)).toEqual([undefined, { signal }]);
    expect(withSignal('distinct', ['field'], signal)).toEqual(['field', undefined, { signal }]);
    expect(withSignal('estimatedDocumentCount', [], signal)).toEqual([{ signal }]);
    const caller = new AbortController();
    const [, both] = withSignal('find', [{}, { signal: caller.signal }], signal) as [unknown, { signal: AbortSignal }];
    caller.abort();
    expect(both.signal.aborted).toBe(true); // either signal aborts the command
  });
});
