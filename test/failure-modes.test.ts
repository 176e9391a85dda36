/**
 * Failure modes that FireFly users report, on the real stack (three parties, each behind a proxy
 * the test can cut), each shown not to exist in Lockstep:
 * - #1324: a step rejected on chain (a conflict, then a missed deadline) does not hold the
 *   instance: the next steps are accepted and final on every node, with identical histories.
 * - #663: a final pin whose data has not arrived is visible (instance, event, node status) and
 *   the step completes once the peer is back; a node that lost the data asks the author again.
 * - a dead or very slow peer delays nobody else: the other two finish their steps; it catches up
 *   later (cut off: connections refused; slowed: connections hang past the sender's timeout).
 * - #1219: a request retried under its Idempotency-Key after its node was killed mid-request
 *   attaches to the original: one envelope, applied once on every node.
 * - #1446: a pin transaction that cannot be sent (no funds) or can never succeed (a batch refused
 *   for its content) blocks nobody else and shows as a clear state and event, not a silent retry.
 * - #493: a WebSocket subscriber gets every event once, in order, while 20 instances run, across
 *   reconnects that resume from a position or from the consumer's last acknowledgement.
 */
import { join } from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import WebSocket from 'ws';
import { startTestNetwork, type BackgroundMiner, type TestNetwork } from './support/network';
import { historyFingerprint } from './support/history';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import type { StepView } from '../src/api/views';
import type { LockstepEvent } from '../src/model/event';

const CONFIRMATIONS = 2;
const PARTIES = ['alpha', 'beta', 'gamma'];
const ROLES = { host: 'alpha', left: 'beta', right: 'gamma' };
let net: TestNetwork;
let mongo: MongoClient;
/** A block every 200 ms (paused by tests that need two steps in flight at once). */
let miner: BackgroundMiner | undefined;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(PARTIES, CONFIRMATIONS, {
    env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'failure-modes'), LOCKSTEP_RESUBMIT_AFTER_MS: '1000' },
    cuttable: ['beta', 'gamma'],
  });
  mongo = await MongoClient.connect(net.stack.network.mongodb.uri);
  miner = net.mineInBackground(200);
}, 180_000);

afterAll(async () => {
  await miner?.stop();
  await mongo?.close();
  await net?.stop();
});


const db = (party: string): Db => mongo.db(net.stack.network.parties[party]!.database);

const history = (party: string, id: string): Promise<StepView[]> => net.history(party, id);

const startLedger = (): Promise<string> => net.startInstance('alpha', 'ledger', ROLES);

/**
 * Proposes a step as a well-behaved app does: a 503 (an invited node still starting the
 * instance's workflow, or a busy worker) is retried after a pause, a bounded number of times.
 */
