/**
 * The webhook dispatcher against the real document store (FerretDB here, or mongod where
 * installed): pending deliveries live in a small working set (`webhook_due`), so what a tick
 * costs does not grow with the delivery history, which is only ever read and written by `_id`
 * (the one filter FerretDB 1.x answers from its index).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type CommandStartedEvent, type Db, type Document } from 'mongodb';
import pino from 'pino';
import type { WebhookSettings } from '../src/config';
import { EventLog } from '../src/events/log';
import { Webhooks } from '../src/events/webhooks';
import { parseWebhookAllowList } from '../src/events/webhook-targets';
import { startMongo, type RunningMongo } from '../src/stack/mongo-server';
import { freePort } from '../src/stack/ports';
import { withSerialWrites } from '../src/store/serial-writes';
import { eventually } from './support/eventually';

const APP = 'app';
const SETTINGS: WebhookSettings = { maxAttempts: 2, backoffMs: 50, maxBackoffMs: 200, timeoutMs: 2_000 };

let mongo: RunningMongo;
let client: MongoClient;
let receiver: http.Server;
let base: string;
/** Bodies received per path; `/ok/*` answers 200, `/down/<name>` 500 until `<name>` recovers, `/hang/*` never. */
const received = new Map<string, { deliveryId: string; event: { seq: number } }[]>();
const recovered = new Set<string>();
/** Commands sent per database, while recording (the driver's command monitoring). */
const commands: CommandStartedEvent[] = [];
let recording = false;
const running: Webhooks[] = [];

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-webhooks-test-'));
  mongo = await startMongo({ dir, logDir: dir, port: await freePort() });
  client = new MongoClient(mongo.uri, { serverSelectionTimeoutMS: 10_000, monitorCommands: true });
  client.on('commandStarted', (event) => {
    if (recording) commands.push(event);
  });
  await client.connect();
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      const list = received.get(url) ?? [];
      list.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { deliveryId: string; event: { seq: number } });
      received.set(url, list);
      if (url.startsWith('/hang/')) return; // never answers
      const ok = url.startsWith('/ok/') || recovered.has(url.slice('/down/'.length));
      res.writeHead(ok ? 200 : 500).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
}, 90_000);

afterEach(async () => {
  recording = false;
  await Promise.all(running.splice(0).map((w) => w.stop()));
});

afterAll(async () => {
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  await client?.close();
  await mongo?.process.stop();
});

/** One party's webhooks on its own database, wired as the node wires them. */
async function party(name: string, settings: Partial<WebhookSettings> = {}): Promise<{ raw: Db; events: EventLog; webhooks: Webhooks; start: () => void }> {
  const raw = client.db(name);
  const ferret = mongo.kind === 'ferretdb';
  const db = ferret ? withSerialWrites(raw) : raw;
  const events = new EventLog(db, ferret);
  await events.ensureIndexes();
  const webhooks = new Webhooks(db, events, { ...SETTINGS, ...settings }, pino({ level: 'silent' }));
  await webhooks.ensureIndexes();
  const start = () => {
    webhooks.start();
    running.push(webhooks);
  };
  return { raw, events, webhooks, start };
}

async function emit(events: EventLog, keys: string[]): Promise<void> {
  for (const key of keys) await events.emit({ type: 'instance.started', key, instanceId: 'inst-1', data: {} });
}

const calls = (url: string) => received.get(url) ?? [];
const dueCount = (raw: Db) => raw.collection('webhook_due').countDocuments({});
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The filters of the commands sent for `collection` (find, update, delete). */
function filtersOn(database: string, collection: string): Document[] {
  const filters: Document[] = [];
  for (const { databaseName, commandName, command } of commands) {
    if (databaseName !== database || command[commandName] !== collection) continue;
    if (commandName === 'find') filters.push(command.filter as Document);
    if (commandName === 'update') filters.push(...(command.updates as { q: Document }[]).map((u) => u.q));
    if (commandName === 'delete') filters.push(...(command.deletes as { q: Document }[]).map((d) => d.q));
    if (commandName === 'aggregate' || commandName === 'count') filters.push({ [commandName]: 'a scan' });
  }
  return filters;
}

const bareId = (filter: Document) => Object.keys(filter).length === 1 && typeof filter._id === 'string';

