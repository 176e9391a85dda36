/**
 * Fuzzing, on the real stack: a few hundred seeded bad requests at a node's REST API and at a
 * peer's data-exchange endpoint (malformed JSON, wrong content types, wrong types for every
 * field, bodies over the limit, nesting thousands deep, unknown fields, unicode edge cases, bad
 * ids and query parameters), and at the event WebSocket (bad subscriptions, bad acks). Each must
 * be a 4xx problem+json (or a WebSocket error message) naming the problem, in time; the nodes must
 * stay up; and nothing may be stored, in MongoDB or in Temporal.
 *
 * The seed is printed; LOCKSTEP_FUZZ_SEED=<seed> replays a run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { MongoClient } from 'mongodb';
import { Client, Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { instanceWorkflowId, proposeUpdate } from '../workflows/messages';
import WebSocket from 'ws';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { EXCHANGE_BODY_LIMIT_BYTES } from '../src/exchange/server';
import { generateCases, seededRandom, type FuzzCase, type FuzzContext } from './support/fuzz-inputs';

const PARTIES = ['alpha', 'beta'];
const BODY_LIMIT = 65_536;
const CASES = 300;
const REQUEST_TIMEOUT_MS = 15_000;
const SEED = process.env.LOCKSTEP_FUZZ_SEED ? Number(process.env.LOCKSTEP_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);

/**
 * What a refused request must not change. Left out: `idempotency` (a refused request's response
 * is kept under its key, so a retry gets the same answer), the events' key documents and
 * `counters` (they follow the events, which are counted here by type), `checkpoints` (the chain
 * listener's, moved by time).
 */
const WATCHED = ['instances', 'steps', 'step_data', 'slots', 'tags', 'unsettled', 'pinQueue', 'batches', 'webhooks', 'webhook_deliveries', 'event_consumers'];

let net: TestNetwork;
let mongo: MongoClient;
let temporal: Connection;
let ctx: FuzzContext;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(PARTIES, 1, { env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'definitions'), LOCKSTEP_BODY_LIMIT_BYTES: String(BODY_LIMIT) } });
  mongo = await MongoClient.connect(net.stack.network.mongodb.uri);
  temporal = await Connection.connect({ address: net.stack.network.temporal.address });
  const definitionHash = (await net.api('alpha').get('/definitions/race')).body.hash as string;
  const res = await net.api('alpha').post('/instances', { definition: 'race', roles: { host: 'alpha', left: 'beta', right: 'beta' } });
  const instanceId = res.body.instance.id as string;
  await eventually('the instance on beta', async () => ((await net.api('beta').get(`/instances/${instanceId}`)).status === 200 ? true : undefined), 60_000);
  ctx = {
    instanceId,
    definitionHash,
    apiKey: net.stack.network.devApiKeys!.alpha!,
    bodyLimitBytes: { rest: BODY_LIMIT, dx: EXCHANGE_BODY_LIMIT_BYTES },
    signer: new Wallet(net.stack.network.devKeys!.alpha!),
    signerName: 'alpha',
    receiverName: 'beta',
  };
}, 240_000);

afterAll(async () => {
  await mongo?.close();
  await temporal?.close();
  await net?.stop();
});

/** Documents per watched collection and events other than `security.refused`, per party; workflows per namespace. */
async function snapshot(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const party of PARTIES) {
    const db = mongo.db(net.stack.network.parties[party]!.database);
    for (const name of WATCHED) counts[`${party}.${name}`] = await db.collection(name).countDocuments({});
    // Events proper (`type`), not their key documents beside them.
    counts[`${party}.events`] = await db.collection('events').countDocuments({ type: { $exists: true, $ne: 'security.refused' } });
    const client = new Client({ connection: temporal, namespace: net.stack.network.parties[party]!.namespace });
    counts[`${party}.workflows`] = (await client.workflow.count()).count;
  }
  return counts;
}

interface Outcome {
  status: number;
  contentType: string;
  body: { code?: string; detail?: string; status?: number };
}

