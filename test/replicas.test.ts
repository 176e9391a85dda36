/**
 * Replicas: two node processes of one party against its one database and namespace, on the real
 * stack (FerretDB here). Both serve the REST API and workflow tasks; the leading one alone runs
 * the activities, the data exchange, the batcher and the chain listener with its signalling.
 * Steps go in through either process; the leader is then killed (SIGKILL) mid-run, the replica
 * takes over, and the killed process comes back as a replica. At the end nothing is applied
 * twice, no final step was signalled twice while both ran, and every node holds the same history.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startTestNetwork, type BackgroundMiner, type TestNetwork } from './support/network';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { eventually } from './support/eventually';
import { historyFingerprint, historyOn } from './support/history';
import { freePort } from '../src/stack/ports';
import { pollUntil } from '../src/stack/wait-until';
import { ApiClient } from '../src/api/client';
import { instanceWorkflowId, pinConfirmedSignal, type PinConfirmation } from '../workflows/messages';
import type { StepView } from '../src/api/views';
import type { LockstepEvent } from '../src/model/event';

const DEFINITIONS = join(__dirname, 'fixtures', 'definitions');
/** alpha hosts and holds the right claim; beta the left: the two claims race between the parties. */
const ROLES = { host: 'alpha', left: 'beta', right: 'alpha' };
const AUTHOR: Record<string, string> = { open: 'alpha', 'note-host': 'alpha', 'note-left': 'beta', 'claim-left': 'beta', 'claim-right': 'alpha' };

let net: TestNetwork;
let miner: BackgroundMiner;
let replica: ChildProcess | undefined;
let replicaApi: ApiClient;
let temporal: Connection;
/** The three views of the network: alpha's two processes and beta's node. */
let views: Record<string, ApiClient>;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(['alpha', 'beta'], 1, { env: { LOCKSTEP_DEFINITIONS: DEFINITIONS } });
  miner = net.mineInBackground(250);
  const port = await freePort();
  const log = join(net.dir, 'node-alpha-replica.log');
  const out = openSync(log, 'a');
  // The same party, database and namespace; its own REST port. Data exchange is the leader's.
  replica = spawn(process.execPath, [join(__dirname, '..', 'dist/src/cli/main.js'), 'node', '--party', 'alpha', '--network', net.stack.networkPath], {
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      LOCKSTEP_EXIT_WITH_PARENT: String(process.pid),
      LOCKSTEP_DEFINITIONS: DEFINITIONS,
      LOCKSTEP_API_PORT: String(port),
      LOCKSTEP_CHAIN_POLL_MS: '100',
      LOCKSTEP_BATCH_WAIT_MS: '50',
      LOCKSTEP_LOG_LEVEL: 'debug',
    },
  });
  closeSync(out);
  replicaApi = new ApiClient(`http://127.0.0.1:${port}`, net.stack.network.devApiKeys?.alpha);
  await pollUntil(
    async () => {
      if ((await replicaApi.get('/status')).status !== 200) throw new Error('not ready');
    },
    { what: `alpha's replica (log: ${log})`, timeoutMs: 90_000, abortIf: () => (replica!.exitCode !== null ? `exited with code ${replica!.exitCode}` : null) },
  );
  views = { alpha: net.api('alpha'), 'alpha-replica': replicaApi, beta: net.api('beta') };
  temporal = await Connection.connect({ address: net.stack.network.temporal.address });
}, 240_000);

afterAll(async () => {
  await miner?.stop();
  await temporal?.close();
  if (replica && replica.exitCode === null) {
    const exited = new Promise((r) => replica!.once('exit', r));
    replica.kill('SIGTERM');
    await exited;
  }
  await net?.stop();
});

interface Status {
  process: { leading: boolean; leader: { generation: number; owner: string } | null };
}

const status = async (api: ApiClient): Promise<Status> => (await api.get<Status>('/status')).body;

/** A request as a careful app makes it: retried under the same key until a final answer (a process may be down). */
async function call(api: ApiClient, path: string, body: unknown, key: string): Promise<{ status: number; body: any }> {
  return eventually(`POST ${path} (${key})`, async () => {
    try {
      const res = await api.post(path, body, { headers: { 'Idempotency-Key': key } });
      if (res.status < 500 && !(res.status === 409 && /in progress/.test(String(res.body?.detail)))) return res;
    } catch {
      // connection refused: the process is down
    }
    return undefined;
  }, 90_000, 500);
}