test('delivered and dead deliveries leave the working set; the dispatcher touches the history by _id alone', async () => {
  const { raw, events, webhooks, start } = await party('webhooks_history');
  const ok = (await webhooks.create(APP, { url: `${base}/ok/history` })).subscription;
  const down = (await webhooks.create(APP, { url: `${base}/down/history` })).subscription;
  start();
  await emit(events, ['history:0']);
  await eventually('the first delivery', () => Promise.resolve(calls('/ok/history').length === 1 ? true : undefined));

  // From here on (the start's one look at older deliveries is behind): every tick, delivery and retry.
  recording = true;
  await emit(events, ['history:1', 'history:2', 'history:3', 'history:4', 'history:5']);
  await eventually('all sent, and retried until dead', async () =>
    calls('/ok/history').length === 6 && calls('/down/history').length === 12 && (await dueCount(raw)) === 0 ? true : undefined,
  );
  const sentAt = commands.length;
  await pause(1_000); // five ticks with nothing due
  recording = false;

  const history = filtersOn(raw.databaseName, 'webhook_deliveries');
  expect(history.length).toBeGreaterThan(0);
  expect(history.filter((f) => !bareId(f))).toEqual([]);
  // Ticks with an empty working set do not read the history at all.
  expect(commands.slice(sentAt).filter((c) => c.command[c.commandName] === 'webhook_deliveries')).toEqual([]);
  expect(commands.slice(sentAt).some((c) => c.command[c.commandName] === 'webhook_due')).toBe(true);

  const delivered = await webhooks.listDeliveries(APP, ok.id, undefined, 100);
  expect(delivered.map((d) => [d.state, d.attempts])).toEqual(Array.from({ length: 6 }, () => ['delivered', 1]));
  const dead = await webhooks.listDeliveries(APP, down.id, 'dead', 100);
  expect(dead).toHaveLength(6);
  expect(dead.every((d) => d.attempts === SETTINGS.maxAttempts && d.lastError === 'HTTP 500' && d.nextAttemptAt === null)).toBe(true);
  // Each delivery was sent once per attempt, never twice at once.
  expect(new Set(calls('/ok/history').map((c) => c.deliveryId)).size).toBe(6);
});

test('a dead delivery redelivered through another process (a replica) is sent again', async () => {
  const leader = await party('webhooks_redeliver');
  const sub = (await leader.webhooks.create(APP, { url: `${base}/down/redeliver` })).subscription;
  leader.start();
  await emit(leader.events, ['redeliver:0']);
  const [dead] = await eventually('dead', async () => {
    const list = await leader.webhooks.listDeliveries(APP, sub.id, 'dead', 10);
    return list.length === 1 ? list : undefined;
  });
  // The delivery is marked dead first, then leaves the working set.
  await eventually('out of the working set', async () => ((await dueCount(leader.raw)) === 0 ? true : undefined));

  recovered.add('redeliver');
  // A replica serves the REST API without running the dispatcher: it shares only the database.
  const replica = await party('webhooks_redeliver');
  const queued = await replica.webhooks.redeliver(APP, sub.id, dead!.id);
  expect(queued).toMatchObject({ id: dead!.id, state: 'pending', attempts: 0, lastError: null });
  await eventually('redelivered', async () => ((await leader.webhooks.listDeliveries(APP, sub.id, 'delivered', 10)).length === 1 ? true : undefined));
  expect(calls('/down/redeliver').map((c) => c.deliveryId)).toEqual(Array.from({ length: SETTINGS.maxAttempts + 1 }, () => dead!.id));
  await eventually('redelivered, out of the working set', async () => ((await dueCount(leader.raw)) === 0 ? true : undefined));
  await expect(replica.webhooks.redeliver(APP, sub.id, 'no-such-delivery')).rejects.toMatchObject({ code: 'not_found' });
  await expect(replica.webhooks.redeliver('another-app', sub.id, dead!.id)).rejects.toMatchObject({ code: 'not_found' });
});

test('removing a subscription takes its pending deliveries out of the working set', async () => {
  // Retries far apart: deliveries stay pending after their first attempt.
  const { raw, events, webhooks, start } = await party('webhooks_removal', { maxAttempts: 10, backoffMs: 60_000, maxBackoffMs: 60_000 });
  const keep = (await webhooks.create(APP, { url: `${base}/down/keep` })).subscription;
  const gone = (await webhooks.create(APP, { url: `${base}/down/gone` })).subscription;
  start();
  await emit(events, ['removal:0', 'removal:1', 'removal:2']);
  await eventually('first attempts', async () => (calls('/down/keep').length === 3 && calls('/down/gone').length === 3 && (await dueCount(raw)) === 6 ? true : undefined));

  await expect(webhooks.remove('another-app', gone.id)).rejects.toMatchObject({ code: 'not_found' });
  await webhooks.remove(APP, gone.id);
  const left = await raw.collection<{ _id: string }>('webhook_due').find({}).toArray();
  expect(left.map((d) => d._id).sort()).toEqual((await webhooks.listDeliveries(APP, keep.id, 'pending', 10)).map((d) => d.id).sort());
  expect(left).toHaveLength(3);
  expect(await raw.collection('webhook_deliveries').countDocuments({ subscriptionId: gone.id })).toBe(0);
});

