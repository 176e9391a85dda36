/**
 * A database client whose server monitoring stopped is reconnected (src/store/stuck-monitor.ts):
 * the watchdog's rule with a stand-in client and a clock of the test's own, then the
 * reconnection itself on a real FerretDB, where the node's collections, wrapped as the store
 * wraps them, go on working under the reconnected client.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, MongoNotConnectedError, type ServerHeartbeatStartedEvent } from 'mongodb';
import { startMongo, type RunningMongo } from '../src/stack/mongo-server';
import { freePort } from '../src/stack/ports';
import { StuckMonitorWatchdog, type StuckMonitorReport, type WatchedClient } from '../src/store/stuck-monitor';
import { withSerialWrites } from '../src/store/serial-writes';
import { isStoreUnavailable } from '../src/store/unavailable';
import { eventually } from './support/eventually';

/** A client that only emits heartbeat events and counts closes and connects; connect fails while `down`. */
class StandInClient extends EventEmitter {
  closes = 0;
  connects = 0;
  down = false;
  close(): Promise<void> {
    this.closes++;
    return Promise.resolve();
  }
  connect(): Promise<this> {
    this.connects++;
    return this.down ? Promise.reject(new Error('connect ECONNREFUSED')) : Promise.resolve(this);
  }
  beat(kind: 'Started' | 'Succeeded' | 'Failed', server = 'db:27017'): void {
    this.emit(`serverHeartbeat${kind}`, { connectionId: server });
  }
}

function watched(client: StandInClient, clock: { now: number }) {
  const heard: string[] = [];
  const report = {
    stuck: (r: StuckMonitorReport) => heard.push(`stuck ${r.server} ${r.stuckForMs}`),
    reconnected: (r: StuckMonitorReport) => heard.push(`reconnected ${r.server}`),
    failed: (r: StuckMonitorReport) => heard.push(`failed ${r.server}`),
  };
  const watchdog = new StuckMonitorWatchdog(client as unknown as WatchedClient, report, 60_000, () => clock.now);
  watchdog.start(3_600_000);
  return { watchdog, heard };
}

test('a heartbeat under way past the bound has the client closed and connected again, once; heartbeats that end never do', async () => {
  const client = new StandInClient();
  const clock = { now: 0 };
  const { watchdog, heard } = watched(client, clock);
  try {
    // Heartbeats that end, however many, and one under way for less than the bound: nothing.
    for (let i = 0; i < 10; i++) {
      client.beat('Started');
      clock.now += 10_000;
      client.beat(i % 2 ? 'Succeeded' : 'Failed');
    }
    client.beat('Started');
    clock.now += 59_000;
    await watchdog.check();
    expect([client.closes, client.connects, heard]).toEqual([0, 0, []]);

    // Its start is what counts, not a later start event of the same server.
    client.beat('Started');
    clock.now += 2_000;
    await watchdog.check();
    expect([client.closes, client.connects]).toEqual([1, 1]);
    expect(heard).toEqual(['stuck db:27017 61000', 'reconnected db:27017']);

    // The hung heartbeat went with the old topology: checks after it do nothing.
    clock.now += 120_000;
    await watchdog.check();
    expect([client.closes, client.connects]).toEqual([1, 1]);
  } finally {
    await watchdog.stop();
  }
});

test('a reconnection that fails is tried again at every check until it succeeds; one server stuck among others is enough', async () => {
  const client = new StandInClient();
  const clock = { now: 0 };
  const { watchdog, heard } = watched(client, clock);
  try {
    client.beat('Started', 'a:1');
    client.beat('Started', 'b:1');
    clock.now += 30_000;
    client.beat('Succeeded', 'a:1');
    clock.now += 31_000;
    client.down = true;
    await watchdog.check();
    await watchdog.check();
    expect([client.closes, client.connects]).toEqual([1, 2]);
    client.down = false;
    await watchdog.check();
    await watchdog.check();
    expect([client.closes, client.connects]).toEqual([1, 3]);
    expect(heard).toEqual(['stuck b:1 61000', 'failed b:1', 'failed b:1', 'reconnected b:1']);
  } finally {
    await watchdog.stop();
  }
});

describe('on a real FerretDB', () => {
  let mongo: RunningMongo;
  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-stuck-monitor-'));
    mongo = await startMongo({ dir, logDir: dir, port: await freePort() });
  }, 90_000);
  afterAll(async () => {
    await mongo?.process.stop();
  });

  test("reconnecting keeps the store's collections working, and the new monitor's heartbeats are heard", async () => {
    const client = new MongoClient(mongo.uri, { serverSelectionTimeoutMS: 5_000, heartbeatFrequencyMS: 500 });
    await client.connect();
    const clock = { now: Date.now() };
    const heard: string[] = [];
    const watchdog = new StuckMonitorWatchdog(
      client,
      { stuck: () => heard.push('stuck'), reconnected: () => heard.push('reconnected'), failed: (_r, e) => heard.push(`failed ${String(e)}`) },
      60_000,
      () => clock.now,
    );
    watchdog.start(3_600_000);
    let beats = 0;
    client.on('serverHeartbeatSucceeded', () => beats++);
    try {
      const docs = withSerialWrites(client.db('stuck_monitor')).collection<{ _id: string; n: number }>('docs');
      await docs.insertOne({ _id: 'a', n: 1 });
      await eventually('a heartbeat', () => Promise.resolve(beats > 0 ? true : undefined));

      // Closed and not connected again yet, an operation fails as "unavailable" (503, retried).
      await client.close();
      const meanwhile = await docs.findOne({ _id: 'a' }).catch((error: unknown) => error);
      expect(meanwhile).toBeInstanceOf(MongoNotConnectedError);
      expect(isStoreUnavailable(meanwhile)).toBe(true);
      await client.connect();

      // A heartbeat under way past the bound: the watchdog reconnects the client.
      client.emit('serverHeartbeatStarted', { connectionId: 'stuck:1' } as ServerHeartbeatStartedEvent);
      clock.now += 61_000;
      await watchdog.check();
      expect(heard).toEqual(['stuck', 'reconnected']);
      await docs.updateOne({ _id: 'a' }, { $inc: { n: 1 } });
      await docs.insertOne({ _id: 'b', n: 1 });
      expect(await docs.find({}).sort({ _id: 1 }).toArray()).toEqual([{ _id: 'a', n: 2 }, { _id: 'b', n: 1 }]);
      const before = beats;
      await eventually('a heartbeat of the new monitor', () => Promise.resolve(beats > before ? true : undefined));
    } finally {
      await watchdog.stop();
      await client.close();
    }
  });
});
