/**
 * Concurrent writes to one document on the real document store (FerretDB here, or mongod where
 * installed): every change survives. On FerretDB this holds only because the store sends its
 * writes one at a time (src/store/serial-writes.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { startMongo, type RunningMongo } from '../src/stack/mongo-server';
import { freePort } from '../src/stack/ports';
import { isFerretDb, SerialQueue, withSerialWrites } from '../src/store/serial-writes';

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

test('the server is recognised for what it is', async () => {
  expect(await isFerretDb(raw)).toBe(mongo.kind === 'ferretdb');
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

test('a counter taken concurrently with $inc hands out every number once', async () => {
  const counters = withSerialWrites(raw).collection<{ _id: string; value: number }>('counters');
  const taken = await Promise.all(
    Array.from({ length: 40 }, async () => (await counters.findOneAndUpdate({ _id: 'c' }, { $inc: { value: 1 } }, { upsert: true, returnDocument: 'after' }))!.value),
  );
  expect([...taken].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
});

test('a failed write does not block the writes queued after it', async () => {
  const queue = new SerialQueue();
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
