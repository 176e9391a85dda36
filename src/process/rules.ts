/**
 * The rules of the road every node enforces, deterministically: who may take a step, and when.
 * Used by the workflow's update validator (on the proposing node, before anything is sent) and
 * again when a step is applied in chain order (on every node), so all nodes reach the same
 * verdict on their own. Time is chain time only: the block timestamp of the step's pin.
 */
import type { Definition, StepDefinition } from '../model/definition';
import type { InstanceHeader } from '../model/instance';
import { LockstepError, type ErrorCode, type FieldError } from '../model/errors';
import type { ProcessState } from './state';
import { guardHolds, guardReadData, guardReadPaths, guardReads } from './guard';
import { durationSeconds } from './duration';
import type { StepPayload } from './step-data';

/** A rule refused a step; `winner` is the envelope that took the contested step or state first. */
export class StepRefused extends LockstepError {
  constructor(code: ErrorCode, message: string, details: FieldError[], readonly winner?: string) {
    super(code, message, details);
  }
}

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

/** Steps outside the state machine happen once; steps with `from` may recur (loops). */
function repeatable(step: StepDefinition): boolean {
  return (step.from ?? []).length > 0;
}

/** How a refusal for want of earlier steps names them in its detail: `after: a, b`. */
const AFTER = 'after: ';

/** The steps a refusal by checkPreconditions says must be final first (none when it is not that refusal). */
export function awaitedSteps(details: readonly FieldError[]): string[] {
  const after = details.find((d) => d.field === '/step' && d.message.startsWith(AFTER));
  return after ? after.message.slice(AFTER.length).split(', ') : [];
}

/**
 * The step may be taken now: instance open, a once-only step not yet final, its `after` steps
 * final, its `from` states all marked. A state consumed by a rival names that rival as winner.
 */
export function checkPreconditions(state: ProcessState, step: StepDefinition): void {
  if (state.ended) {
    throw new StepRefused('conflict', `instance has ended with outcome "${state.ended.outcome}"`, [
      { field: '/step', message: 'no step may follow the end of an instance' },
    ], state.ended.envelopeHash);
  }
  const earlier = state.done[step.id];
  if (earlier && !repeatable(step)) {
    throw new StepRefused('conflict', `step "${step.id}" was already taken (envelope ${earlier.envelopeHash})`, [
      { field: '/step', message: 'already final' },
    ], earlier.envelopeHash);
  }
  const missing = (step.after ?? []).filter((id) => !state.done[id]);
  if (missing.length > 0) {
    throw new StepRefused(
      'precondition_failed',
      `step "${step.id}" must wait for ${missing.map((m) => `"${m}"`).join(', ')} to be final`,
      [{ field: '/step', message: `${AFTER}${missing.join(', ')}` }],
    );
  }
  const marked = new Set(state.marked ?? []);
  const unmarked = (step.from ?? []).filter((s) => !marked.has(s));
  if (unmarked.length > 0) {
    const winner = unmarked.map((s) => state.consumedBy?.[s]).find((w) => w !== undefined);
    const why = winner ? `; it was consumed by envelope ${winner}` : '';
    throw new StepRefused(
      winner ? 'conflict' : 'precondition_failed',
      `step "${step.id}" needs the instance in state ${unmarked.map((s) => `"${s}"`).join(', ')}, which is not reached${why}`,
      [{ field: '/step', message: `from: ${unmarked.join(', ')}` }],
      winner,
    );
  }
}

/**
 * Deadlines and waiting periods in chain time. `timestamp` is the block timestamp of the step's
 * pin when applying; when proposing, the latest decided pin's, a lower bound of the pin to come,
 * so only a deadline already missed is refused early, and a waiting period is left to the chain.
 */
export function checkTiming(state: ProcessState, step: StepDefinition, timestamp: number | undefined, proposing: boolean): void {
  if (timestamp === undefined) return;
  if (step.deadline) {
    const anchor = state.done[step.deadline.anchor]?.timestamp;
    const within = durationSeconds(step.deadline.within) ?? 0;
    if (anchor !== undefined && timestamp - anchor > within) {
      throw new StepRefused('deadline', `step "${step.id}" is too late: ${timestamp - anchor}s after "${step.deadline.anchor}" in chain time, more than the ${within}s allowed`, [
        { field: '/step', message: `deadline: within ${within}s of ${step.deadline.anchor}` },
      ]);
    }
  }
  if (step.notBefore && !proposing) {
    const anchor = state.done[step.notBefore.anchor]?.timestamp;
    const wait = durationSeconds(step.notBefore.after) ?? 0;
    if (anchor === undefined || timestamp - anchor < wait) {
      const elapsed = anchor === undefined ? `"${step.notBefore.anchor}" has not happened` : `only ${timestamp - anchor}s passed`;
      throw new StepRefused('deadline', `step "${step.id}" is too early: it waits ${wait}s after "${step.notBefore.anchor}" in chain time; ${elapsed}`, [
        { field: '/step', message: `notBefore: ${wait}s after ${step.notBefore.anchor}` },
      ]);
    }
  }
}

