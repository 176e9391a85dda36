/**
 * Loading process definitions: parse YAML or JSON, check them against the definition language's
 * JSON Schema (definitions/schema.json) and its semantic rules (check.ts), and identify each by
 * the hash of its canonical form. Every error names the file, line and column, and the path of
 * the bad element.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Definition, LoadedDefinition } from '../model/definition';
import { hashJson } from '../envelope/canonical';
import { fieldErrors } from '../process/step-data';
import { repoRoot } from '../paths';
import { semanticProblems } from './check';
import { parseDefinition, type DefinitionProblem } from './parse';

export { parseDefinition, type DefinitionProblem } from './parse';
export { semanticProblems } from './check';

export class DefinitionError extends Error {
  constructor(readonly problems: DefinitionProblem[]) {
    const files = [...new Set(problems.map((p) => p.file))].join(', ');
    super(`invalid process definition in ${files}:\n${problems.map(formatProblem).join('\n')}`);
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

/** Checks a parsed definition; problems carry the file and the JSON pointer (no position). */
export function checkDefinition(value: unknown, file: string): { definition?: Definition; problems: DefinitionProblem[] } {
  if (!validateLanguage(value)) {
    return { problems: fieldErrors(validateLanguage.errors, '').map((e) => ({ file, path: e.field, message: e.message })) };
  }
  const definition = value as Definition;
  const problems = semanticProblems(definition).map((p) => ({ file, ...p }));
  return problems.length > 0 ? { problems } : { definition, problems };
}

/** Parses and checks definition text; every problem located in the text where possible. */
export function checkDefinitionText(text: string, file: string): { definition?: Definition; problems: DefinitionProblem[] } {
  const parsed = parseDefinition(text, file);
  if (parsed.problems.length > 0) return { problems: parsed.problems };
  const checked = checkDefinition(parsed.value, file);
  return { ...checked, problems: checked.problems.map((p) => ({ ...p, ...parsed.locate(p.path) })) };
}

export function loadDefinitionFile(path: string): LoadedDefinition {
  const file = relative(process.cwd(), path) || path;
  const checked = checkDefinitionText(readFileSync(path, 'utf8'), file);
  if (!checked.definition) throw new DefinitionError(checked.problems);
  return { definition: checked.definition, hash: hashJson(checked.definition), source: file };
}

export function definitionFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f) && f !== 'schema.json')
    .sort()
    .map((f) => join(dir, f));
}

/** Loads every definition in a folder; refuses (listing every problem, by file) if any is invalid. */
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
