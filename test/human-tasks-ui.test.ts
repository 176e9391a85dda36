/**
 * Human tasks in the Temporal Web UI, on the real stack with a real browser: the approver's open
 * task is found with a search-attribute query, its summary and details are shown, a bad input
 * sent from the UI is refused with the reason and leaves the task open, and a good one completes
 * it; the instance then ends on both nodes. Screenshots go to test-output/human-tasks-ui/, the
 * two nodes' workflow histories (which replay) to test-output/histories/approval-<party>.pb.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { temporal as proto } from '@temporalio/proto';
import type { Browser, Page } from 'playwright-core';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { definitionsWith } from './support/definitions-dir';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { launchChromium } from './support/browser';
import { TemporalUi } from './support/temporal-ui';
import { repoRoot } from '../src/paths';
import { workflowBundlePath } from '../src/node/workflow-source';
import { completeTaskUpdate, instanceWorkflowId } from '../workflows/messages';

const SHOTS = join(repoRoot(), 'test-output', 'human-tasks-ui');
const OPEN_APPROVALS = 'LockstepTaskRoles = "approver" AND ExecutionStatus = "Running"';

let browser: Browser;
let net: TestNetwork;
let connection: Connection;

beforeAll(async () => {
  quietTemporalRuntime();
  // First, so a missing Chromium fails at once with how to get it, before a stack is started.
  browser = await launchChromium();
  net = await startTestNetwork(['acme', 'globex'], 1, { env: { LOCKSTEP_DEFINITIONS: definitionsWith('approval.yaml', 'review-loop.yaml') } });
  connection = await Connection.connect({ address: net.stack.network.temporal.address });
  mkdirSync(SHOTS, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await connection?.close();
  await net?.stop();
});

const temporal = (namespace: string) => new Client({ connection, namespace });

async function listed(namespace: string, query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of temporal(namespace).workflow.list({ query })) ids.push(w.workflowId);
  return ids;
}

/** Mines until the step's decision is visible on `party`'s node (manual mining, 1 confirmation). */
async function mineUntil(what: string, probe: () => Promise<true | undefined>): Promise<void> {
  await eventually(what, async () => {
    await net.mine(1);
    return probe();
  }, 90_000, 300);
}

/**
 * Both nodes' histories of the instance replay against the workflow code as built; they are kept
 * so that test/fixtures/histories/ can be refreshed from them (the human-task patch's path).
 */
async function replayHistories(workflowId: string): Promise<void> {
  const dir = join(repoRoot(), 'test-output', 'histories');
  mkdirSync(dir, { recursive: true });
  for (const party of ['acme', 'globex']) {
    const history = await temporal(party).workflow.getHandle(workflowId).fetchHistory();
    writeFileSync(join(dir, `approval-${party}.pb`), proto.api.history.v1.History.encode(history).finish());
    const replayed = await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, `${party}/${workflowId}`).then(() => undefined, (error: unknown) => error);
    expect(replayed).toBeUndefined();
  }
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