async function start(api: ApiClient, key: string): Promise<string> {
  const res = await call(api, '/instances', { definition: 'race', roles: ROLES }, key);
  expect(res.status).toBe(201);
  const id = res.body.instance.id as string;
  await eventually(`${id} known on beta`, async () => ((await net.api('beta').get(`/instances/${id}`)).status === 200 ? true : undefined), 60_000, 200);
  return id;
}

async function propose(api: ApiClient, id: string, step: string): Promise<string> {
  const res = await call(api, `/instances/${id}/steps`, { step, input: step.startsWith('note') ? { text: `${step} of ${id}` } : {} }, `${id}/${step}`);
  expect([res.status, res.body]).toEqual([202, expect.anything()]);
  return res.body.envelopeHash as string;
}

/** Waits until every view has decided `steps` of the instance; returns the views' histories. */
async function decidedEverywhere(id: string, steps: string[]): Promise<Record<string, StepView[]>> {
  return eventually(
    `${steps.join(', ')} of ${id} decided on every view`,
    async () => {
      const histories: Record<string, StepView[]> = {};
      for (const [name, api] of Object.entries(views)) {
        const h = await historyOn(api, name, id).catch(() => undefined);
        if (!h || !steps.every((s) => h.some((v) => v.step === s && v.status !== 'pending'))) return undefined;
        histories[name] = h;
      }
      return histories;
    },
    180_000,
    300,
  );
}

/**
 * Drives one instance: steps by alpha go in through `first` and `second` in turn (the two
 * processes), beta's through its node; the two claims race. Returns the accepted envelopes.
 */
async function drive(id: string, first: ApiClient, second: ApiClient): Promise<Map<string, string>> {
  const accepted = new Map<string, string>();
  const alphaApis = [first, second];
  let turn = 0;
  const by = (step: string) => (AUTHOR[step] === 'beta' ? net.api('beta') : alphaApis[turn++ % 2]!);
  for (const step of ['open', 'note-host', 'note-left']) accepted.set(step, await propose(by(step), id, step));
  await decidedEverywhere(id, ['open', 'note-host', 'note-left']);
  const claims = await Promise.all(['claim-left', 'claim-right'].map(async (step) => [step, await propose(by(step), id, step)] as const));
  for (const [step, hash] of claims) accepted.set(step, hash);
  return accepted;
}

/** Every view holds the same history; each accepted step is decided once; one claim won. */
async function expectSettled(id: string, accepted: Map<string, string>): Promise<void> {
  const histories = await decidedEverywhere(id, [...accepted.keys()]);
  const prints = Object.values(histories).map(historyFingerprint);
  expect(new Set(prints).size).toBe(1);
  const history = histories.beta!;
  expect(history.map((s) => s.envelopeHash).sort()).toEqual([...accepted.values()].sort());
  expect(history.filter((s) => s.step.startsWith('claim') && s.status === 'confirmed')).toHaveLength(1);
}

/** The pinConfirmed signals alpha's copy of the instance received: what they said and who sent them. */
async function pinSignals(id: string): Promise<{ slot: string; level: 'bare' | 'full'; identity: string }[]> {
  const client = new Client({ connection: temporal, namespace: net.stack.network.parties.alpha!.namespace });
  const history = await client.workflow.getHandle(instanceWorkflowId(id)).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.workflowExecutionSignaledEventAttributes)
    .filter((a) => a?.signalName === pinConfirmedSignal.name)
    .map((a) => {
      const confirmation = JSON.parse(Buffer.from(a!.input!.payloads![0]!.data!).toString('utf8')) as PinConfirmation;
      return { slot: confirmation.slot, level: confirmation.envelopeHash ? 'full' : 'bare', identity: a!.identity ?? '' };
    });
}

/** `step.confirmed` and `step.rejected` events on a view, per envelope: each must come once. */
async function decisionEvents(api: ApiClient): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let after = 0; ; ) {
    const page = (await api.get<{ events: LockstepEvent[]; next: number }>(`/events?after=${after}&limit=500&types=step.confirmed,step.rejected`)).body;
    for (const e of page.events) counts.set(e.envelopeHash!, (counts.get(e.envelopeHash!) ?? 0) + 1);
    // A page may hold no matching event and still move on: the end is where `next` stays.
    if (page.next === after) return counts;
    after = page.next;
  }
}

test('both processes serve the API; exactly one leads, and both name it', async () => {
  const [primary, second] = await Promise.all([status(net.api('alpha')), status(replicaApi)]);
  expect([primary.process.leading, second.process.leading]).toEqual([true, false]);
  expect(second.process.leader).toEqual(primary.process.leader);
});