async function propose(party: string, id: string, step: string, input: unknown = {}): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const res = await net.api(party).post(`/instances/${id}/steps`, { step, input });
    if (res.status === 202) return res.body.envelopeHash as string;
    if (res.status !== 503 || attempt === 10) throw new Error(`${party} ${step}: ${res.status} ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 300 * attempt));
  }
}

/** Waits until `parties` hold the step decided; returns it as the first of them sees it. */
async function decided(parties: string[], id: string, envelopeHash: string, timeoutMs = 60_000): Promise<StepView> {
  const seen = await Promise.all(
    parties.map((p) =>
      eventually(`${envelopeHash.slice(0, 10)} decided on ${p}`, async () => (await history(p, id)).find((s) => s.envelopeHash === envelopeHash && s.status !== 'pending'), timeoutMs),
    ),
  );
  return seen[0]!;
}

async function sameHistoryEverywhere(id: string): Promise<StepView[]> {
  const all = await Promise.all(PARTIES.map((p) => history(p, id)));
  expect(new Set(all.map(historyFingerprint)).size).toBe(1);
  return all[0]!;
}

test('#1324: after a conflict and a missed deadline are rejected on chain, the next steps are final on every node', async () => {
  const id = await startLedger();
  // Both claims in flight at once: neither node can know of the other's.
  miner!.pause();
  let left: string, right: string;
  try {
    [left, right] = await Promise.all([propose('beta', id, 'claim-left'), propose('gamma', id, 'claim-right')]);
    await net.pendingTransactions(2);
  } finally {
    miner!.resume();
  }
  const [l, r] = await Promise.all([decided(PARTIES, id, left), decided(PARTIES, id, right)]);
  const loser = l.status === 'rejected' ? l : r;
  expect([l.status, r.status].sort()).toEqual(['confirmed', 'rejected']);
  expect(loser.rejection).toEqual(expect.objectContaining({ code: 'conflict' }));

  const entry1 = await propose('alpha', id, 'entry', { n: 1 });
  expect((await decided(PARTIES, id, entry1)).status).toBe('confirmed');
  // Chain time jumps two minutes: an acknowledgement proposed now lands past its deadline.
  await net.provider.send('evm_increaseTime', [120]);
  const lateAck = await propose('gamma', id, 'ack');
  const late = await decided(PARTIES, id, lateAck);
  expect(late.status).toBe('rejected');
  expect(late.rejection).toEqual(expect.objectContaining({ code: 'deadline' }));

  // The rejections hold nothing back: the next entry, its timely acknowledgement and the close.
  const entry2 = await propose('alpha', id, 'entry', { n: 2 });
  await decided(PARTIES, id, entry2);
  const ack = await propose('gamma', id, 'ack');
  await decided(PARTIES, id, ack);
  const close = await propose('alpha', id, 'close');
  await decided(PARTIES, id, close);
  const steps = await sameHistoryEverywhere(id);
  expect(steps.map((s) => [s.seq, s.status])).toEqual([[0, 'confirmed'], [1, 'rejected'], [2, 'confirmed'], [3, 'rejected'], [4, 'confirmed'], [5, 'confirmed'], [6, 'confirmed']]);
  for (const p of PARTIES) {
    expect((await net.api(p).get(`/instances/${id}`)).body.instance).toEqual(expect.objectContaining({ status: 'ended', outcome: 'closed' }));
  }
}, 180_000);

test('#663 and a dead peer: the others finish their steps; the cut-off node shows it waits for data, then catches up', async () => {
  const id = await startLedger();
  const claim = await propose('beta', id, 'claim-left');
  await decided(PARTIES, id, claim);
  net.proxy('gamma').cut();
  const entries: string[] = [];
  try {
    // alpha and beta decide every entry while gamma is unreachable (alpha takes the next once its last is final).
    for (let n = 1; n <= 3; n++) {
      entries.push(await propose('alpha', id, 'entry', { n }));
      expect((await decided(['alpha', 'beta'], id, entries[n - 1]!)).status).toBe('confirmed');
    }
    // gamma sees the pins on chain but has no data: it says so on the instance, as an event and in its status.
    const waiting = await eventually('gamma to report the missing data', async () => {
      const w = (await net.api('gamma').get(`/instances/${id}`)).body.waitingForData as { author: string; final: boolean }[];
      return w.length > 0 && w.every((x) => x.author === 'alpha' && x.final) ? w : undefined;
    });
    expect(waiting[0]).toEqual(expect.objectContaining({ author: 'alpha', nonce: 1, hasEnvelope: false }));
    // Apps are told once the data is still missing after a short grace (a pin often beats its data).
    const events = await eventually('a data.waiting event on gamma', async () => {
      const list = (await net.api('gamma').get(`/events?types=data.waiting&instance=${id}`)).body.events as LockstepEvent[];
      return list.length > 0 ? list : undefined;
    });
    expect(events[0]).toEqual(expect.objectContaining({ type: 'data.waiting', instanceId: id, data: { pin: 'alpha/1', waitingFor: 'data' } }));
    const status = (await net.api('gamma').get('/status')).body;
    expect(status.waitingForData).toEqual(expect.objectContaining({ instances: expect.any(Number), pins: expect.any(Number) }));
    expect(status.waitingForData.pins).toBeGreaterThan(0);
    expect((await history('gamma', id)).filter((s) => s.status === 'confirmed')).toHaveLength(1);
    // Asking the author again cannot help while gamma is unreachable: the answer says so.
    const refused = (await net.api('gamma').post(`/instances/${id}/data-requests`, {})).body.requests as { status: string; error?: string }[];
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((r) => r.status === 'failed' && /alpha answered|cannot reach/.test(r.error ?? ''))).toBe(true);
  } finally {
    net.proxy('gamma').restore();
  }
  // Back: gamma asks alpha for what it misses (alpha's own delivery retries would bring it too).
  const requests = (await net.api('gamma').post(`/instances/${id}/data-requests`, {})).body.requests as { author: string; status: string }[];
  expect(requests.every((r) => r.author === 'alpha' && r.status === 'delivered')).toBe(true);
  for (const e of entries) await decided(['gamma'], id, e, 90_000);
  await sameHistoryEverywhere(id);
  expect((await net.api('gamma').get(`/instances/${id}`)).body.waitingForData).toEqual([]);
}, 240_000);

test('a very slow peer (its connections hang past the delivery timeout) delays nobody else; it catches up once fast again', async () => {
  const id = await startLedger();
  await decided(PARTIES, id, await propose('beta', id, 'claim-left'));
  net.proxy('gamma').slow(60_000);
  const entries: string[] = [];
  try {
    for (let n = 1; n <= 2; n++) {
      entries.push(await propose('alpha', id, 'entry', { n }));
      expect((await decided(['alpha', 'beta'], id, entries[n - 1]!)).status).toBe('confirmed');
    }
    for (const p of ['alpha', 'beta']) expect((await history(p, id)).map((s) => s.status)).toEqual(['confirmed', 'confirmed', 'confirmed']);
    expect((await history('gamma', id)).filter((s) => entries.includes(s.envelopeHash))).toEqual([]);
  } finally {
    net.proxy('gamma').slow(0);
  }
  for (const e of entries) await decided(['gamma'], id, e, 120_000);
  await sameHistoryEverywhere(id);
}, 240_000);

test('#1219: a step retried under its Idempotency-Key after its node was killed mid-request is applied once', async () => {
  const id = await startLedger();
  await decided(PARTIES, id, await propose('beta', id, 'claim-left'));
  const body = { step: 'entry', input: { n: 1219 } };
  const headers = { 'Idempotency-Key': `entry-1219-${id}` };
  const first = net.api('alpha').post(`/instances/${id}/steps`, body, { headers }).catch((error: unknown) => error as Error);
  // Kill the node as soon as it has claimed the key, before it can answer.
  await eventually('alpha to claim the key', async () => ((await db('alpha').collection('idempotency').findOne({ state: 'running' })) ? true : undefined), 10_000, 5);
  await net.nodes.kill('alpha', 'SIGKILL');
  const lost = await first;
  await net.nodes.start('alpha');
  const retry = await eventually('the retry to be answered', async () => {
    const res = await net.api('alpha').post(`/instances/${id}/steps`, body, { headers });
    return res.status === 503 ? undefined : res;
  });
  expect(retry.status).toBe(202);
  const envelopeHash = retry.body.envelopeHash as string;
  if (!(lost instanceof Error) && lost.status === 202) expect(lost.body.envelopeHash).toBe(envelopeHash);
  await decided(PARTIES, id, envelopeHash);
  // Asked once more, the key answers with the same step, and nothing new happens.
  const again = await net.api('alpha').post(`/instances/${id}/steps`, body, { headers });
  expect(again.body.envelopeHash).toBe(envelopeHash);
  for (const p of PARTIES) {
    const entries = (await history(p, id)).filter((s) => s.step === 'entry');
    expect(entries.map((s) => [s.envelopeHash, s.status])).toEqual([[envelopeHash, 'confirmed']]);
  }
  await sameHistoryEverywhere(id);
}, 180_000);

test('#1446: a party that cannot pay for its pins shows it and blocks no one else; it catches up once funded', async () => {
  const alpha = net.stack.network.parties.alpha!.address;
  const [stalled, other] = [await startLedger(), await startLedger()];
  await decided(PARTIES, stalled, await propose('beta', stalled, 'claim-left'));
  const balance = (await net.provider.send('eth_getBalance', [alpha, 'latest'])) as string;
  await net.provider.send('anvil_setBalance', [alpha, '0x0']);
  const entry = await propose('alpha', stalled, 'entry', { n: 1 });
  // Other parties' steps, in another instance, go through meanwhile.
  const otherClaim = await propose('gamma', other, 'claim-right');
  expect((await decided(PARTIES, other, otherClaim)).status).toBe('confirmed');
  // alpha's pin cannot be sent: its node says why, and tells its apps.
  const status = await eventually('alpha to report its failing pins', async () => {
    const s = (await net.api('alpha').get('/status')).body;
    return s.batcher?.ok === false ? s : undefined;
  });
  expect(status.batcher.error).toMatch(/insufficient funds|funds/i);
  expect(status.batcher.waitingSteps).toBeGreaterThan(0);
  const failing = await eventually('a pin.failing event on alpha', async () => ((await net.api('alpha').get('/events?types=pin.failing')).body.events as LockstepEvent[])[0]);
  expect(failing.data).toEqual(expect.objectContaining({ reason: expect.stringMatching(/funds/i) }));
  expect((await history('alpha', stalled)).find((s) => s.envelopeHash === entry)?.status).toBe('pending');
  // Funded again, the same step goes out and is final everywhere; the status clears.
  await net.provider.send('anvil_setBalance', [alpha, balance]);
  expect((await decided(PARTIES, stalled, entry, 90_000)).status).toBe('confirmed');
  await eventually('alpha\'s batcher healthy again', async () => ((await net.api('alpha').get('/status')).body.batcher?.ok === true ? true : undefined));
  await sameHistoryEverywhere(stalled);
}, 240_000);

test('#1446: a pin that can never succeed (a batch refused for its content) is set aside with a clear error; the node\'s other steps go through', async () => {
  const id = await startLedger();
  await decided(PARTIES, id, await propose('beta', id, 'claim-left'));
  // A queued pin with a malformed tag (not 8 bytes), found in the durable queue when the node
  // starts (the batcher reads its queue back then): every batch holding it is refused before it is sent.
  const poison = `0x${'ab'.repeat(32)}`;
  await db('alpha').collection('pinQueue').insertOne({ _id: poison, instanceId: id, tag: '0x0102030405', leaf: poison, queuedAt: new Date(0) } as never);
  await net.nodes.kill('alpha', 'SIGTERM');
  await net.nodes.start('alpha');
  const entry = await propose('alpha', id, 'entry', { n: 1446 });
  expect((await decided(PARTIES, id, entry)).status).toBe('confirmed');
  const failed = await eventually('a pin.failed event on alpha', async () => ((await net.api('alpha').get('/events?types=pin.failed')).body.events as LockstepEvent[]).find((e) => e.envelopeHash === poison));
  expect(failed.data).toEqual(expect.objectContaining({ reason: expect.stringMatching(/8-byte|revert/i) }));
  const item = await db('alpha').collection('pinQueue').findOne({ _id: poison as never });
  expect(item).toEqual(expect.objectContaining({ failed: expect.any(String) }));
  // Later steps are not held behind it either.
  const next = await propose('alpha', id, 'entry', { n: 1447 });
  expect((await decided(PARTIES, id, next)).status).toBe('confirmed');
}, 180_000);

/** A WebSocket consumer that acknowledges each event once it has it. */
function subscribe(party: string, query: string, received: LockstepEvent[], stopAfter?: number): { ws: WebSocket; closed: Promise<void> } {
  const url = `${net.stack.network.parties[party]!.apiUrl.replace('http', 'ws')}/api/v1/events/ws?${query}`;
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${net.stack.network.devApiKeys![party]!}` } });
  let taken = 0;
  ws.on('message', (raw) => {
    const msg = JSON.parse((raw as Buffer).toString('utf8')) as { type: string; event?: LockstepEvent };
    if (msg.type !== 'event' || !msg.event) return;
    if (stopAfter !== undefined && taken >= stopAfter) return; // arrived after we decided to hang up: not processed
    received.push(msg.event);
    taken++;
    ws.send(JSON.stringify({ ack: msg.event.seq }));
    if (stopAfter !== undefined && taken === stopAfter) ws.close();
  });
  const closed = new Promise<void>((resolve, reject) => {
    ws.once('close', () => resolve());
    ws.once('error', reject);
  });
  return { ws, closed };
}

