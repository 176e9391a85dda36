/**
 * Loading process definitions: parse YAML or JSON, check them against the definition language's
 * JSON Schema (definitions/schema.json) and its semantic rules, and identify each by the hash of
 * its canonical form. Every error names the file and the path of the bad element.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { parseDocument } from 'yaml';
import type { Definition, LoadedDefinition } from '../model/definition';
import { hashJson } from '../envelope/canonical';
import { fieldErrors } from '../process/input';
import { repoRoot } from '../paths';

export interface DefinitionProblem {
  file: string;
  /** JSON pointer of the bad element. */
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export class DefinitionError extends Error {
  constructor(readonly problems: DefinitionProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'DefinitionError';
  }
}

export function formatProblem(p: DefinitionProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
  return `${where}: ${p.path || '/'}: ${p.message}`;
}

const languageSchema = JSON.parse(readFileSync(join(repoRoot(), 'definitions', 'schema.json'), 'utf8')) as object;
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validateLanguage = ajv.compile(languageSchema);

export function parseDefinition(text: string, file: string): { value: unknown; problems: DefinitionProblem[] } {
  if (file.endsWith('.json')) {
    try {
      return { value: JSON.parse(text), problems: [] };
    } catch (error) {
      return { value: undefined, problems: [{ file, path: '', message: `malformed JSON: ${(error as Error).message}` }] };
    }
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    return {
      value: undefined,
      problems: doc.errors.map((e) => ({ file, path: '', message: e.message.split('\n')[0]!, line: e.linePos?.[0].line, column: e.linePos?.[0].col })),
    };
  }
  return { value: doc.toJS(), problems: [] };
}

/** Rules the JSON Schema cannot express: references between roles and steps, order, cycles. */
export function semanticProblems(def: Definition, file: string): DefinitionProblem[] {
  const problems: DefinitionProblem[] = [];
  const stepIds = new Set<string>();
  def.steps.forEach((step, i) => {
    const at = `/steps/${i}`;
    if (stepIds.has(step.id)) problems.push({ file, path: `${at}/id`, message: `duplicate step id "${step.id}"` });
    stepIds.add(step.id);
    if (!def.roles[step.actor]) problems.push({ file, path: `${at}/actor`, message: `unknown role "${step.actor}"; roles: ${Object.keys(def.roles).join(', ')}` });
    (step.visibility ?? []).forEach((role, j) => {
      if (!def.roles[role]) problems.push({ file, path: `${at}/visibility/${j}`, message: `unknown role "${role}"` });
    });
    if (step.input !== undefined) {
      try {
        ajv.compile(step.input);
      } catch (error) {
        problems.push({ file, path: `${at}/input`, message: `invalid JSON Schema: ${(error as Error).message}` });
      }
    }
  });
  def.steps.forEach((step, i) => {
    (step.after ?? []).forEach((dep, j) => {
      if (dep === step.id) problems.push({ file, path: `/steps/${i}/after/${j}`, message: `step "${step.id}" cannot come after itself` });
      else if (!stepIds.has(dep)) problems.push({ file, path: `/steps/${i}/after/${j}`, message: `unknown step "${dep}"` });
    });
  });
  const cycle = findCycle(def);
  if (cycle) problems.push({ file, path: '/steps', message: `steps wait for each other in a cycle: ${cycle.join(' -> ')}` });
  if (!def.steps.some((s) => s.ends)) problems.push({ file, path: '/steps', message: 'no step ends the instance (set "ends" on at least one step)' });
  return problems;
}

function findCycle(def: Definition): string[] | undefined {
  const after = new Map(def.steps.map((s) => [s.id, s.after ?? []]));
  const state = new Map<string, 'visiting' | 'done'>();
  const trail: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...trail.slice(trail.indexOf(id)), id];
    state.set(id, 'visiting');
    trail.push(id);
    for (const dep of after.get(id) ?? []) {
      if (!after.has(dep) || dep === id) continue;
      const found = visit(dep);
      if (found) return found;
    }
    trail.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of after.keys()) {
    const found = visit(id);
    if (found) return found;
  }
  return undefined;
}

export function checkDefinition(value: unknown, file: string): { definition?: Definition; problems: DefinitionProblem[] } {
  if (!validateLanguage(value)) {
    return { problems: fieldErrors(validateLanguage.errors, '').map((e) => ({ file, path: e.field, message: e.message })) };
  }
  const definition = value as Definition;
  const problems = semanticProblems(definition, file);
  return problems.length > 0 ? { problems } : { definition, problems };
}

export function loadDefinitionFile(path: string): LoadedDefinition {
  const file = relative(process.cwd(), path) || path;
  const parsed = parseDefinition(readFileSync(path, 'utf8'), file);
  if (parsed.problems.length > 0) throw new DefinitionError(parsed.problems);
  const checked = checkDefinition(parsed.value, file);
  if (!checked.definition) throw new DefinitionError(checked.problems);
  return { definition: checked.definition, hash: hashJson(checked.definition), source: file };
}

export function definitionFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f) && f !== 'schema.json')
    .sort()
    .map((f) => join(dir, f));
}

/** Loads every definition in a folder; refuses (listing every problem) if any is invalid. */
export function loadDefinitions(dir: string): LoadedDefinition[] {
  const loaded: LoadedDefinition[] = [];
  const problems: DefinitionProblem[] = [];
  for (const path of definitionFiles(dir)) {
    try {
      loaded.push(loadDefinitionFile(path));
    } catch (error) {
      if (error instanceof DefinitionError) problems.push(...error.problems);
      else throw error;
    }
  }
  if (problems.length > 0) throw new DefinitionError(problems);
  return loaded;
}
