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

/** One spell of a human task being open: from the step becoming available to this party until it is taken, or no longer available. */
export interface TaskOccurrence {
  step: string;
  /** 1 for the first time the step's task opened in the instance, 2 for the next (a step in a loop), and so on. */
  occurrence: number;
  /** How it closed; absent while it is open. `withdrawn`: another step took the state it waited on. */
  closedBy?: 'step confirmed' | 'instance ended' | 'withdrawn';
}

/**
 * Every spell of `party`'s human tasks in the instance, in the order they opened, from the same
 * fold as `stateFromConfirmed`: after each confirmed step, the human steps the party may take
 * are open, and one that is no longer so (or was the step taken) has closed.
 */
export function taskOccurrences(definition: Definition, header: InstanceHeader, confirmed: ConfirmedStep[], ended: boolean, party: string): TaskOccurrence[] {
  const all: TaskOccurrence[] = [];
  const open = new Map<string, TaskOccurrence>();
  let state = initialState(definition);
  const look = (taken?: string): void => {
    const available = new Set(stepsFor(definition, header, state, party).filter((s) => s.human).map((s) => s.id));
    for (const [id, spell] of open) {
      if (available.has(id) && id !== taken) continue;
      spell.closedBy = id === taken ? 'step confirmed' : state.ended ? 'instance ended' : 'withdrawn';
      open.delete(id);
    }
    for (const id of available) {
      if (open.has(id)) continue;
      const spell: TaskOccurrence = { step: id, occurrence: all.filter((o) => o.step === id).length + 1 };
      all.push(spell);
      open.set(id, spell);
    }
  };
  look();
  for (const c of confirmed) {
    const step = definition.steps.find((s) => s.id === c.step);
    if (!step) continue;
    state = applyStep(state, step, c, definition);
    look(c.step);
  }
  if (ended && !state.ended) {
    state = { ...state, ended: { outcome: 'ended', envelopeHash: '' } };
    look();
  }
  return all;
}