async function send(c: FuzzCase): Promise<Outcome> {
  const party = c.target === 'dx' ? 'beta' : 'alpha';
  const base = c.target === 'dx' ? net.stack.network.parties[party]!.dxUrl : net.stack.network.parties[party]!.apiUrl;
  const res = await fetch(`${base}${c.path}`, { method: c.method, headers: c.headers, body: c.body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await res.text();
  let body: Outcome['body'] = {};
  try {
    body = JSON.parse(text) as Outcome['body'];
  } catch {
    body = { detail: `(not JSON) ${text.slice(0, 200)}` };
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
}

const WS_PATH = '/api/v1/events/ws';

/** Bad subscriptions: refused before the upgrade, with the status that names the problem. */
const BAD_UPGRADES: Array<{ query: string; auth: boolean; path?: string; status: number }> = [
  { query: 'types=step.nothing', auth: true, status: 400 }, { query: 'from=-1', auth: true, status: 400 }, { query: 'from=1.5', auth: true, status: 400 },
  { query: 'from=abc', auth: true, status: 400 }, { query: 'consumer=%00', auth: true, status: 400 }, { query: `consumer=${'c'.repeat(65)}`, auth: true, status: 400 },
  { query: 'consumer=%F0%9F%98%80', auth: true, status: 400 }, { query: '', auth: false, status: 401 }, { query: '', auth: true, path: `${WS_PATH}x`, status: 404 },
];

/** Bad messages on an open subscription: each must be answered with an error and change nothing. */
const BAD_MESSAGES: Array<string | Buffer> = [
  'not json', '{"ack":-1}', '{"ack":1.5}', '{"ack":"1"}', '{"ack":null}', '{"ack":1e300}', '{"ack":999999999}', '[]', 'null', '{}',
  `${'['.repeat(10_000)}1${']'.repeat(10_000)}`, `{"ack":${'['.repeat(5_000)}1${']'.repeat(5_000)}}`, '{"ack":"\ud800"}', Buffer.from([0xff, 0xfe, 0x00, 0x01]),
];

function wsUrl(query: string, path = WS_PATH): string {
  return `${net.stack.network.parties.alpha!.apiUrl.replace(/^http/, 'ws')}${path}${query ? `?${query}` : ''}`;
}

/** The HTTP status a WebSocket upgrade gets (101 when it is accepted). */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: REQUEST_TIMEOUT_MS });
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', reject);
  });
}

/** Sends each bad message on one subscription; returns the faults (a message not answered with an error). */
async function fuzzSubscription(rng: () => number, count: number): Promise<string[]> {
  const ws = new WebSocket(wsUrl(`consumer=fuzz-${SEED}`), { headers: { authorization: `Bearer ${ctx.apiKey}` } });
  const inbox: Array<{ type: string; detail?: string }> = [];
  let waiter: (() => void) | undefined;
  ws.on('message', (raw: WebSocket.RawData) => {
    inbox.push(JSON.parse((raw as Buffer).toString('utf8')) as { type: string; detail?: string });
    waiter?.();
  });
  const next = async (): Promise<{ type: string; detail?: string } | undefined> => {
    if (inbox.length === 0) await new Promise<void>((resolve) => ((waiter = resolve), setTimeout(resolve, REQUEST_TIMEOUT_MS)));
    waiter = undefined;
    return inbox.shift();
  };
  const faults: string[] = [];
  try {
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    if ((await next())?.type !== 'ready') faults.push('ws: no ready message');
    for (let i = 0; i < count; i++) {
      const message = BAD_MESSAGES[Math.floor(rng() * BAD_MESSAGES.length)]!;
      ws.send(message);
      const answer = await next();
      if (answer?.type !== 'error' || !/ack/.test(answer.detail ?? '')) faults.push(`ws message ${String(message).slice(0, 40)}: answered ${JSON.stringify(answer)}`);
    }
    if (ws.readyState !== WebSocket.OPEN) faults.push('ws: the subscription was closed by bad messages');
  } finally {
    ws.close();
  }
  return faults;
}

/**
 * Swaps a payload `{"raw": "<JSON text>"}` for that text: how the Temporal UI can hand a workflow
 * a value no JS client could serialise (the UI sends the JSON a person typed).
 */
const rawJson: PayloadCodec = {
  encode: (payloads) =>
    Promise.resolve(
      payloads.map((p) => {
        const value = JSON.parse(new TextDecoder().decode(p.data ?? new Uint8Array())) as { raw?: unknown } | null;
        return typeof value?.raw === 'string' ? { ...p, data: new TextEncoder().encode(value.raw) } : p;
      }),
    ),
  decode: (payloads) => Promise.resolve(payloads),
};

