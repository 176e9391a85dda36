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
  let last: ProcessState | undefined;
  for (const { state } of statesAlong(definition, confirmed, ended)) last = state;
  return last!;
}

/**
 * The same fold, one state at a time: the initial state, then the state after each confirmed
 * step (with the step's id), then, for an instance ended without its definition ending it, that
 * state marked ended.
 */
function* statesAlong(definition: Definition, confirmed: ConfirmedStep[], ended: boolean): Generator<{ state: ProcessState; taken?: string }> {
  let state = initialState(definition);
  yield { state };
  for (const c of confirmed) {
    const step = definition.steps.find((s) => s.id === c.step);
    if (!step) continue;
    state = applyStep(state, step, c, definition);
    yield { state, taken: c.step };
  }
  if (ended && !state.ended) yield { state: { ...state, ended: { outcome: 'ended', envelopeHash: '' } } };
}

/** Steps whose actor role `party` plays and whose predecessors are final. */
export function stepsFor(definition: Definition, header: InstanceHeader, state: ProcessState, party: string): StepDefinition[] {
  return nextSteps(definition, header, state).filter((s) => header.roles[s.actor] === party);
}

/**
 * The ids of those steps (at the start, by default), as a node keeps them on its instance
 * document (`InstanceDoc.openSteps`) so that `GET /tasks` reads no history for an instance that
 * waits on others.
 */
export function openStepIds(definition: Definition, header: InstanceHeader, party: string, state: ProcessState = initialState(definition)): string[] {
  return stepsFor(definition, header, state, party).map((s) => s.id);
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
 * Every spell of `party`'s human tasks in the instance, in the order they opened, along the fold
 * of `stateFromConfirmed`: after each confirmed step, the human steps the party may take are
 * open, and one that is no longer so (or was the step taken) has closed.
 */
export function taskOccurrences(definition: Definition, header: InstanceHeader, confirmed: ConfirmedStep[], ended: boolean, party: string): TaskOccurrence[] {
  const all: TaskOccurrence[] = [];
  const open = new Map<string, TaskOccurrence>();
  for (const { state, taken } of statesAlong(definition, confirmed, ended)) {
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
  }
  return all;
}