/** The part of the proposal a guard is about: its output when it reads only that, else its input. */
function guardedField(step: StepDefinition): string {
  const roots = new Set(guardReads(step.guard?.rule).map((path) => path.split('.')[0]));
  return roots.has('output') && !roots.has('input') ? '/output' : '/input';
}

export function checkGuard(step: StepDefinition, state: ProcessState, data: Partial<StepPayload>): void {
  if (!guardHolds(step, state, data)) {
    throw new StepRefused('guard', `step "${step.id}" is refused by its guard: ${step.guard?.message ?? 'the rule does not hold'}`, [
      { field: guardedField(step), message: step.guard?.message ?? 'guard failed' },
    ]);
  }
}

export interface Proposal {
  step: string;
  author: string;
  /** Needed only when a guard reads them; every participant then holds them. */
  input?: unknown;
  output?: unknown;
}

/**
 * Every rule, in one place: returns the step if it may be taken, throws StepRefused (or a
 * LockstepError) saying why not. `timestamp`: see checkTiming.
 */
export function judge(
  definition: Definition,
  header: InstanceHeader,
  state: ProcessState,
  proposal: Proposal,
  timestamp: number | undefined,
  proposing: boolean,
  /** Runs before the guard, which assumes valid data (the proposer validates it here). */
  validate?: (step: StepDefinition) => void,
): StepDefinition {
  const step = findStep(definition, proposal.step);
  checkActor(header, step, proposal.author);
  checkPreconditions(state, step);
  checkTiming(state, step, timestamp, proposing);
  validate?.(step);
  checkGuard(step, state, { input: proposal.input, output: proposal.output });
  return step;
}

/** Steps the given party could take now (for UIs and search attributes); guards and time aside. */
export function nextSteps(definition: Definition, header: InstanceHeader, state: ProcessState): StepDefinition[] {
  if (state.ended) return [];
  const marked = new Set(state.marked ?? []);
  return definition.steps.filter(
    (s) =>
      (repeatable(s) || !state.done[s.id]) &&
      (s.after ?? []).every((id) => state.done[id]) &&
      (s.from ?? []).every((id) => marked.has(id)) &&
      header.roles[s.actor] !== undefined,
  );
}

/** The outcome the step ends the instance with, if any: its own `ends`, or an end state it marks. */
function outcomeOf(definition: Definition, step: StepDefinition): string | undefined {
  if (step.ends) return step.ends;
  for (const id of step.to ?? []) {
    const end = definition.states?.[id]?.end;
    if (end) return end;
  }
  return undefined;
}

/** Records a confirmed step into the state; returns the new state (the input is not mutated). */
export function applyStep(
  state: ProcessState,
  step: StepDefinition,
  done: { envelopeHash: string; author: string; timestamp?: number; input?: unknown; output?: unknown },
  definition?: Definition,
): ProcessState {
  const seq = state.seq;
  const previous = state.done[step.id];
  const kept = definition ? guardReadData(guardReadPaths(definition).get(step.id), done) : {};
  const record = {
    envelopeHash: done.envelopeHash,
    author: done.author,
    seq,
    count: (previous?.count ?? (previous ? 1 : 0)) + 1,
    ...(done.timestamp !== undefined ? { timestamp: done.timestamp } : {}),
    ...kept,
  };
  const next: ProcessState = { ...state, done: { ...state.done, [step.id]: record }, seq: seq + 1 };
  if ((step.from ?? []).length > 0 || (step.to ?? []).length > 0) {
    const marked = new Set(state.marked ?? []);
    const consumedBy = { ...state.consumedBy };
    for (const s of step.from ?? []) {
      marked.delete(s);
      consumedBy[s] = done.envelopeHash;
    }
    for (const s of step.to ?? []) {
      // Marked again (a loop): whoever consumed it before is no winner over the next rival.
      marked.add(s);
      delete consumedBy[s];
    }
    next.marked = [...marked].sort();
    next.consumedBy = consumedBy;
  }
  const outcome = definition ? outcomeOf(definition, step) : step.ends;
  if (outcome && !state.ended) next.ended = { outcome, envelopeHash: done.envelopeHash };
  return next;
}