test('steps through either process, then the leader killed mid-run: nothing lost or applied twice, one signal per final step while both ran, identical histories', async () => {
  const leaderPid = net.nodes.pids().alpha!;

  // Both running: instances started and driven through both processes.
  const calm = await Promise.all([0, 1, 2].map(async (n) => {
    const id = await start(n % 2 ? replicaApi : net.api('alpha'), `replicas-calm-${n}`);
    return { id, accepted: await drive(id, net.api('alpha'), replicaApi) };
  }));
  for (const { id, accepted } of calm) await expectSettled(id, accepted);
  for (const { id } of calm) {
    const signals = await pinSignals(id);
    // Each step told once bare and once with its envelope (or once, with it, if it was already
    // here): at least the four before the instance ended (a losing claim may come after it).
    expect(signals.length).toBeGreaterThanOrEqual(4);
    const told = signals.map((s) => `${s.slot}:${s.level}`);
    expect(new Set(told).size).toBe(told.length);
    // All by the leader's listener (a Temporal client's identity is pid@host).
    expect(new Set(signals.map((s) => s.identity.split('@')[0]))).toEqual(new Set([String(leaderPid)]));
  }

  // The leader dies with instances in flight; the replica takes over; the dead one returns as a replica.
  const stormy = await Promise.all([0, 1, 2].map((n) => start(n % 2 ? replicaApi : net.api('alpha'), `replicas-stormy-${n}`)));
  const opened = await Promise.all(stormy.map(async (id) => ({ id, open: await propose(replicaApi, id, 'open') })));
  await net.nodes.kill('alpha', 'SIGKILL');
  await eventually('the replica leading', async () => ((await status(replicaApi)).process.leading ? true : undefined), 30_000, 200);
  const driven = await Promise.all(
    opened.map(async ({ id, open }) => {
      const accepted = new Map([['open', open]]);
      for (const [step, api] of [['note-host', replicaApi], ['note-left', net.api('beta')]] as const) accepted.set(step, await propose(api, id, step));
      return { id, accepted };
    }),
  );
  await net.nodes.start('alpha');
  expect((await status(net.api('alpha'))).process.leading).toBe(false);
  for (const { id, accepted } of driven) {
    await decidedEverywhere(id, [...accepted.keys()]);
    const claimants: [string, ApiClient][] = [['claim-left', net.api('beta')], ['claim-right', net.api('alpha')]];
    const claims = await Promise.all(claimants.map(async ([step, api]) => [step, await propose(api, id, step)] as const));
    for (const [step, hash] of claims) accepted.set(step, hash);
  }
  for (const { id, accepted } of [...calm, ...driven]) await expectSettled(id, accepted);

  // Each decision recorded once on each node, whichever process made it.
  for (const api of [net.api('alpha'), net.api('beta')]) {
    const counts = await decisionEvents(api);
    for (const { accepted } of [...calm, ...driven]) for (const hash of accepted.values()) expect([hash, counts.get(hash)]).toEqual([hash, 1]);
  }
}, 600_000);

/** Last: it leaves the chain reorganised below what the nodes hold final. */
test('a reorganisation deeper than the confirmation depth stops new steps on every process of the party, the one not leading too', async () => {
  const processes = [net.api('alpha'), replicaApi];
  const leading = await Promise.all(processes.map(async (api) => (await status(api)).process.leading));
  expect(leading.filter(Boolean)).toHaveLength(1);
  miner.pause();
  const snapshot = (await net.provider.send('evm_snapshot', [])) as string;
  const past = (await net.provider.getBlockNumber()) + 3;
  await net.mine(4);
  await eventually('the checkpoint past the snapshot', async () => {
    const body = (await net.api('alpha').get<{ listener: { confirmedBlock: number | null } }>('/status')).body;
    return (body.listener.confirmedBlock ?? 0) >= past ? true : undefined;
  });
  await net.provider.send('evm_revert', [snapshot]);
  await net.mine(8);
  for (const [i, api] of processes.entries()) {
    const reported = await eventually(`process ${i} (${leading[i] ? 'leading' : 'not leading'}) to report the deep reorganisation`, async () => {
      const body = (await api.get<{ chain: { deepReorg: { block: number } | null } }>('/status')).body;
      return body.chain.deepReorg ?? undefined;
    });
    expect(reported.block).toBeGreaterThanOrEqual(past);
    const refused = await api.post('/instances', { definition: 'race', roles: ROLES });
    expect([refused.status, refused.body.detail]).toEqual([503, expect.stringMatching(/reorganised below the confirmation depth/)]);
  }
}, 120_000);
