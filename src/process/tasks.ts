/**
 * Which steps a party may take now in an instance, derived from the decided history (the same
 * rules the workflow applies), so the API can list them without asking every workflow.
 */
import type { Definition, StepDefinition } from '../model/definition';
import type { InstanceHeader } from '../model/instance';
import { applyStep, nextSteps } from './rules';
import { initialState, type ProcessState } from './state';

/** A confirmed step as a node's history holds it. */
export interface ConfirmedStep {
  step: string;
  envelopeHash: string;
  author: string;
  /** Block timestamp of its pin. */
  timestamp?: number;
  input?: unknown;
  output?: unknown;
}

/**
 * The decided state rebuilt from the confirmed steps in sequence: the workflow's own fold
 * (`applyStep` from the initial state), so states of a state machine are marked and consumed
 * exactly as there.
 */
export function stateFromConfirmed(definition: Definition, confirmed: ConfirmedStep[], ended: boolean): ProcessState {
  let state = initialState(definition);
  for (const c of confirmed) {
    const step = definition.steps.find((s) => s.id === c.step);
    if (step) state = applyStep(state, step, c, definition);
  }
  return ended && !state.ended ? { ...state, ended: { outcome: 'ended', envelopeHash: '' } } : state;
}

/** Steps whose actor role `party` plays and whose predecessors are final. */
export function stepsFor(definition: Definition, header: InstanceHeader, state: ProcessState, party: string): StepDefinition[] {
  return nextSteps(definition, header, state).filter((s) => header.roles[s.actor] === party);
}
