/**
 * Where the workflow records a decision, on a real Temporal dev server: as a local activity
 * inside the workflow task when the process holding the task leads its party, and otherwise as
 * the same activity queued for the leader. And where it builds a proposal's envelope: in the
 * Update's own workflow task when the proposal brings its salt, with only publishStep queued. Two sets of
 * workers in this process stand for a party's two processes: the "follower" runs workflow tasks
 * only, the "leader" the activity worker. The activities are stand-ins that record their calls:
 * what is under test is the workflow's routing and the workers' gate, not the store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Client, Connection } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { localActivities, type Activities, type PublishRequest } from '../activities';
import { buildEnvelope } from '../src/envelope/build';
import { newSalt } from '../src/envelope/seal';
import { loadDefinitionFile } from '../src/definitions/load';
import { MAX_STEP_DATA_BYTES } from '../src/process/json-value';
import type { InstanceHeader } from '../src/model/instance';
import type { ChainPosition } from '../src/model/pin';
import { PartyWorkers, type WorkerKind } from '../src/node/workers';
import { WORKFLOW_BUNDLER_OPTIONS } from '../src/node/workflow-source';
import { freePort } from '../src/stack/ports';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../src/stack/search-attributes';
import { startTemporalDevServer, type RunningDevServer } from '../src/stack/temporal-server';
import { instanceWorkflow } from '../workflows/instance';
import { pinConfirmedSignal, proposeUpdate, TASK_QUEUE } from '../workflows/messages';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { eventually } from './support/eventually';

const NAMESPACE = 'acme';
const approval = loadDefinitionFile(join(__dirname, 'fixtures', 'definitions', 'approval.yaml'));

let dir: string;
let server: RunningDevServer;
let connection: Connection;
let workerConnection: NativeConnection;
let client: Client;
let bundle: WorkflowBundleWithSourceMap;
/** Calls the stand-in activities received, in order: `sealStep 1`, `recordDecision 1`, … */
const calls: string[] = [];
/** What the stand-in publishStep was asked to publish. */
const published: PublishRequest[] = [];
/** Instances whose publishing the stand-in holds until the promise resolves (a step in flight). */
const held = new Map<string, Promise<void>>();

const standIns = {
  inviteParticipants: () => Promise.resolve(),
  sealStep: (req: { nonce: number }) => {
    calls.push(`sealStep ${req.nonce}`);
    return Promise.resolve({ envelopeHash: `0x${String(req.nonce).padStart(64, '0')}` });
  },
  pinStep: () => Promise.resolve({ root: '0x00', index: 0, count: 1, proof: [], transactionHash: '0x00' }),
  publishStep: async (req: PublishRequest) => {
    published.push(req);
    await held.get(req.instanceId);
  },
  recordDecision: (decision: { seq: number; status: string }) => {
    calls.push(`recordDecision ${decision.seq} ${decision.status}`);
    return Promise.resolve();
  },
} as unknown as Activities;

/** One process's workers: workflow tasks with the gated local activities, and the activity worker while leading. */
function processWorkers(runsWorkflows: boolean): PartyWorkers {
  const workers: PartyWorkers = new PartyWorkers(
    (kind: WorkerKind) =>
      Worker.create({
        connection: workerConnection,
        namespace: NAMESPACE,
        taskQueue: TASK_QUEUE,
        ...(kind === 'workflows'
          ? { workflowBundle: bundle, activities: localActivities(standIns, (work) => workers.runLocally(work)), enableNonLocalActivities: false }
          : { activities: standIns }),
      }),
    pino({ level: 'silent' }),
  );
  if (runsWorkflows) void workers.start();
  return workers;
}

beforeAll(async () => {
  quietTemporalRuntime();
  dir = mkdtempSync(join(tmpdir(), 'lockstep-local-decisions-'));
  const [port, uiPort] = [await freePort(), await freePort()];
  [server, bundle] = await Promise.all([
    startTemporalDevServer({
      address: `127.0.0.1:${port}`,
      port,
      uiPort,
      dir,
      logDir: dir,
      namespaces: [NAMESPACE],
      searchAttributes: LOCKSTEP_SEARCH_ATTRIBUTES,
    }),
    bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), ...WORKFLOW_BUNDLER_OPTIONS }),
  ]);
  workerConnection = await NativeConnection.connect({ address: server.address });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: NAMESPACE });
}, 180_000);