test('#493: a WebSocket subscriber gets every event once and in order while 20 instances run, across reconnects', async () => {
  const INSTANCES = 20;
  const start = (await net.api('beta').get('/status')).body.events.head as number;
  const received: LockstepEvent[] = [];
  // First connection: a named consumer from the current head; it hangs up after 40 events.
  const first = subscribe('beta', `consumer=ledger-app&from=${start}`, received, 40);
  await new Promise((r) => first.ws.once('open', r));
  const ids = await Promise.all(Array.from({ length: INSTANCES }, () => startLedger()));
  const claims = await Promise.all(ids.map((id) => propose('beta', id, 'claim-left')));
  await first.closed;
  // Second: resumes after the last event it processed (`from`), hangs up after 40 more.
  const second = subscribe('beta', `consumer=ledger-app&from=${received[received.length - 1]!.seq}`, received, 40);
  await Promise.all(ids.map(async (id, i) => decided(['alpha', 'beta'], id, claims[i]!, 300_000)));
  const closes = await Promise.all(ids.map((id) => propose('alpha', id, 'close')));
  await second.closed;
  // Third: resumes after the consumer's last acknowledgement.
  const third = subscribe('beta', 'consumer=ledger-app', received);
  await Promise.all(ids.map(async (id, i) => decided(['beta'], id, closes[i]!, 300_000)));

  // Everything the node logged since `start`, read over REST.
  const logged: LockstepEvent[] = [];
  for (let after = start; ; ) {
    const page = (await net.api('beta').get(`/events?after=${after}&limit=200`)).body as { events: LockstepEvent[]; next: number | null };
    logged.push(...page.events);
    if (!page.next || page.events.length === 0) break;
    after = page.next;
  }
  const lastLogged = logged[logged.length - 1]!.seq;
  await eventually('the third connection to catch up', () => Promise.resolve(received[received.length - 1]!.seq >= lastLogged ? true : undefined), 60_000);
  third.ws.close();
  await third.closed;
  // Across the three connections: every logged event exactly once, in order, no gaps.
  expect(received.map((e) => e.seq)).toEqual(logged.map((e) => e.seq));
  expect(received.map((e) => e.type)).toEqual(logged.map((e) => e.type));
  expect(logged.filter((e) => e.type === 'step.confirmed')).toHaveLength(INSTANCES * 2);
  expect(logged.filter((e) => e.type === 'instance.ended')).toHaveLength(INSTANCES);
}, 900_000);
