/**
 * The JSON Schema of a step's data, as validation compiles it (step-data.ts) and as a human task
 * shows it: what only reads a schema (a human task's details) needs no validator.
 */
import type { Definition, JsonSchema, StepDefinition } from '../model/definition';

/** Which of a step's two schemas: what the actor submits, and the result it produced. */
export type DataPart = 'input' | 'output';

const ACCEPT_ANYTHING_OBJECT: JsonSchema = { type: 'object' };

/**
 * The schema of one part as compiled: the definition's `$defs` merged in, so `#/$defs/x` resolves.
 * An undeclared input accepts any object; an undeclared output is `undefined` (none is allowed).
 */
export function schemaOf(definition: Pick<Definition, '$defs'>, step: StepDefinition, part: DataPart): JsonSchema | undefined {
  const schema = part === 'input' ? (step.input ?? ACCEPT_ANYTHING_OBJECT) : step.output;
  if (!schema || !definition.$defs) return schema;
  const own = (schema.$defs ?? {}) as Record<string, unknown>;
  return { ...schema, $defs: { ...definition.$defs, ...own } };
}