afterAll(async () => {
  await workerConnection?.close();
  await connection?.close();
  await server?.process.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function historyOf(workflowId: string): Promise<temporal.api.history.v1.IHistoryEvent[]> {
  return (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

const queuedActivities = (events: temporal.api.history.v1.IHistoryEvent[]): string[] =>
  events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name!] : []));
const localActivityMarkers = (events: temporal.api.history.v1.IHistoryEvent[]): number => events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length;

function position(blockNumber: number): ChainPosition {
  return { blockNumber, blockHash: `0x${blockNumber}`, timestamp: 1_700_000_000 + blockNumber, transactionHash: `0x${blockNumber}`, logIndex: 0, index: 0 };
}

test('a decision is recorded in the workflow task on the leading process, and queued for the leader when a follower holds the task', async () => {
  const follower = processWorkers(true);
  const leader = processWorkers(false);
  await leader.lead();
  try {
    const header: InstanceHeader = {
      id: 'local-1',
      definitionId: 'approval',
      definitionHash: approval.hash,
      roles: { requester: NAMESPACE, approver: 'globex' },
      createdBy: NAMESPACE,
      createdAt: '2026-11-21T00:00:00.000Z',
    };
    const handle = await client.workflow.start(instanceWorkflow, {
      workflowId: 'local-1',
      taskQueue: TASK_QUEUE,
      args: [{ header, definition: approval.definition, party: NAMESPACE }],
    });

    // Without a salt (as sent from the Temporal UI), the seal is queued. The follower holds the workflow task: the decision is refused there and queued for the leader.
    const first = await handle.executeUpdate(proposeUpdate, { args: [{ step: 'request', input: { amount: 5 } }] });
    expect(first).toEqual({ envelopeHash: `0x${'1'.padStart(64, '0')}`, status: 'pending' });
    await handle.signal(pinConfirmedSignal, { slot: `${NAMESPACE}/1`, position: position(10), envelopeHash: first.envelopeHash });
    await eventually('the first decision recorded', () => Promise.resolve(calls.includes('recordDecision 0 confirmed') || undefined));
    let events = await historyOf('local-1');
    expect(queuedActivities(events).filter((name) => name !== 'inviteParticipants')).toEqual(['sealStep', 'publishStep', 'recordDecision']);
    expect(localActivityMarkers(events)).toBe(1); // the refused attempt, recorded

    // The follower becomes the leader (the other steps down first): globex's step is decided in the task.
    await leader.follow();
    await follower.lead();
    const approve = `0x${'a'.repeat(64)}`;
    await handle.signal(pinConfirmedSignal, { slot: 'globex/1', position: position(11), envelopeHash: approve, proposal: { envelopeHash: approve, step: 'approve', author: 'globex' } });
    await eventually('the second decision recorded', () => Promise.resolve(calls.includes('recordDecision 1 confirmed') || undefined));
    events = await historyOf('local-1');
    expect(queuedActivities(events).filter((name) => name === 'recordDecision')).toHaveLength(1);
    expect(localActivityMarkers(events)).toBe(2);
    expect(calls).toEqual(['sealStep 1', 'recordDecision 0 confirmed', 'recordDecision 1 confirmed']);
    // Both paths replay: the refused attempt and the queued decision, then the decision made in the task.
    await Worker.runReplayHistory({ workflowBundle: bundle }, await handle.fetchHistory());
    expect(await handle.result()).toEqual({ outcome: 'approved', steps: 2 });
  } finally {
    await Promise.all([follower.stop(), leader.stop()]);
  }
}, 120_000);

test('a proposal with its salt has its envelope built in the Update\'s task: only publishStep is queued, with what builds that envelope', async () => {
  const leading = processWorkers(true);
  await leading.lead();
  try {
    const header: InstanceHeader = { id: 'built-1', definitionId: 'approval', definitionHash: approval.hash, roles: { requester: NAMESPACE, approver: 'globex' }, createdBy: NAMESPACE, createdAt: '2026-11-21T00:00:00.000Z' };
    const handle = await client.workflow.start(instanceWorkflow, { workflowId: 'built-1', taskQueue: TASK_QUEUE, args: [{ header, definition: approval.definition, party: NAMESPACE }] });

    // A salt not in the REST API's form is refused by the validator: nothing recorded.
    const refused = await handle.executeUpdate(proposeUpdate, { args: [{ step: 'request', input: { amount: 5 }, salt: '0x12' }] }).then(
      () => 'accepted',
      (error: Error) => (error.cause instanceof Error ? error.cause.message : error.message),
    );
    expect(refused).toMatch(/^salt must be 32 bytes as 0x-prefixed lower-case hex/);
    // Data over what the task accepting it could carry twice (the Temporal UI has no body limit): refused, nothing recorded.
    const tooLarge = await handle.executeUpdate(proposeUpdate, { args: [{ step: 'request', input: { amount: 5, note: 'x'.repeat(MAX_STEP_DATA_BYTES) }, salt: newSalt() }] }).then(
      () => undefined,
      (error: Error) => error.cause as ApplicationFailure,
    );
    expect(tooLarge?.type).toBe('payload_too_large');
    expect(tooLarge?.message).toMatch(new RegExp(`^step data \\(input and output\\) is \\d+ bytes of JSON; a step carries at most ${MAX_STEP_DATA_BYTES}$`));

    const salt = newSalt();
    const result = await handle.executeUpdate(proposeUpdate, { args: [{ step: 'request', input: { amount: 5 }, salt }] });
    const events = await historyOf('built-1');
    expect(queuedActivities(events).filter((name) => name !== 'inviteParticipants')).toEqual(['publishStep']);
    expect(localActivityMarkers(events)).toBe(0);
    await eventually('publishStep run', () => Promise.resolve(published.find((p) => p.instanceId === 'built-1')));
    const { proposal, envelopeHash } = published.find((p) => p.instanceId === 'built-1')!;
    expect(proposal).toMatchObject({ step: 'request', input: { amount: 5 }, nonce: 1, salt, definitionHash: approval.hash });
    // The activity builds from its request the very envelope the workflow answered with.
    expect(envelopeHash).toBe(result.envelopeHash);
    expect(buildEnvelope({ ...proposal!, author: NAMESPACE }).hash).toBe(result.envelopeHash);
    await Worker.runReplayHistory({ workflowBundle: bundle }, await handle.fetchHistory());
    await handle.terminate('test over');
  } finally {
    await leading.stop();
  }
}, 120_000);

test('a run whose history has grown past its byte limit takes no new proposal until it has continued as new', async () => {
  const totals = loadDefinitionFile(join(__dirname, 'fixtures', 'definitions', 'guarded-totals.yaml'));
  const leading = processWorkers(true);
  await leading.lead();
  let release = (): void => undefined;
  held.set('bytes-1', new Promise<void>((resolve) => (release = resolve)));
  try {
    const header: InstanceHeader = { id: 'bytes-1', definitionId: 'guarded-totals', definitionHash: totals.hash, roles: { buyer: 'globex', seller: NAMESPACE }, createdBy: NAMESPACE, createdAt: '2026-11-21T00:00:00.000Z' };
    const limits = { maxEvents: 10_000, maxMessages: 1_000, maxHistoryBytes: 65_536 };
    const handle = await client.workflow.start(instanceWorkflow, { workflowId: 'bytes-1', taskQueue: TASK_QUEUE, args: [{ header, definition: totals.definition, party: NAMESPACE, limits }] });
    const firstRun = handle.firstExecutionRunId;

    // 100 KB of notes, twice in the history (the Update, the publish activity's input): past 64 KiB.
    const notes = 'n'.repeat(100_000);
    await handle.executeUpdate(proposeUpdate, { args: [{ step: 'quote-a', input: { amount: 10, notes }, salt: newSalt() }] });
    const refused = await handle.executeUpdate(proposeUpdate, { args: [{ step: 'quote-b', input: { amount: 20, notes }, salt: newSalt() }] }).then(
      () => undefined,
      (error: Error) => error.cause as ApplicationFailure,
    );
    expect(refused?.type).toBe('unavailable');
    expect(refused?.message).toMatch(/^instance bytes-1 is continuing as new \(this run's history has grown by 0\.\d\d MiB, past its 0\.06 MiB\); propose again in a moment$/);

    // Its step published, the run continues as new, and the next run takes the proposal.
    release();
    const accepted = await eventually('quote-b taken by the next run', () =>
      handle.executeUpdate(proposeUpdate, { args: [{ step: 'quote-b', input: { amount: 20, notes }, salt: newSalt() }] }).then((r) => r, () => undefined),
    );
    expect(accepted.status).toBe('pending');
    const { runId } = await handle.describe();
    expect(runId).not.toBe(firstRun);
    // The first run replays, refusal and all.
    await Worker.runReplayHistory({ workflowBundle: bundle }, await client.workflow.getHandle('bytes-1', firstRun).fetchHistory());
  } finally {
    release();
    await leading.stop();
  }
}, 120_000);
