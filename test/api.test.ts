/**
 * The REST API on the real stack: authentication and roles, idempotency, waiting for a step to be
 * confirmed, filters and cursor pagination, tasks, status, the OpenAPI document and Swagger UI,
 * and problem+json for every kind of bad request.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { MongoClient } from 'mongodb';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { definitionsWith } from './support/definitions-dir';
import { quietTemporalRuntime } from './support/quiet-runtime';
import type { ApiClient } from '../src/api/client';
import { repoRoot } from '../src/paths';

const OPS = 'ops-app-key-0123456789abcdef'; // any role
const ERP = 'erp-app-key-0123456789abcdef'; // buyer and requester only
const WMS = 'wms-app-key-0123456789abcdef'; // seller only
const KEYS = [
  { key: OPS, app: 'ops', roles: ['*'] },
  { key: ERP, app: 'erp', roles: ['buyer', 'requester'] },
  { key: WMS, app: 'wms', roles: ['seller'] },
];
const ORDER = { sku: 'BOLT-M8', quantity: 500, unitPrice: 0.12 };

let net: TestNetwork;
let acme: ApiClient;
let globex: ApiClient;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(['acme', 'globex'], 1, {
    env: {
      LOCKSTEP_API_KEYS: JSON.stringify(KEYS),
      LOCKSTEP_BODY_LIMIT_BYTES: '4096',
      LOCKSTEP_DEFINITIONS: definitionsWith('approval.yaml', 'race.yaml'),
    },
  });
  acme = net.api('acme').withKey(OPS);
  globex = net.api('globex').withKey(OPS);
}, 180_000);

afterAll(async () => {
  await net?.stop();
});

async function startOrder(api: ApiClient = acme, headers: Record<string, string> = {}) {
  return api.post('/instances', { definition: 'purchase-order', roles: { buyer: 'acme', seller: 'globex' } }, { headers });
}

async function startedOrder(): Promise<string> {
  const res = await startOrder();
  expect(res.status).toBe(201);
  const id = res.body.instance.id as string;
  await eventually(`instance ${id} on globex`, async () => ((await globex.get(`/instances/${id}`)).status === 200 ? true : undefined));
  return id;
}

function expectProblem(res: { status: number; contentType: string | null; body: any }, status: number, field?: string) {
  expect(res.status).toBe(status);
  expect(res.contentType).toContain('application/problem+json');
  expect(res.body).toEqual(expect.objectContaining({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String) }));
  if (field) expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
}

describe('authentication', () => {
  test('no key, a bad key: 401; the dev key is not accepted once keys are configured', async () => {
    expectProblem(await net.api('acme').withKey(undefined).get('/instances'), 401, 'Authorization');
    expectProblem(await net.api('acme').withKey('not-a-key-at-all-0000').get('/instances'), 401, 'Authorization');
    expectProblem(await net.api('acme').get('/instances'), 401);
  });

  test('X-API-Key works as well as a bearer token', async () => {
    const res = await net.api('acme').withKey(undefined).request('GET', '/definitions', undefined, { headers: { 'x-api-key': ERP } });
    expect(res.status).toBe(200);
  });

  test('an app acting outside its roles: 403', async () => {
    // wms may act only as seller; acme is the buyer here.
    expectProblem(await startOrder(net.api('acme').withKey(WMS)), 403, '/roles');
    const id = await startedOrder();
    // erp may act only as buyer; "accept" is the seller's (globex's) step.
    expectProblem(await net.api('globex').withKey(ERP).post(`/instances/${id}/steps`, { step: 'accept', input: { deliveryDate: '2026-12-01' } }), 403, '/step');
    expect((await globex.get(`/instances/${id}/steps`)).body.steps).toEqual([]);
  });

  test('status and the OpenAPI document need no key', async () => {
    expect((await net.api('acme').withKey(undefined).get('/status')).status).toBe(200);
    expect((await net.api('acme').withKey(undefined).get('/openapi.json')).status).toBe(200);
  });
});

describe('errors are problem+json', () => {
  test('malformed JSON: 400', async () => {
    expectProblem(await acme.request('POST', '/instances', undefined, { rawBody: '{"definition": ' }), 400);
  });

  test('a body over the limit: 413', async () => {
    expectProblem(await acme.post('/instances', { definition: 'purchase-order', roles: { buyer: 'acme', seller: 'globex' }, pad: 'x'.repeat(8192) }), 413);
  });

  test('input violating the step schema: 422 naming the field, and nothing recorded', async () => {
    const id = await startedOrder();
    expectProblem(await acme.post(`/instances/${id}/steps`, { step: 'order', input: { ...ORDER, quantity: 0 } }), 422, '/input/quantity');
    expectProblem(await acme.post('/instances', { definition: 'purchase-order', roles: { buyer: 'acme' } }), 422, '/roles/seller');
    expect((await acme.get(`/instances/${id}/steps`)).body.steps).toEqual([]);
  });

  test('unknown instance, step, definition, route: 404', async () => {
    expectProblem(await acme.get('/instances/no-such-instance'), 404, 'instanceId');
    expectProblem(await acme.get('/instances/no-such-instance/steps'), 404);
    expectProblem(await acme.post('/instances/no-such-instance/steps', { step: 'order', input: ORDER }), 404);
    expectProblem(await acme.get('/definitions/no-such-definition'), 404);
    expectProblem(await acme.get('/nothing-here'), 404);
    const id = await startedOrder();
    expectProblem(await acme.post(`/instances/${id}/steps`, { step: 'refund', input: {} }), 404, '/step');
    expectProblem(await acme.get(`/instances/${id}/steps/0x${'0'.repeat(64)}`), 404);
  });

  test('bad query parameters: 400 naming the parameter', async () => {
    expectProblem(await acme.get('/instances?status=sleeping'), 400, '?status');
    expectProblem(await acme.get('/history?from=yesterday'), 400, '?from');
    expectProblem(await acme.get('/history?limit=0'), 400, '?limit');
    expectProblem(await acme.get('/history?cursor=garbage'), 400, '?cursor');
  });
});

describe('idempotency', () => {
  test('a repeat returns the first response and starts nothing; another body with the key is refused', async () => {
    const key = `start-${Date.now()}`;
    const first = await startOrder(acme, { 'Idempotency-Key': key });
    expect(first.status).toBe(201);
    const again = await startOrder(acme, { 'Idempotency-Key': key });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    const created = (await acme.get('/instances?limit=500')).body.instances.filter((i: any) => i.id === first.body.instance.id || i.createdAt === first.body.instance.createdAt);
    expect(created).toHaveLength(1);

    const other = await acme.post('/instances', { definition: 'purchase-order', roles: { buyer: 'acme', seller: 'acme' } }, { headers: { 'Idempotency-Key': key } });
    expectProblem(other, 422, 'Idempotency-Key');
  });

  test('keys are per app: another app may use the same key', async () => {
    const key = `shared-${Date.now()}`;
    const a = await startOrder(acme, { 'Idempotency-Key': key });
    const b = await startOrder(net.api('acme').withKey(ERP), { 'Idempotency-Key': key });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.instance.id).not.toBe(a.body.instance.id);
  });

  test('a refusal is replayed too, and a repeat while the first still runs is 409 "in progress"', async () => {
    const id = await startedOrder();
    const refusedKey = `refused-${Date.now()}`;
    const refused = await acme.post(`/instances/${id}/steps`, { step: 'accept', input: { deliveryDate: '2026-12-01' } }, { headers: { 'Idempotency-Key': refusedKey } });
    expectProblem(refused, 403);
    const refusedAgain = await acme.post(`/instances/${id}/steps`, { step: 'accept', input: { deliveryDate: '2026-12-01' } }, { headers: { 'Idempotency-Key': refusedKey } });
    expect(refusedAgain.status).toBe(403);
    expect(refusedAgain.body).toEqual(refused.body);
    expect(refusedAgain.headers.get('idempotent-replayed')).toBe('true');

    const key = `step-${Date.now()}`;
    const waiting = acme.post(`/instances/${id}/steps?wait=confirmed&timeout=60`, { step: 'order', input: ORDER }, { headers: { 'Idempotency-Key': key } });
    await net.pendingTransactions(1);
    const meanwhile = await acme.post(`/instances/${id}/steps?wait=confirmed&timeout=60`, { step: 'order', input: ORDER }, { headers: { 'Idempotency-Key': key } });
    expectProblem(meanwhile, 409, 'Idempotency-Key');
    await net.mine(1);
    const done = await waiting;
    expect(done.status).toBe(200);
    const replay = await acme.post(`/instances/${id}/steps?wait=confirmed&timeout=60`, { step: 'order', input: ORDER }, { headers: { 'Idempotency-Key': key } });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(done.body);
    expect((await acme.get(`/instances/${id}/steps`)).body.steps).toHaveLength(1);
  });
});

describe('steps', () => {
  test('wait=confirmed returns the final step; without it (or on timeout) 202 with a reference', async () => {
    const id = await startedOrder();
    const waiting = acme.post(`/instances/${id}/steps?wait=confirmed&timeout=60`, { step: 'order', input: ORDER });
    await net.pendingTransactions(1);
    await net.mine(1);
    const done = await waiting;
    expect(done.status).toBe(200);
    expect(done.body.step).toEqual(expect.objectContaining({ step: 'order', status: 'confirmed', seq: 0, author: 'acme' }));
    await eventually('order confirmed on globex', async () => ((await globex.get(`/instances/${id}/steps`)).body.steps[0]?.status === 'confirmed' ? true : undefined), 90_000);

    const timedOut = await globex.post(`/instances/${id}/steps?wait=confirmed&timeout=1`, { step: 'accept', input: { deliveryDate: '2026-12-01' } });
    expect(timedOut.status).toBe(202);
    expect(timedOut.headers.get('location')).toBe(`/api/v1/instances/${id}/steps/${timedOut.body.envelopeHash}`);
    const polled = await globex.get(`/instances/${id}/steps/${timedOut.body.envelopeHash}`);
    expect(polled.body.step.status).toBe('pending');
    await net.pendingTransactions(1);
    await net.mine(1);
    const steps = await eventually('accept confirmed on acme', async () => {
      const list = (await acme.get(`/instances/${id}/steps`)).body.steps;
      return list.length === 2 && list[1].status === 'confirmed' ? list : undefined;
    });
    expect(steps.map((s: any) => `${s.seq}:${s.step}`)).toEqual(['0:order', '1:accept']);
  });

  test("a step whose request just fits the body limit reaches the peer, whose data exchange takes the envelope around it, whatever the peer's own limit", async () => {
    const id = await startedOrder();
    const take = async (api: ApiClient, step: string, input: unknown) => {
      const waiting = api.post(`/instances/${id}/steps?wait=confirmed&timeout=60`, { step, input });
      await net.pendingTransactions(1);
      await net.mine(1);
      const res = await waiting;
      if (res.status !== 200) throw new Error(`${step}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      return res.body.step as { envelopeHash: string };
    };
    await take(acme, 'order', ORDER);
    await eventually('order confirmed on globex', async () => ((await globex.get(`/instances/${id}/steps`)).body.steps[0]?.status === 'confirmed' ? true : undefined), 60_000);
    await take(globex, 'accept', { deliveryDate: '2026-12-01' });

    // A consignment of many parcels: under the 4 KB limit as a request; the envelope, salt,
    // signature and receipt around it take it over.
    const trackingId = Array.from({ length: 330 }, (_, i) => `TRK-${String(i).padStart(6, '0')}`).join(' ');
    const body = { step: 'ship', input: { carrier: 'DHL', trackingId } };
    expect(Buffer.byteLength(JSON.stringify(body))).toBeGreaterThan(3_500);
    expect(Buffer.byteLength(JSON.stringify(body))).toBeLessThan(4096);
    const shipped = await take(globex, 'ship', body.input);
    const onAcme = await eventually('ship confirmed on acme', async () => {
      const res = await acme.get(`/instances/${id}/steps/${shipped.envelopeHash}`);
      return res.status === 200 && res.body.step.status === 'confirmed' ? res.body.step : undefined;
    }, 60_000);
    expect(onAcme.input).toEqual(body.input);
  });
});

describe('tasks', () => {
  test('lists the steps this party may take now, human ones flagged, only for roles the app may act in', async () => {
    const start = await acme.post('/instances', { definition: 'approval', roles: { requester: 'acme', approver: 'globex' } });
    expect(start.status).toBe(201);
    const id = start.body.instance.id as string;
    await eventually('approval on globex', async () => ((await globex.get(`/instances/${id}`)).status === 200 ? true : undefined));
    const mine = (await acme.get('/tasks')).body.tasks.filter((t: any) => t.instanceId === id);
    expect(mine).toEqual([expect.objectContaining({ step: 'request', actor: 'requester', human: null })]);
    expect((await globex.get('/tasks')).body.tasks.filter((t: any) => t.instanceId === id)).toEqual([]);

    const waiting = acme.post(`/instances/${id}/steps?wait=confirmed`, { step: 'request', input: { amount: 120 } });
    await net.pendingTransactions(1);
    expect((await acme.get('/tasks')).body.tasks.filter((t: any) => t.instanceId === id)).toEqual([]); // proposed already
    await net.mine(1);
    expect((await waiting).status).toBe(200);
    const human = await eventually('approve task on globex', async () => {
      const tasks = (await globex.get('/tasks?kind=human')).body.tasks.filter((t: any) => t.instanceId === id);
      return tasks.length > 0 ? tasks : undefined;
    });
    expect(human).toEqual([expect.objectContaining({ step: 'approve', actor: 'approver', human: { assignee: 'approver', form: 'approval-form', instructions: 'Check the amount against the budget.' } })]);
    // wms acts only as seller: the approver's task is not its to see.
    expect((await net.api('globex').withKey(WMS).get('/tasks')).body.tasks.filter((t: any) => t.instanceId === id)).toEqual([]);
  });

  test("each node keeps its party's open steps on the instance, and the listing reads them, not the history", async () => {
    const mongo = await MongoClient.connect(net.stack.network.mongodb.uri);
    try {
      const instances = (party: string) => mongo.db(net.stack.network.parties[party]!.database).collection<{ _id: string; openSteps?: string[] }>('instances');
      const openSteps = async (party: string, id: string) => (await instances(party).findOne({ _id: id }))?.openSteps;
      const listed = async (party: string, id: string) => (await net.api(party).withKey(OPS).get('/tasks')).body.tasks.filter((t: any) => t.instanceId === id).map((t: any) => t.step);

      const start = await acme.post('/instances', { definition: 'approval', roles: { requester: 'acme', approver: 'globex' } });
      expect(start.status).toBe(201);
      const id = start.body.instance.id as string;
      await eventually('approval on globex', async () => ((await globex.get(`/instances/${id}`)).status === 200 ? true : undefined));
      // Stored with the instance, on the node that started it and on the one it invited.
      expect(await openSteps('acme', id)).toEqual(['request']);
      expect(await openSteps('globex', id)).toEqual([]);

      const waiting = acme.post(`/instances/${id}/steps?wait=confirmed`, { step: 'request', input: { amount: 80 } });
      await net.pendingTransactions(1);
      await net.mine(1);
      expect((await waiting).status).toBe(200);
      // The decision moves them on every node.
      await eventually('open steps moved on globex', async () => ((await openSteps('globex', id))?.[0] === 'approve' ? true : undefined));
      expect(await openSteps('globex', id)).toEqual(['approve']);
      await eventually('open steps moved on acme', async () => ((await openSteps('acme', id))?.length === 0 ? true : undefined));
      expect(await listed('globex', id)).toEqual(['approve']);

      // What the node lists is what the instance records, whatever its history would say.
      await instances('globex').updateOne({ _id: id }, { $set: { openSteps: [] } });
      expect(await listed('globex', id)).toEqual([]);
      // An instance stored before nodes kept the record has its open steps derived from its history.
      await instances('globex').updateOne({ _id: id }, { $unset: { openSteps: '' } });
      expect(await listed('globex', id)).toEqual(['approve']);
    } finally {
      await mongo.close();
    }
  });

  test('a page at a time: a cursor walk lists every task once, oldest instance first, a page ending inside an instance included', async () => {
    // Three steps open for acme in each race (host and left are acme's roles), none for globex.
    const races: string[] = [];
    for (let i = 0; i < 2; i++) {
      const start = await acme.post('/instances', { definition: 'race', roles: { host: 'acme', left: 'acme', right: 'globex' } });
      expect(start.status).toBe(201);
      races.push(start.body.instance.id as string);
    }
    const all = (await acme.get('/tasks?limit=500')).body;
    expect(all.next).toBeNull();
    const key = (t: any) => `${t.instanceId}/${t.step}`;
    for (const id of races) expect(all.tasks.filter((t: any) => t.instanceId === id).map((t: any) => t.step)).toEqual(['open', 'note-host', 'note-left']);
    // One instance's.
    const one = (await acme.get(`/tasks?instance=${races[1]}`)).body;
    expect([one.tasks.map((t: any) => `${t.instanceId}/${t.step}`), one.next]).toEqual([['open', 'note-host', 'note-left'].map((step) => `${races[1]}/${step}`), null]);

    const walked: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const res: any = await acme.get(`/tasks?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.tasks.length).toBeLessThanOrEqual(2);
      walked.push(...res.body.tasks.map(key));
      cursor = res.body.next;
      if (!cursor) break;
    }
    expect(cursor).toBeNull();
    expect(walked).toEqual(all.tasks.map(key));

    // A cursor belongs to its query.
    const first: any = await acme.get('/tasks?limit=1');
    expectProblem(await acme.get(`/tasks?limit=1&kind=human&cursor=${first.body.next}`), 400, '?cursor');
    expectProblem(await acme.get('/tasks?cursor=garbage'), 400, '?cursor');
  });
});

describe('queries', () => {
  test('instances: filters on definition, status, role, party and creation time', async () => {
    const before = new Date().toISOString();
    const id = await startedOrder();
    const list = async (q: string) => (await acme.get(`/instances?${q}`)).body.instances.map((i: any) => i.id);
    expect(await list(`definition=purchase-order&createdFrom=${before}`)).toEqual([id]);
    expect(await list(`definition=approval&createdFrom=${before}`)).toEqual([]);
    expect(await list(`status=active&role=buyer&party=globex&createdFrom=${before}`)).toEqual([id]);
    expect(await list(`role=seller&createdFrom=${before}`)).toEqual([]);
    expect(await list(`status=ended&createdFrom=${before}`)).toEqual([]);
    expect(await list(`createdTo=${before}`)).not.toContain(id);
  });

  test('history: a cursor walk returns every item once, in order, in both directions', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await startedOrder());
    for (const id of ids) {
      const posted = await acme.post(`/instances/${id}/steps`, { step: 'order', input: { ...ORDER, note: id } });
      expect(posted.status).toBe(202);
      // Stored by the time of the answer: its Location reads it at once.
      expect((await acme.get(posted.headers.get('location')!.replace('/api/v1', ''))).body.step).toMatchObject({ status: 'pending', input: { note: id } });
    }
    // Their pins go out in one to three transactions, as the batcher cuts them: mine until all three are final.
    await eventually('the three orders confirmed', async () => {
      await net.mine(1);
      const statuses = await Promise.all(ids.map(async (id) => (await acme.get(`/instances/${id}/steps`)).body.steps[0]?.status));
      return statuses.every((status) => status === 'confirmed') ? true : undefined;
    });

    const all = (await acme.get('/history?step=order&author=acme&limit=500')).body.steps;
    expect(all.length).toBeGreaterThanOrEqual(3);
    for (const order of ['asc', 'desc']) {
      const walked: any[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 100; page++) {
        const res: any = await acme.get(`/history?step=order&author=acme&order=${order}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        expect(res.body.steps.length).toBeLessThanOrEqual(2);
        walked.push(...res.body.steps);
        cursor = res.body.next;
        if (!cursor) break;
      }
      const expected = order === 'asc' ? all : [...all].reverse();
      expect(walked.map((s) => s.envelopeHash)).toEqual(expected.map((s: any) => s.envelopeHash));
      expect(new Set(walked.map((s) => s.envelopeHash)).size).toBe(walked.length);
    }
    const keys = all.map((s: any) => `${s.proposedAt}|${s.envelopeHash}`);
    expect(keys).toEqual([...keys].sort());

    // Filters: by instance, by status, by time range; a cursor does not carry over to another query.
    const one = await acme.get(`/history?instance=${ids[0]}`);
    expect(one.body.steps.map((s: any) => s.instanceId)).toEqual([ids[0]]);
    expect((await acme.get(`/history?status=rejected&instance=${ids[0]}`)).body.steps).toEqual([]);
    expect((await acme.get(`/history?from=${new Date(Date.now() + 60_000).toISOString()}`)).body.steps).toEqual([]);
    const first = await acme.get('/history?step=order&limit=1');
    expectProblem(await acme.get(`/history?step=accept&limit=1&cursor=${first.body.next}`), 400, '?cursor');
  });

  test('instances: a cursor walk returns every instance once, newest first', async () => {
    const all = (await acme.get('/instances?definition=purchase-order&limit=500')).body.instances.map((i: any) => i.id);
    const walked: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 200; page++) {
      const res: any = await acme.get(`/instances?definition=purchase-order&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      walked.push(...res.body.instances.map((i: any) => i.id));
      cursor = res.body.next;
      if (!cursor) break;
    }
    expect(walked).toEqual(all);
    expect(all.length).toBeGreaterThan(3);
  });
});

describe('node and definitions', () => {
  test('each node runs with the runtime settings that bound its memory (operations.md#memory)', () => {
    for (const [party, pid] of Object.entries(net.nodes.pids())) {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      // A setting of the caller's own wins (the stack passes its environment on).
      const expected = [`MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '2'}`, `MALLOC_MMAP_THRESHOLD_=${process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072'}`];
      expect({ party, settings: environ.filter((v) => v.startsWith('MALLOC_')).sort() }).toEqual({ party, settings: expected });
      expect({ party, flags: argv.filter((a) => a.startsWith('--max-semi-space-size')) }).toEqual({ party, flags: ['--max-semi-space-size=4'] });
    }
  });

  test("a node's log is JSON lines, the Temporal SDK's own lines among them (operations.md)", () => {
    for (const [party, file] of Object.entries(net.nodes.logs)) {
      const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
      const notJson = lines.filter((line) => {
        try {
          return typeof JSON.parse(line) !== 'object';
        } catch {
          return true;
        }
      });
      expect({ party, notJson: notJson.slice(0, 3) }).toEqual({ party, notJson: [] });
      // The worker's state changes, as the SDK tells them.
      expect(lines.map((line) => JSON.parse(line) as { component?: string; msg?: string }).some((entry) => entry.component === 'temporal' && entry.msg === 'Worker state changed')).toBe(true);
    }
  });

  test('status reports Temporal, MongoDB, chain height and listener lag', async () => {
    const res = await acme.get('/status');
    expect(res.status).toBe(200);
    expect(res.body.temporal.ok).toBe(true);
    expect(res.body.mongodb.ok).toBe(true);
    expect(res.body.chain.head).toBeGreaterThan(0);
    expect(res.body.listener.lag).toBeGreaterThanOrEqual(0);
  });

  test('metrics: Prometheus text without a key; events by type and requests by route counted as they happen; where the chain and the listener stand', async () => {
    const scrape = async (party = 'acme'): Promise<Sample[]> => {
      const res = await fetch(`${net.stack.network.parties[party]!.apiUrl}/api/v1/metrics`);
      expect([res.status, res.headers.get('content-type')]).toEqual([200, expect.stringMatching(/^text\/plain; version=0\.0\.4/)]);
      return parseExposition(await res.text());
    };
    const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
      samples.filter((x) => x.name === name && Object.entries({ party: 'acme', ...labels }).every(([k, v]) => x.labels[k] === v)).reduce((sum, x) => sum + x.value, 0);

    const before = await scrape();
    const peerBefore = await scrape('globex');
    const id = await startedOrder();
    await acme.get(`/instances/${id}`);
    await acme.get('/instances/no-such-instance');
    const ordered = acme.post(`/instances/${id}/steps?wait=confirmed&timeout=60`, { step: 'order', input: ORDER });
    await net.pendingTransactions(1);
    await net.mine(1);
    expect((await ordered).body.step.status).toBe('confirmed');
    const after = await scrape();
    // The peer counts what its data exchange answered: the invitation and the step delivered to it.
    const peerAfter = await scrape('globex');
    const answered = (samples: Sample[], route: string) =>
      samples.filter((x) => x.name === 'lockstep_dx_requests_total' && x.labels.party === 'globex' && x.labels.route === route && x.labels.code!.startsWith('2')).reduce((sum, x) => sum + x.value, 0);
    // (At least once: a sender's retry after a lost answer would be counted again.)
    for (const route of ['/dx/v1/invitations', '/dx/v1/envelopes']) expect([route, answered(peerAfter, route) - answered(peerBefore, route) >= 1]).toEqual([route, true]);
    // The step, timed from its proposal to its decision here.
    const timed = { proposer: 'own', status: 'confirmed' };
    expect(value(after, 'lockstep_step_decision_seconds_count', timed) - value(before, 'lockstep_step_decision_seconds_count', timed)).toBe(1);
    expect(value(after, 'lockstep_step_decision_seconds_sum', timed) - value(before, 'lockstep_step_decision_seconds_sum', timed)).toBeGreaterThan(0);
    expect(value(after, 'lockstep_step_decision_seconds_bucket', { ...timed, le: '+Inf' }) - value(before, 'lockstep_step_decision_seconds_bucket', { ...timed, le: '+Inf' })).toBe(1);
    expect(value(after, 'lockstep_events_total', { type: 'instance.started' }) - value(before, 'lockstep_events_total', { type: 'instance.started' })).toBe(1);
    expect(value(after, 'lockstep_api_requests_total', { method: 'POST', route: '/api/v1/instances', code: '201' }) - value(before, 'lockstep_api_requests_total', { method: 'POST', route: '/api/v1/instances', code: '201' })).toBe(1);
    // By the route's pattern, never the instance's id.
    expect(value(after, 'lockstep_api_requests_total', { method: 'GET', route: '/api/v1/instances/:id', code: '404' }) - value(before, 'lockstep_api_requests_total', { method: 'GET', route: '/api/v1/instances/:id', code: '404' })).toBe(1);
    expect(after.some((x) => x.labels.route?.includes(id))).toBe(false);

    const status = (await acme.get('/status')).body;
    expect(value(after, 'lockstep_leading')).toBe(1);
    expect(value(after, 'lockstep_chain_head_block')).toBeGreaterThan(0);
    expect(value(after, 'lockstep_listener_scanned_block')).toBeGreaterThan(0);
    expect(value(after, 'lockstep_listener_scanned_block')).toBeLessThanOrEqual(status.chain.head);
    expect(value(after, 'lockstep_batcher_ok')).toBe(1);
    expect(after.some((x) => x.name === 'lockstep_store_writes_queued')).toBe(true); // FerretDB's write line
    expect(value(after, 'process_cpu_seconds_total')).toBeGreaterThan(0);
  });

  test('definitions: list and get', async () => {
    const list = await acme.get('/definitions');
    const bundled = readdirSync(join(repoRoot(), 'definitions')).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, ''));
    expect(list.body.definitions.map((d: any) => d.id).sort()).toEqual(['approval', 'race', ...bundled].sort());
    const one = await acme.get('/definitions/purchase-order');
    expect(one.body.definition.steps.map((s: any) => s.id)).toEqual(['order', 'accept', 'ship', 'pay']);
  });

  test('OpenAPI 3.1: each step input schema is its request body; Swagger UI is served locally', async () => {
    const doc = (await acme.get('/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    const yaml = parse(readFileSync(join(repoRoot(), 'definitions', 'purchase-order.yaml'), 'utf8'));
    for (const step of yaml.steps) {
      const name = `TakePurchaseOrder${step.id[0].toUpperCase()}${step.id.slice(1)}`;
      expect(doc.components.schemas[name].properties).toEqual({ step: { const: step.id }, input: step.input });
      expect(doc.components.schemas.TakeStep.oneOf ?? doc.components.schemas.TakeStep.anyOf).toContainEqual({ $ref: `#/components/schemas/${name}` });
    }
    expect(doc.paths['/instances/{id}/steps'].post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/TakeStep' });
    expect(doc.components.schemas.StartApproval.properties.roles.required).toEqual(['requester', 'approver']);

    const base = net.stack.network.parties.acme!.apiUrl;
    const page = await fetch(`${base}/api/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger-ui');
    expect(await (await fetch(`${base}/api/swagger-initializer.js`)).text()).toContain('/api/v1/openapi.json');
    expect((await fetch(`${base}/api/swagger-ui-bundle.js`)).status).toBe(200);
    expect((await fetch(`${base}/api`, { redirect: 'manual' })).status).toBe(301);
  });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped; label values without escapes). */
function parseExposition(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}
