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

/**
 * The field names a `missing` or `missing_some` names, as json-logic-js takes them: `missing`'s
 * arguments, or the array that is its first; `missing_some`'s second argument.
 */
export function missingNames(op: 'missing' | 'missing_some', args: unknown[]): unknown[] {
  if (op === 'missing') return Array.isArray(args[0]) ? args[0] : args;
  return Array.isArray(args[1]) ? args[1] : args.slice(1);
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
        missingNames(op, args).forEach((n) => (typeof n === 'string' ? found.push(n) : walk(n)));
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

/**
 * What the guards read of each step's data, by step id: paths into its payload, split at the
 * dots (`["input", "amount"]`; `["output"]` alone: all of the output). A step's own guard reads
 * its proposal; any guard may read, through `steps.<id>`, the latest occurrence of another.
 */
export type GuardReadPaths = ReadonlyMap<string, readonly (readonly string[])[]>;

// Definitions are immutable once loaded, and the workflow asks once per decided step.
const readPathsOf = new WeakMap<Definition, GuardReadPaths>();

export function guardReadPaths(definition: Definition): GuardReadPaths {
  const known = readPathsOf.get(definition);
  if (known) return known;
  const read = new Map<string, string[][]>();
  const add = (id: string, path: string[]): void => {
    const known = read.get(id) ?? [];
    if (!known.some((p) => p.join('.') === path.join('.'))) read.set(id, [...known, path]);
  };
  for (const step of definition.steps) {
    if (!step.guard) continue;
    for (const path of guardReads(step.guard.rule)) {
      const [root, ...rest] = path.split('.');
      if (root === 'input' || root === 'output') add(step.id, [root, ...rest]);
      const [id, part, ...field] = rest;
      if (root === 'steps' && id !== undefined && (part === 'input' || part === 'output')) add(id, [part, ...field]);
    }
  }
  readPathsOf.set(definition, read);
  return read;
}

/**
 * The part of a step's data its guards read, and no more: what the workflow keeps of a step for
 * later guards, carries across continue-as-new and is signalled with. JSON Logic's `var` walks
 * a path one property at a time, so keeping each read path's properties (and whatever lies at
 * its end) gives every guard the same values, and the same absences, as the whole data would:
 * the verdicts cannot differ. Where a path meets an array or a scalar before its end, that value
 * is kept whole (an index or a string's length reads it in ways not worth narrowing).
 */
export function guardReadData(paths: readonly (readonly string[])[] | undefined, data: { input?: unknown; output?: unknown }): { input?: unknown; output?: unknown } {
  const kept: { input?: unknown; output?: unknown } = {};
  if (!paths) return kept;
  for (const part of ['input', 'output'] as const) {
    const within = paths.filter((p) => p[0] === part).map((p) => p.slice(1));
    if (within.length > 0 && data[part] !== undefined) kept[part] = pick(data[part], within);
  }
  return kept;
}

function pick(value: unknown, paths: readonly (readonly string[])[]): unknown {
  if (paths.some((p) => p.length === 0) || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const source = value as Record<string, unknown>;
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(source)) {
    const below = paths.filter((p) => p[0] === key).map((p) => p.slice(1));
    // Defined, not assigned: a key named "__proto__" stays a key, as in the data.
    if (below.length > 0) Object.defineProperty(picked, key, { value: pick(source[key], below), enumerable: true, writable: true, configurable: true });
  }
  return picked;
}
