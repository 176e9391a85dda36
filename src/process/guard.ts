/**
 * Guards: the rules of the road as JSON Logic, evaluated over data every participant holds, so
 * every node reaches the same verdict. What a guard may read (checked when a definition loads):
 *
 * - `input.<field>` and `output.<field>`: the step's own input and output (only if the step is
 *   visible to every role);
 * - `steps.<id>.input.<field>` and `steps.<id>.output.<field>`: the latest input and output of a
 *   step visible to every role;
 * - `steps.<id>.count` and `steps.<id>.author`: how often and by whom a step was taken.
 *
 * Pure: runs inside the workflow (deterministic) and at the API edge alike.
 */
import jsonLogic from 'json-logic-js';
import type { Definition, StepDefinition } from '../model/definition';
import type { ProcessState } from './state';
import type { StepPayload } from './step-data';

/** The JSON Logic operations a guard may use: json-logic-js's own, minus `log` (a side effect). */
export const GUARD_OPERATIONS = new Set([
  '==', '===', '!=', '!==', '>', '>=', '<', '<=', '!!', '!', '%', 'in', 'cat', 'substr', '+', '*', '-', '/',
  'min', 'max', 'merge', 'var', 'missing', 'missing_some', 'if', '?:', 'and', 'or',
  'filter', 'map', 'reduce', 'all', 'none', 'some',
]);

/** Operations whose later arguments run with the array element as data, not the instance data. */
export const SCOPED_OPERATIONS = new Set(['filter', 'map', 'reduce', 'all', 'none', 'some']);

export interface GuardData {
  input?: unknown;
  output?: unknown;
  steps: Record<string, { count: number; author: string; input?: unknown; output?: unknown }>;
}

export function guardData(state: ProcessState, data: Partial<StepPayload>): GuardData {
  const steps: GuardData['steps'] = {};
  for (const [id, done] of Object.entries(state.done)) {
    steps[id] = {
      count: done.count ?? 1,
      author: done.author,
      ...(done.input !== undefined ? { input: done.input } : {}),
      ...(done.output !== undefined ? { output: done.output } : {}),
    };
  }
  return { input: data.input, ...(data.output !== undefined ? { output: data.output } : {}), steps };
}

/** True when the guard lets the step be taken. */
export function guardHolds(step: StepDefinition, state: ProcessState, data: Partial<StepPayload>): boolean {
  if (!step.guard) return true;
  return jsonLogic.truthy(jsonLogic.apply(step.guard.rule, guardData(state, data)));
}

/** Every `var` path a rule reads from the instance data (not from inside array iterations). */
export function guardReads(rule: unknown): string[] {
  const found: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    for (const [op, raw] of Object.entries(node)) {
      const args: unknown[] = Array.isArray(raw) ? raw : [raw];
      if (op === 'var') {
        if (typeof args[0] === 'string' || typeof args[0] === 'number') found.push(String(args[0]));
        else walk(args[0]);
        args.slice(1).forEach(walk);
      } else if (op === 'missing' || op === 'missing_some') {
        const names = op === 'missing' ? args : Array.isArray(args[1]) ? args[1] : [];
        names.forEach((n) => (typeof n === 'string' ? found.push(n) : walk(n)));
      } else if (SCOPED_OPERATIONS.has(op)) {
        walk(args[0]);
      } else {
        args.forEach(walk);
      }
    }
  };
  walk(rule);
  return found;
}

/** Ids of the steps whose input or output some guard reads: the only step data the state keeps. */
export function stepsReadByGuards(definition: Definition): Set<string> {
  const read = new Set<string>();
  for (const step of definition.steps) {
    if (!step.guard) continue;
    for (const path of guardReads(step.guard.rule)) {
      const [root, id, field] = path.split('.');
      if (root === 'input' || root === 'output') read.add(step.id);
      if (root === 'steps' && id !== undefined && (field === 'input' || field === 'output')) read.add(id);
    }
  }
  return read;
}
