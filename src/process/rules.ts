/**
 * The rules of the road every node enforces, deterministically: who may take a step, and when.
 * Used by the workflow's update validator (on the proposing node) and again when a step is
 * applied in chain order (on every node), so all nodes reach the same verdict on their own.
 */
import type { Definition, StepDefinition } from '../model/definition';
import type { InstanceHeader } from '../model/instance';
import { LockstepError } from '../model/errors';
import type { ProcessState } from './state';

export function findStep(definition: Definition, stepId: string): StepDefinition {
  const step = definition.steps.find((s) => s.id === stepId);
  if (!step) {
    const known = definition.steps.map((s) => s.id).join(', ');
    throw new LockstepError('not_found', `definition ${definition.id} has no step "${stepId}"; its steps: ${known}`, [
      { field: '/step', message: 'unknown step' },
    ]);
  }
  return step;
}

/** The party bound to the step's actor role must be the one acting. */
export function checkActor(header: InstanceHeader, step: StepDefinition, party: string): void {
  const bound = header.roles[step.actor];
  if (bound !== party) {
    throw new LockstepError(
      'forbidden',
      `party ${party} may not take step "${step.id}": it belongs to role ${step.actor}, played by ${bound ?? 'nobody'}`,
      [{ field: '/step', message: `requires role ${step.actor}` }],
    );
  }
}

/** The step may be taken now: instance open, step not yet final, its predecessors final. */
export function checkPreconditions(state: ProcessState, step: StepDefinition): void {
  if (state.ended) {
    throw new LockstepError('conflict', `instance has ended with outcome "${state.ended.outcome}"`, [
      { field: '/step', message: 'no step may follow the end of an instance' },
    ]);
  }
  const earlier = state.done[step.id];
  if (earlier) {
    throw new LockstepError('conflict', `step "${step.id}" was already taken (envelope ${earlier.envelopeHash})`, [
      { field: '/step', message: 'already final' },
    ]);
  }
  const missing = (step.after ?? []).filter((id) => !state.done[id]);
  if (missing.length > 0) {
    throw new LockstepError(
      'precondition_failed',
      `step "${step.id}" must wait for ${missing.map((m) => `"${m}"`).join(', ')} to be final`,
      [{ field: '/step', message: `after: ${missing.join(', ')}` }],
    );
  }
}

/** Steps the given party could take now (for UIs and search attributes). */
export function nextSteps(definition: Definition, header: InstanceHeader, state: ProcessState): StepDefinition[] {
  if (state.ended) return [];
  return definition.steps.filter(
    (s) => !state.done[s.id] && (s.after ?? []).every((id) => state.done[id]) && header.roles[s.actor] !== undefined,
  );
}

/** Records a confirmed step into the state; returns the new state (the input is not mutated). */
export function applyStep(
  state: ProcessState,
  step: StepDefinition,
  done: { envelopeHash: string; author: string },
): ProcessState {
  const seq = state.seq;
  return {
    done: { ...state.done, [step.id]: { ...done, seq } },
    seq: seq + 1,
    ended: step.ends ? { outcome: step.ends, envelopeHash: done.envelopeHash } : state.ended,
  };
}