test('the approver finds the open task in the Temporal UI, is told why a bad input is refused, and completes it there', async () => {
  const acme = net.api('acme');
  const globex = net.api('globex');
  const started = await acme.post('/instances', { definition: 'approval', roles: { requester: 'acme', approver: 'globex' } });
  expect(started.status).toBe(201);
  const id = started.body.instance.id as string;
  const workflowId = instanceWorkflowId(id);
  await eventually(`instance ${id} on globex`, async () => ((await globex.get(`/instances/${id}`)).status === 200 ? true : undefined));
  expect((await acme.post(`/instances/${id}/steps`, { step: 'request', input: { amount: 120 } })).status).toBe(202);
  const task = await eventually('the approval task open on globex', async () => {
    await net.mine(1);
    const tasks = (await globex.get('/tasks?kind=human')).body.tasks as { instanceId: string; step: string; links: Record<string, string> }[];
    return tasks.find((t) => t.instanceId === id && t.step === 'approve');
  }, 90_000, 300);
  // The REST API links the task to its page in the Temporal UI.
  const uiUrl = net.stack.network.temporal.uiUrl!;
  expect(task.links.temporalUi).toBe(`${uiUrl}/namespaces/globex/workflows/${workflowId}`);

  // The task's search attribute is on the approver's node only.
  await eventually('the task listed by its search attribute', async () => ((await listed('globex', OPEN_APPROVALS)).includes(workflowId) ? true : undefined));
  expect(await listed('acme', 'LockstepTaskRoles = "approver"')).toEqual([]);
  // completeTask takes human tasks only: the requester's step is not one.
  await expect(temporal('acme').workflow.getHandle(workflowId).executeUpdate(completeTaskUpdate, { args: [{ step: 'request', input: { amount: 1 } }] }))
    .rejects.toThrow(WorkflowUpdateFailedError);

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const ui = new TemporalUi(page, uiUrl);
  await ui.listWorkflows('globex', OPEN_APPROVALS);
  expect(await ui.listedWorkflowIds()).toEqual([workflowId]);
  await screenshot(page, '1-open-tasks-for-approver');

  await ui.openWorkflow(workflowId);
  const shown = await ui.userMetadata();
  expect(shown.summary).toBe('Approval (approval) — requester: acme, approver: globex');
  expect(shown.details).toContain(`Instance ${id}`);
  expect(shown.currentDetails).toContain('Open task for approver (globex): Approve the request');
  expect(shown.currentDetails).toContain('Check the amount against the budget.');
  expect(shown.currentDetails).toContain('Send an Update completeTask');
  await screenshot(page, '2-task-summary-and-details');

  const refused = await ui.sendUpdate('completeTask', { step: 'approve', input: { approved: 'yes' } });
  expect(refused.dialogOpen).toBe(true);
  expect(refused.alert.split('\n')[0]).toBe('input of step "approve" is invalid: /input/approved must be boolean');
  await screenshot(page, '3-refused-input');
  await ui.closeDialog();
  // Still open: nothing was proposed.
  expect((await globex.get(`/instances/${id}/steps`)).body.steps.map((s: { step: string }) => s.step)).toEqual(['request']);
  expect(await listed('globex', OPEN_APPROVALS)).toContain(workflowId);

  const accepted = await ui.sendUpdate('completeTask', { step: 'approve', input: { approved: true } });
  expect(accepted).toEqual({ status: 200, alert: '', dialogOpen: false });
  await eventually('the task no longer listed as open', async () => ((await listed('globex', OPEN_APPROVALS)).includes(workflowId) ? undefined : true));
  // The current details follow the instance: the proposal now waits for the chain.
  await page.reload();
  expect((await ui.userMetadata()).currentDetails).toContain('Submitted, waiting for confirmation on chain: approve');
  await screenshot(page, '4-submitted');

  await mineUntil('the instance ended on both nodes', async () => {
    for (const api of [acme, globex]) {
      const { instance } = (await api.get(`/instances/${id}`)).body;
      if (instance.status !== 'ended') return undefined;
      expect(instance.outcome).toBe('approved');
    }
    return true;
  });
  const approval = (await globex.get(`/instances/${id}/steps`)).body.steps.find((s: { step: string }) => s.step === 'approve');
  expect(approval).toEqual(expect.objectContaining({ status: 'confirmed', author: 'globex', input: { approved: true } }));
  await page.reload();
  expect((await ui.userMetadata()).currentDetails).toContain('Ended: approved');
  await screenshot(page, '5-ended');
  await page.close();
  await replayHistories(workflowId);
}, 600_000);

/** Without the UI: the events that tell apps of a person's tasks, for a step taken more than once. */
test('a reviewer hears of each spell of its tasks: opened, then taken, withdrawn or ended with the instance, and opened again after a resubmission', async () => {
  const acme = net.api('acme');
  const globex = net.api('globex');
  const id = await net.startInstance('acme', 'review-loop', { author: 'acme', reviewer: 'globex' });
  for (const [party, step] of [['acme', 'submit'], ['globex', 'request-changes'], ['acme', 'submit'], ['globex', 'accept']] as const) {
    const api = party === 'acme' ? acme : globex;
    const { envelopeHash } = (await api.post(`/instances/${id}/steps`, { step, input: {} })).body as { envelopeHash: string };
    await mineUntil(`${step} decided on globex`, async () => ((await globex.get(`/instances/${id}/steps`)).body.steps.some((s: { envelopeHash: string; status: string }) => s.envelopeHash === envelopeHash && s.status === 'confirmed') ? true : undefined));
  }
  const told = await eventually('the last spells closed', async () => {
    const { events } = (await globex.get(`/events?types=task.opened,task.completed&instance=${id}`)).body as { events: { type: string; step: string; data: { occurrence: number; by?: string } }[] };
    return events.length === 8 ? events.map((e) => `${e.type} ${e.step} ${e.data.occurrence}${e.data.by ? ` ${e.data.by}` : ''}`) : undefined;
  });
  expect(told).toEqual([
    'task.opened request-changes 1',
    'task.opened accept 1',
    'task.completed request-changes 1 step confirmed',
    'task.completed accept 1 withdrawn',
    'task.opened request-changes 2',
    'task.opened accept 2',
    'task.completed request-changes 2 instance ended',
    'task.completed accept 2 step confirmed',
  ]);
  // The author plays no human step: its node tells of none.
  expect((await acme.get(`/events?types=task.opened,task.completed&instance=${id}`)).body.events).toEqual([]);
}, 300_000);
