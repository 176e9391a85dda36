/**
 * proposeStep's answer when the instance's workflow is not running: an instance stored but whose
 * invitation is still being processed (its workflow starts only after the node has looked on chain
 * for earlier pins) makes the caller wait, not fail; an ended one is a conflict at once. The
 * Temporal handle and the store are stand-ins: this is the code around them.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { proposeStep } from '../src/node/operations';
import type { NodeContext } from '../src/node/context';
import type { ProposeResult } from '../workflows/messages';

const ID = '6c4f3a52-8f3e-4b8e-9d0c-2f1e5a7b9c11';
const RESULT = { envelopeHash: '0xabc' } as unknown as ProposeResult;

function contextWith(answers: Array<'missing' | 'ok'>, status: 'active' | 'ended' = 'active') {
  const calls: string[] = [];
  const ctx = {
    store: {
      agreedInstance: () => Promise.resolve({ _id: ID }),
      instance: () => Promise.resolve({ _id: ID, status }),
    },
    temporal: {
      workflow: {
        getHandle: () => ({
          executeUpdate: (_update: unknown, options: { updateId: string }) => {
            calls.push(options.updateId);
            const answer = answers.shift() ?? 'missing';
            if (answer === 'missing') return Promise.reject(new WorkflowNotFoundError('workflow not found', `instance-${ID}`, undefined));
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

test('a workflow not started yet (invitation still being processed) is waited for, under one update id', async () => {
  const { ctx, calls } = contextWith(['missing', 'missing', 'ok']);
  const { value, error } = await settle(proposeStep(ctx, ID, { step: 'quote', input: {} }, 'erp:key-1'));
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
