/**
 * What the Temporal UI shows of human tasks, as pure functions of an instance's state: which
 * tasks are open for a party, the search attribute that lists them, and the Markdown details.
 * The browser test (human-tasks-ui.test.ts) checks the same on the real stack and UI.
 */
import { join } from 'node:path';
import { loadDefinitionFile } from '../src/definitions/load';
import { applyStep, findStep } from '../src/process/rules';
import { initialState, type ProcessState } from '../src/process/state';
import type { InstanceHeader } from '../src/model/instance';
import { instanceCurrentDetails, instanceStaticDetails, instanceSummary, openHumanTasks, taskAttributes } from '../workflows/human-tasks';
import type { PendingStep } from '../workflows/messages';
import { taskOccurrences, type ConfirmedStep } from '../src/process/tasks';

const approval = loadDefinitionFile(join(__dirname, 'fixtures', 'definitions', 'approval.yaml'));
const { definition } = approval;
const header: InstanceHeader = {
  id: 'inst-1',
  definitionId: 'approval',
  definitionHash: approval.hash,
  roles: { requester: 'acme', approver: 'globex' },
  createdBy: 'acme',
  createdAt: '2026-01-01T00:00:00.000Z',
};
const links = { apiUrl: 'http://127.0.0.1:4002' };

function confirm(state: ProcessState, step: string, author: string): ProcessState {
  return applyStep(state, findStep(definition, step), { envelopeHash: `0x${step}`, author, timestamp: 1_000 }, definition);
}

const requested = confirm(initialState(definition), 'request', 'acme');
const ids = (steps: { id: string }[]) => steps.map((s) => s.id);

test('a human step is open for the party playing its role once it is enabled, and only until that party proposes it', () => {
  expect(ids(openHumanTasks(definition, header, initialState(definition), 'globex', []))).toEqual([]);
  expect(ids(openHumanTasks(definition, header, requested, 'globex', []))).toEqual(['approve']);
  expect(ids(openHumanTasks(definition, header, requested, 'acme', []))).toEqual([]);
  const mine: PendingStep = { envelopeHash: '0xabc', step: 'approve', author: 'globex' };
  expect(ids(openHumanTasks(definition, header, requested, 'globex', [mine]))).toEqual([]);
  // Another party's pending step does not close this party's task.
  expect(ids(openHumanTasks(definition, header, requested, 'globex', [{ ...mine, author: 'acme' }]))).toEqual(['approve']);
  expect(ids(openHumanTasks(definition, header, confirm(requested, 'approve', 'globex'), 'globex', []))).toEqual([]);
});

test('the task search attribute names the assignee roles with an open task', () => {
  expect(taskAttributes(openHumanTasks(definition, header, requested, 'globex', []))).toEqual({ LockstepTaskRoles: ['approver'] });
  expect(taskAttributes([])).toEqual({ LockstepTaskRoles: [] });
});

test('the current details say what to decide, how, and with which input; then what waits and how it ended', () => {
  const open = instanceCurrentDetails(definition, header, requested, 'globex', [], links);
  expect(open).toContain('### Open task for approver (globex): Approve the request');
  expect(open).toContain('Check the amount against the budget.');
  expect(open).toContain('"required": [\n    "approved"\n  ]');
  expect(open).toContain('Send an Update `completeTask`');
  expect(open).toContain('{"step":"approve","input":{}}');
  expect(open).toContain('[`inst-1`](http://127.0.0.1:4002/api/v1/instances/inst-1)');

  const submitted = instanceCurrentDetails(definition, header, requested, 'globex', [{ envelopeHash: '0x1234567890abcdef', step: 'approve', author: 'globex' }], links);
  expect(submitted).not.toContain('Open task');
  expect(submitted).not.toContain('Other steps');
  expect(submitted).toContain('Submitted, waiting for confirmation on chain: `approve`');

  const requester = instanceCurrentDetails(definition, header, requested, 'acme', [], links);
  expect(requester).toContain('**No open task for acme** (roles: requester)');
  expect(requester).toContain('Approve the request (`approve`, approver: globex)');

  const ended = confirm(requested, 'approve', 'globex');
  expect(instanceCurrentDetails(definition, header, ended, 'globex', [], links)).toContain('**Ended: approved** after 2 decided step(s).');
});

test('the summary and static details name the process, its parties and where its data is', () => {
  expect(instanceSummary(definition, header)).toBe('Approval (approval) — requester: acme, approver: globex');
  const details = instanceStaticDetails(definition, header, 'globex', links);
  expect(details).toContain('- **Approver** (`approver`): globex');
  expect(details).toContain('(http://127.0.0.1:4002/api/v1/instances/inst-1/steps)');
  expect(details).toContain('Human tasks for globex: Approve the request');
  expect(instanceStaticDetails(definition, header, 'acme', undefined)).not.toContain('Human tasks');
});

test('each spell of a human task is told apart: taken, withdrawn by a rival step, ended with the instance, and opened again in a loop', () => {
  const review = loadDefinitionFile(join(__dirname, 'fixtures', 'definitions', 'review-loop.yaml'));
  const roles: InstanceHeader = { ...header, definitionId: 'review-loop', definitionHash: review.hash, roles: { author: 'acme', reviewer: 'globex' } };
  const taken = (...steps: string[]): ConfirmedStep[] => steps.map((step, i) => ({ step, envelopeHash: `0x${i}`, author: step === 'submit' ? 'acme' : 'globex' }));
  const spells = (steps: string[], ended = false) => taskOccurrences(review.definition, roles, taken(...steps), ended, 'globex');

  expect(spells([])).toEqual([]);
  expect(spells(['submit'])).toEqual([{ step: 'request-changes', occurrence: 1 }, { step: 'accept', occurrence: 1 }]);
  // Changes asked for: that task taken, the other withdrawn; both open again once resubmitted.
  expect(spells(['submit', 'request-changes', 'submit'])).toEqual([
    { step: 'request-changes', occurrence: 1, closedBy: 'step confirmed' },
    { step: 'accept', occurrence: 1, closedBy: 'withdrawn' },
    { step: 'request-changes', occurrence: 2 },
    { step: 'accept', occurrence: 2 },
  ]);
  // Accepted: the instance ends with it, and the task not taken closes with the instance.
  expect(spells(['submit', 'request-changes', 'submit', 'accept']).slice(2)).toEqual([
    { step: 'request-changes', occurrence: 2, closedBy: 'instance ended' },
    { step: 'accept', occurrence: 2, closedBy: 'step confirmed' },
  ]);
  // An instance ended from outside the definition's own ends closes what is open.
  expect(spells(['submit'], true)).toEqual([
    { step: 'request-changes', occurrence: 1, closedBy: 'instance ended' },
    { step: 'accept', occurrence: 1, closedBy: 'instance ended' },
  ]);
  // The author plays no human step.
  expect(taskOccurrences(review.definition, roles, taken('submit'), false, 'acme')).toEqual([]);
});
