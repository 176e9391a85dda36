/**
 * Leadership between processes of one party, on the real document store: of several processes
 * campaigning, exactly one leads; when its heartbeat stops (a crash), another takes over, and a
 * leader that sees a newer generation steps down. The processes are simulated in this one test
 * process, each with its own identity (host and pid) and heartbeat, as separate machines would be.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import pino from 'pino';
import { startMongo, type RunningMongo } from '../src/stack/mongo-server';
import { freePort } from '../src/stack/ports';
import { NodeLiveness, STALE_AFTER_MS } from '../src/node/liveness';
import { Leadership } from '../src/node/leadership';
import { eventually } from './support/eventually';

let mongo: RunningMongo;
let client: MongoClient;
let db: Db;
const log = pino({ level: 'silent' });

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-leadership-test-'));
  mongo = await startMongo({ dir, logDir: dir, port: await freePort() });
  client = new MongoClient(mongo.uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  db = client.db('leadership');
}, 90_000);

afterAll(async () => {
  await client?.close();
  await mongo?.process.stop();
});

interface Member {
  name: string;
  liveness: NodeLiveness;
  leadership: Leadership;
  /** How many times its leader work was started and stopped. */
  started: number;
  stopped: number;
}

function member(name: string, host: string): Member {
  const liveness = new NodeLiveness(db, log, { host, pid: 1000 });
  const m: Member = { name, liveness, started: 0, stopped: 0, leadership: undefined as unknown as Leadership };
  m.leadership = new Leadership(db, liveness, { start: () => void m.started++, stop: () => Promise.resolve(void m.stopped++) }, log);
  return m;
}

/** A crash: the process stops beating and campaigning without a word (its timers simply end). */
function crash(m: Member): void {
  for (const part of [m.liveness, m.leadership] as unknown as Array<{ timer?: NodeJS.Timeout }>) clearInterval(part.timer);
}

test('one leader among three; a crashed leader is replaced once its heartbeat is stale; never two at once', async () => {
  const members = ['one', 'two', 'three'].map((n) => member(n, `host-${n}`));
  for (const m of members) await m.liveness.start();
  await Promise.all(members.map((m) => m.leadership.start()));
  const leaders = () => members.filter((m) => m.leadership.isLeader);
  expect(leaders()).toHaveLength(1);
  const first = leaders()[0]!;
  expect(first.started).toBe(1);

  const crashedAt = Date.now();
  crash(first);
  const survivors = members.filter((m) => m !== first);
  let seenTwo = false;
  const next = await eventually(
    'a new leader',
    () => {
      const now = survivors.filter((m) => m.leadership.isLeader);
      if (now.length > 1) seenTwo = true;
      return Promise.resolve(now.length === 1 ? now[0] : undefined);
    },
    STALE_AFTER_MS * 3,
    200,
  );
  expect(seenTwo).toBe(false);
  // Not before the crashed leader's heartbeat went stale.
  expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(STALE_AFTER_MS - 2_500);
  expect(next.leadership.current()!.generation).toBe(first.leadership.current()!.generation + 1);

  // The old leader wakes up (a long pause, not a crash): it sees the newer generation and steps down.
  await (first.leadership as unknown as { campaign(): Promise<void> }).campaign();
  expect(first.leadership.isLeader).toBe(false);
  expect(first.stopped).toBe(1);
  expect(survivors.filter((m) => m.leadership.isLeader)).toEqual([next]);

  for (const m of survivors) await m.leadership.stop();
  for (const m of survivors) await m.liveness.stop();
}, 60_000);

test('a leader that stops cleanly hands over at once', async () => {
  await db.collection('leadership').deleteMany({});
  const a = member('a', 'host-a');
  const b = member('b', 'host-b');
  await a.liveness.start();
  await a.leadership.start();
  await b.liveness.start();
  await b.leadership.start();
  expect([a.leadership.isLeader, b.leadership.isLeader]).toEqual([true, false]);
  const handedAt = Date.now();
  await a.leadership.stop();
  await a.liveness.stop();
  await eventually('b leading', () => Promise.resolve(b.leadership.isLeader ? true : undefined), 10_000, 100);
  expect(Date.now() - handedAt).toBeLessThan(STALE_AFTER_MS);
  expect(b.started).toBe(1);
  await b.leadership.stop();
  await b.liveness.stop();
}, 30_000);

test('a leader whose heartbeat cannot be written steps down, and leads again once it can', async () => {
  await db.collection('leadership').deleteMany({});
  const a = member('a', 'host-a');
  await a.liveness.start();
  await a.leadership.start();
  expect(a.leadership.isLeader).toBe(true);
  const generation = a.leadership.current()!.generation;
  const campaign = () => (a.leadership as unknown as { campaign(): Promise<void> }).campaign();
  // The database was away long enough that others may think this process gone.
  a.liveness.lastBeat = Date.now() - STALE_AFTER_MS;
  await campaign();
  expect([a.leadership.isLeader, a.stopped]).toEqual([false, 1]);
  await campaign();
  expect(a.leadership.isLeader).toBe(false); // not while its own heartbeat is still failing
  a.liveness.lastBeat = Date.now();
  await campaign();
  expect([a.leadership.isLeader, a.started]).toEqual([true, 2]);
  expect(a.leadership.current()!.generation).toBe(generation + 1);
  await a.leadership.stop();
  await a.liveness.stop();
}, 30_000);
