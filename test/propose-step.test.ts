/**
 * proposeStep's answer when the instance's workflow is not running: an instance stored but whose
 * invitation is still being processed (its workflow starts only after the node has looked on chain
 * for earlier pins) makes the caller wait, not fail; an ended one is a conflict at once. And when
 * the workflow refuses a step for want of earlier steps the store already shows confirmed (its
 * task that applied them failed after recording them), the caller waits for it to catch up. The
 * Temporal handle and the store are stand-ins: this is the code around them.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { proposeStep } from '../src/node/operations';
import { MAX_STEP_DATA_BYTES } from '../src/process/json-value';
import type { NodeContext } from '../src/node/context';
import type { ProposeResult } from '../workflows/messages';

const ID = '6c4f3a52-8f3e-4b8e-9d0c-2f1e5a7b9c11';
const RESULT = { envelopeHash: '0xabc' } as unknown as ProposeResult;

/** The workflow's refusal of a step whose `after` steps it has not applied (rules.ts, checkPreconditions). */
const waitsForOpen = () =>
  new WorkflowUpdateFailedError(
    'Workflow Update failed',
    ApplicationFailure.create({ message: 'step "claim" must wait for "open" to be final', type: 'precondition_failed', nonRetryable: true, details: [[{ field: '/step', message: 'after: open' }]] }),
  );

/** The workflow's refusal while its run is about to continue as new (its history grown past its limit). */
const continuing = () =>
  new WorkflowUpdateFailedError(
    'Workflow Update failed',
    ApplicationFailure.create({ message: `instance ${ID} is continuing as new (this run's history has grown by 16.20 MiB, past its 16.00 MiB); propose again in a moment`, type: 'unavailable', nonRetryable: true, details: [[]] }),
  );

function contextWith(answers: Array<'missing' | 'ok' | 'waits-for-open' | 'continuing'>, status: 'active' | 'ended' = 'active', confirmed: string[] = []) {
  const calls: string[] = [];
  const ctx = {
    store: {
      agreedInstance: () => Promise.resolve({ _id: ID }),
      instance: () => Promise.resolve({ _id: ID, status }),
      confirmedSteps: () => Promise.resolve(confirmed.map((step) => ({ step }))),
    },
    temporal: {
      workflow: {
        getHandle: () => ({
          executeUpdate: (_update: unknown, options: { updateId: string }) => {
            calls.push(options.updateId);
            const answer = answers.shift() ?? 'missing';
            if (answer === 'missing') return Promise.reject(new WorkflowNotFoundError('workflow not found', `instance-${ID}`, undefined));
            if (answer === 'waits-for-open') return Promise.reject(waitsForOpen());
            if (answer === 'continuing') return Promise.reject(continuing());
            return Promise.resolve(RESULT);
          },
        }),
      },
    },
  } as unknown as NodeContext;
  return { ctx, calls };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/** Runs the proposal to its end, moving the fake clock past every back-off. */
async function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  const outcome = promise.then((value) => ({ value }), (error: unknown) => ({ error }));
  for (let i = 0; i < 10; i++) await jest.advanceTimersByTimeAsync(10_000);
  return outcome;
}

test.each([
  ['a workflow not started yet (invitation still being processed)', 'missing'],
  ['a run about to continue as new (its history full)', 'continuing'],
] as const)('%s is waited for, under one update id', async (_what, answer) => {
  const { ctx, calls } = contextWith([answer, answer, 'ok']);
  const { value, error } = await settle(proposeStep(ctx, ID, { step: 'quote', input: {} }, `erp:key-${answer}`));
  expect(error).toBeUndefined();
  expect(value).toBe(RESULT);
  expect(calls).toHaveLength(3);
  expect(new Set(calls).size).toBe(1);
});

test('a workflow that never starts: 503 unavailable after the bounded attempts', async () => {
  const { ctx, calls } = contextWith([]);
  const { error } = await settle(proposeStep(ctx, ID, { step: 'quote', input: {} }));
  expect(error).toMatchObject({ code: 'unavailable', message: expect.stringContaining('not running on this node yet') });
  expect(calls).toHaveLength(6);
});

test('an ended instance is a conflict at once, not waited for', async () => {
  const { ctx, calls } = contextWith(['missing', 'ok'], 'ended');
  const { error } = await settle(proposeStep(ctx, ID, { step: 'quote', input: {} }));
  expect(error).toMatchObject({ code: 'conflict', message: expect.stringContaining('has ended') });
  expect(calls).toHaveLength(1);
});

test('refused for want of a step this node already shows confirmed (the workflow catching up with a retried task): waited for', async () => {
  const { ctx, calls } = contextWith(['waits-for-open', 'waits-for-open', 'ok'], 'active', ['open']);
  const { value, error } = await settle(proposeStep(ctx, ID, { step: 'claim', input: {} }, 'erp:key-2'));
  expect(error).toBeUndefined();
  expect(value).toBe(RESULT);
  expect(calls).toHaveLength(3);
});

test('refused for want of a step not confirmed here: the refusal at once, naming the step', async () => {
  const { ctx, calls } = contextWith(['waits-for-open', 'ok'], 'active', ['note']);
  const { error } = await settle(proposeStep(ctx, ID, { step: 'claim', input: {} }));
  expect(error).toMatchObject({ code: 'precondition_failed', message: 'step "claim" must wait for "open" to be final', details: [{ field: '/step', message: 'after: open' }] });
  expect(calls).toHaveLength(1);
});

test('a workflow that stays behind the store: the refusal after the bounded attempts', async () => {
  const { ctx, calls } = contextWith(Array.from({ length: 10 }, () => 'waits-for-open' as const), 'active', ['open']);
  const { error } = await settle(proposeStep(ctx, ID, { step: 'claim', input: {} }));
  expect(error).toMatchObject({ code: 'precondition_failed' });
  expect(calls).toHaveLength(6);
});

test('step data over the most a Temporal task can carry: 413 payload_too_large at once, without an Update', async () => {
  const { ctx, calls } = contextWith(['ok']);
  const { error } = await settle(proposeStep(ctx, ID, { step: 'claim', input: { note: 'x'.repeat(MAX_STEP_DATA_BYTES) } }));
  expect(error).toMatchObject({ code: 'payload_too_large', details: [{ field: '/input' }] });
  expect((error as Error).message).toMatch(/^step data \(input and output\) is \d+ bytes of JSON; a step carries at most 1048576$/);
  expect(calls).toEqual([]);
});