test('a node with pending deliveries but no working set (the older layout) delivers them after start', async () => {
  const { raw, events, webhooks, start } = await party('webhooks_legacy');
  const sub = (await webhooks.create(APP, { url: `${base}/ok/legacy` })).subscription;
  await emit(events, ['legacy:1', 'legacy:2', 'legacy:3']);
  // As an older node left them: one delivered, two pending (one of them under a claim that ran out),
  // the subscription's cursor past all three, nothing in `webhook_due`.
  const delivery = (seq: number, state: 'pending' | 'delivered', nextAttemptAt: Date | null) => ({
    _id: `${sub.id}:${seq}`,
    subscriptionId: sub.id,
    seq,
    state,
    attempts: state === 'delivered' ? 1 : 0,
    nextAttemptAt,
    lastError: null,
    deliveredAt: state === 'delivered' ? new Date() : null,
  });
  await raw.collection<ReturnType<typeof delivery>>('webhook_deliveries').insertMany([delivery(1, 'delivered', null), delivery(2, 'pending', new Date(Date.now() - 60_000)), delivery(3, 'pending', new Date())]);
  await raw.collection<{ _id: string; cursor: number }>('webhooks').updateOne({ _id: sub.id }, { $set: { cursor: 3 } });
  // A listing left by a crash after its delivery was marked delivered: dropped, not sent.
  await raw.collection<{ _id: string; nextAttemptAt: Date }>('webhook_due').insertOne({ _id: `${sub.id}:1`, nextAttemptAt: new Date(0) });

  start();
  await eventually('the pending ones delivered', async () => ((await webhooks.listDeliveries(APP, sub.id, 'delivered', 10)).length === 3 ? true : undefined));
  await eventually('the working set emptied', async () => ((await dueCount(raw)) === 0 ? true : undefined));
  // Each once, the delivered one not again; due deliveries are posted side by side, so in either order.
  expect(calls('/ok/legacy').map((c) => c.event.seq).sort((a, b) => a - b)).toEqual([2, 3]);
});

test('a webhook goes only where LOCKSTEP_WEBHOOK_ALLOW lets it, checked on the address each delivery connects to', async () => {
  const port = new URL(base).port;
  // Made before the allow list was set (another process of the party, or a node restarted with it).
  const before = await party('webhooks_allow');
  const byAddress = (await before.webhooks.create(APP, { url: `${base}/ok/allow-address` })).subscription;
  const { webhooks, events, start } = await party('webhooks_allow', { allow: parseWebhookAllowList('10.0.0.0/8, 127.0.0.1/32') });
  await expect(webhooks.create(APP, { url: 'http://169.254.169.254/latest/meta-data/' })).rejects.toMatchObject({
    code: 'validation_failed',
    details: [{ field: '/url', message: expect.stringContaining('169.254.169.254 is a link-local address') }],
  });
  await expect(webhooks.create(APP, { url: `http://[::1]:${port}/ok/allow-v6` })).rejects.toMatchObject({ details: [{ field: '/url', message: '::1 is not in LOCKSTEP_WEBHOOK_ALLOW' }] });
  // A name passes until it is resolved; `localhost` resolves to loopback only, outside 10.0.0.0/8
  // but for 127.0.0.1: which of its addresses the delivery may use is decided at connect time.
  const byName = (await webhooks.create(APP, { url: `http://localhost:${port}/ok/allow-name` })).subscription;
  const refused = (await before.webhooks.create(APP, { url: `http://[::1]:${port}/ok/allow-refused` })).subscription;
  start();
  await emit(events, ['allow:1']);
  await eventually('delivered where allowed, refused where not', async () => {
    const states = await Promise.all([byAddress, byName, refused].map(async (s) => (await webhooks.listDeliveries(APP, s.id, undefined, 10)).map((d) => d.state)));
    return states.flat().join() === 'delivered,delivered,dead' ? states : undefined;
  });
  expect(calls('/ok/allow-address')).toHaveLength(1);
  expect(calls('/ok/allow-name')).toHaveLength(1);
  expect(calls('/ok/allow-refused')).toEqual([]);
  const [dead] = await webhooks.listDeliveries(APP, refused.id, 'dead', 10);
  expect(dead!.lastError).toBe('refused: ::1 is not in LOCKSTEP_WEBHOOK_ALLOW');
});

test('a receiver that never answers fails the attempt at the timeout, naming it, and the delivery goes on to its next', async () => {
  const { webhooks, events, start } = await party('webhooks_timeout', { timeoutMs: 300 });
  const hung = (await webhooks.create(APP, { url: `${base}/hang/timeout` })).subscription;
  start();
  await emit(events, ['timeout:1']);
  const [dead] = await eventually('dead after its attempts', async () => {
    const list = await webhooks.listDeliveries(APP, hung.id, 'dead', 10);
    return list.length === 1 ? list : undefined;
  });
  expect(dead).toMatchObject({ attempts: SETTINGS.maxAttempts, lastError: 'no answer within 300 ms' });
  expect(calls('/hang/timeout')).toHaveLength(SETTINGS.maxAttempts);
});
