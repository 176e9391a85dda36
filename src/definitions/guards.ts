/**
 * Static checks of guards, when a definition loads: only known JSON Logic operations, only
 * fields that exist, and only data that EVERY participant holds. A guard reading a step some
 * roles cannot see would let the nodes that lack the data reach a different verdict.
 */
import type { Definition, JsonSchema, StepDefinition } from '../model/definition';
import { GUARD_OPERATIONS, guardReads, missingNames } from '../process/guard';
import type { DataPart } from '../process/step-schema';

export interface Problem {
  path: string;
  message: string;
}

export function visibleToAll(definition: Definition, step: StepDefinition): boolean {
  return !step.visibility || Object.keys(definition.roles).every((r) => step.visibility!.includes(r));
}

function operationProblems(rule: unknown, at: string): Problem[] {
  const problems: Problem[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    const keys = Object.keys(node);
    if (keys.length !== 1) {
      problems.push({ path: at, message: `a JSON Logic operation is an object with exactly one key; found {${keys.join(', ')}}` });
      return;
    }
    const op = keys[0]!;
    const args = (node as Record<string, unknown>)[op];
    if (!GUARD_OPERATIONS.has(op)) problems.push({ path: at, message: `unknown JSON Logic operation "${op}"; known: ${[...GUARD_OPERATIONS].join(' ')}` });
    if (op === 'var') {
      const name: unknown = Array.isArray(args) ? (args as unknown[])[0] : args;
      if (typeof name !== 'string' || name === '') {
        problems.push({ path: at, message: 'a "var" must name a field literally (e.g. "input.amount"), so every node can check what the guard reads' });
      }
    }
    if (op === 'missing' || op === 'missing_some') {
      // A computed name would read a field no one can see is read: nodes keep only what guards
      // are seen to read (guardReadData), so it must be named.
      const names = missingNames(op, Array.isArray(args) ? (args as unknown[]) : [args]);
      if (names.some((n) => typeof n !== 'string' || n === '')) {
        problems.push({ path: at, message: `a "${op}" must name its fields literally (e.g. ["input.amount"]), so every node can check what the guard reads` });
      }
    }
    walk(args);
  };
  walk(rule);
  return problems;
}

/** Follows `$ref: "#/$defs/x"` (definition or schema level) and looks for the field through properties, items and allOf/anyOf/oneOf. */
export function schemaHasField(definition: Definition, schema: JsonSchema | undefined, segments: string[], depth = 0): boolean {
  if (!schema || depth > 32) return false;
  if (segments.length === 0) return true;
  const ref = schema.$ref;
  if (typeof ref === 'string') {
    const name = /^#\/\$defs\/([^/]+)$/.exec(ref)?.[1];
    const target = name === undefined ? undefined : ((schema.$defs as Record<string, JsonSchema> | undefined)?.[name] ?? definition.$defs?.[name]);
    if (schemaHasField(definition, target, segments, depth + 1)) return true;
  }
  for (const key of ['allOf', 'anyOf', 'oneOf']) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.some((b) => schemaHasField(definition, b as JsonSchema, segments, depth + 1))) return true;
  }
  const [head, ...rest] = segments as [string, ...string[]];
  const properties = schema.properties as Record<string, JsonSchema> | undefined;
  if (properties && Object.hasOwn(properties, head)) return schemaHasField(definition, properties[head], rest, depth + 1);
  if (/^[0-9]+$/.test(head) && typeof schema.items === 'object') return schemaHasField(definition, schema.items as JsonSchema, rest, depth + 1);
  return false;
}

const READABLE =
  'a guard may read input.<field>, output.<field>, steps.<step>.input.<field>, steps.<step>.output.<field>, steps.<step>.count or steps.<step>.author';

const isPart = (name: string | undefined): name is DataPart => name === 'input' || name === 'output';

function readProblem(definition: Definition, step: StepDefinition, path: string, at: string): Problem | undefined {
  const [root, ...rest] = path.split('.');
  const fieldOf = (source: StepDefinition, part: DataPart, segments: string[]): Problem | undefined => {
    if (!visibleToAll(definition, source)) {
      return {
        path: at,
        message: `guard reads "${path}", but step "${source.id}" is visible only to ${source.visibility!.join(', ')}: every participant must hold what a guard reads, or nodes would reach different verdicts`,
      };
    }
    if (part === 'output' && !source.output) {
      return { path: at, message: `guard reads unknown field "${path}": step "${source.id}" declares no output schema` };
    }
    if (segments.length === 0) return undefined;
    if (!schemaHasField(definition, source[part], segments)) {
      return { path: at, message: `guard reads unknown field "${path}": the ${part} schema of step "${source.id}" declares no "${segments.join('.')}"` };
    }
    return undefined;
  };
  if (isPart(root)) return fieldOf(step, root, rest);
  if (root === 'steps') {
    const [id, part, ...field] = rest;
    const source = definition.steps.find((s) => s.id === id);
    if (!source) return { path: at, message: `guard reads "${path}": there is no step "${id ?? ''}"` };
    if (part === 'count' || part === 'author') return field.length === 0 ? undefined : { path: at, message: `guard reads "${path}": ${READABLE}` };
    if (isPart(part)) return fieldOf(source, part, field);
    return { path: at, message: `guard reads "${path}": ${READABLE}` };
  }
  return { path: at, message: `guard reads unknown field "${path}": ${READABLE}` };
}

export function guardProblems(definition: Definition, step: StepDefinition, at: string): Problem[] {
  if (!step.guard) return [];
  const ruleAt = `${at}/guard/rule`;
  const problems = operationProblems(step.guard.rule, ruleAt);
  for (const path of new Set(guardReads(step.guard.rule))) {
    const problem = readProblem(definition, step, path, ruleAt);
    if (problem) problems.push(problem);
  }
  return problems;
}