/** Step data too deep to serialise, or not well-formed, sent straight to the workflow's propose Update: each refused by its validator. */
async function fuzzUpdates(): Promise<{ tried: number; faults: string[] }> {
  const client = new Client({ connection: temporal, namespace: net.stack.network.parties.alpha!.namespace, dataConverter: { payloadCodecs: [rawJson] } });
  const handle = client.workflow.getHandle(instanceWorkflowId(ctx.instanceId));
  // JSON texts: 10,000 levels deep, a lone surrogate escape, a NUL escape in a key, 70 levels deep.
  const inputs = [`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, '{"text":"\\ud800"}', '{"a\\u0000b":1}', `${'['.repeat(70)}1${']'.repeat(70)}`];
  const faults: string[] = [];
  for (const input of inputs) {
    try {
      // An accepted value too deep to serialise leaves the Update unanswered (the workflow task fails on every attempt).
      const answer = handle.executeUpdate(proposeUpdate, { args: [{ raw: `{"step":"note-host","input":${input}}` } as never] });
      answer.catch(() => undefined); // settled by the race below, or abandoned after it
      const outcome = await Promise.race([answer.then(() => 'accepted'), new Promise((resolve) => setTimeout(resolve, REQUEST_TIMEOUT_MS, 'no answer'))]);
      faults.push(`propose Update with input ${input.slice(0, 30)}: ${String(outcome)}`);
    } catch (error) {
      const message = `${(error as Error).message} ${String((error as { cause?: Error }).cause?.message)}`;
      if (!/nested deeper|surrogate|NUL/.test(message)) faults.push(`propose Update with input ${input.slice(0, 30)}: ${message}`);
    }
  }
  return { tried: inputs.length, faults };
}

/** Error-level lines in the nodes' logs: a refusal that logged an internal error was not handled cleanly. */
function loggedErrors(): number {
  return PARTIES.map((p) => readFileSync(net.nodes.logs[p]!, 'utf8').split('\n').filter((line) => line.includes('"level":50')).length).reduce((a, b) => a + b, 0);
}

/** Why an outcome is wrong for its case, or undefined when it is right. */
function fault(c: FuzzCase, o: Outcome): string | undefined {
  if (o.status >= 500) return `5xx ${o.status}: ${o.body.detail}`;
  if (!c.statuses.includes(o.status)) return `status ${o.status}, expected ${c.statuses.join(' or ')}: ${o.body.detail}`;
  if (!o.contentType.startsWith('application/problem+json')) return `content type ${o.contentType}`;
  if (typeof o.body.code !== 'string' || o.body.status !== o.status) return `not a problem document: ${JSON.stringify(o.body).slice(0, 200)}`;
  if (!c.detail.test(o.body.detail ?? '')) return `detail "${o.body.detail?.slice(0, 300)}" does not match ${c.detail}`;
  return undefined;
}

test('a few hundred bad inputs are each refused with a 4xx naming the problem, and nothing is stored', async () => {
  console.log(`fuzz seed ${SEED} (replay with LOCKSTEP_FUZZ_SEED=${SEED})`);
  const cases = generateCases(SEED, CASES, ctx);
  const before = await snapshot();
  const pidsBefore = net.nodes.pids();
  const errorsBefore = loggedErrors();
  const faults: string[] = [];
  let crashes = 0;
  let fiveXx = 0;
  for (const [i, c] of cases.entries()) {
    let outcome: Outcome;
    try {
      outcome = await send(c);
    } catch (error) {
      // A reset connection or a request that never answers is as bad as a 500.
      crashes += 1;
      faults.push(`#${i} ${c.target} ${c.method} ${c.label}: no answer (${(error as Error).message})`);
      continue;
    }
    if (outcome.status >= 500) fiveXx += 1;
    const why = fault(c, outcome);
    if (why) faults.push(`#${i} ${c.target} ${c.method} ${c.path.slice(0, 80)} [${c.label}]: ${why}`);
  }
  const rng = seededRandom(SEED ^ 0x5eed);
  let ws = 0;
  for (const bad of BAD_UPGRADES) {
    const status = await upgradeStatus(wsUrl(bad.query, bad.path), bad.auth ? { authorization: `Bearer ${ctx.apiKey}` } : {});
    ws += 1;
    if (status !== bad.status) faults.push(`ws upgrade ?${bad.query.slice(0, 40)}: status ${status}, expected ${bad.status}`);
  }
  const messages = 40;
  faults.push(...(await fuzzSubscription(rng, messages)));
  ws += messages;
  const updates = await fuzzUpdates();
  faults.push(...updates.faults);
  // Give anything a refused request might have set going (a workflow, a write) time to show.
  await new Promise((r) => setTimeout(r, 1000));
  const after = await snapshot();
  const stored = Object.keys(before).filter((k) => after[k] !== before[k]).map((k) => `${k} ${before[k]} -> ${after[k]}`);
  for (const party of PARTIES) {
    if (net.nodes.pids()[party] !== pidsBefore[party]) crashes += 1;
    const status = await fetch(`${net.stack.network.parties[party]!.apiUrl}/api/v1/status`);
    if (!status.ok) faults.push(`${party} is not healthy afterwards: ${status.status}`);
  }
  const errorsLogged = loggedErrors() - errorsBefore;
  if (errorsLogged > 0) faults.push(`${errorsLogged} error-level lines in the node logs`);
  const rest = cases.filter((c) => c.target === 'rest').length;
  console.log(`fuzz: ${cases.length + ws + updates.tried} bad inputs tried (REST ${rest}, DX ${cases.length - rest}, WebSocket ${ws}, Temporal Update ${updates.tried}), ${crashes} crashes, ${fiveXx} 5xx, ${stored.length} stored`);
  if (faults.length + stored.length > 0) console.log(`node logs in ${net.dir}`);
  expect({ faults, stored, crashes, fiveXx }).toEqual({ faults: [], stored: [], crashes: 0, fiveXx: 0 });
  expect(rest).toBeGreaterThan(100);
  expect(cases.length - rest).toBeGreaterThan(50);
}, 180_000);
