/**
 * Validates a step's data, its `input` and its `output`, against the step's JSON Schemas (draft
 * 2020-12, formats on), with the definition's shared `$defs` in scope. Compiled validators are
 * cached per definition hash, step and schema, so validating a typical step costs microseconds.
 * Pure (no I/O): runs inside workflows as well as at the API edge and on every receiving node.
 */
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Definition, JsonSchema, StepDefinition } from '../model/definition';
import { LockstepError, type FieldError } from '../model/errors';
import { schemaOf, type DataPart } from './step-schema';

/** What a step carries besides its envelope: `output` only when the step declares an output schema. */
export interface StepPayload {
  input: unknown;
  output?: unknown;
}

const cache = new Map<string, ValidateFunction>();
/** Checks schemas against the draft 2020-12 meta-schema only; it never holds a step's schema. */
const metaSchema = new Ajv2020({ strict: false });

/**
 * Compiles without caching: for checking a definition before it is accepted. Throws on a bad
 * schema. The meta-schema check runs on a shared instance: compiling the meta-schema costs about
 * 100 ms, and each workflow has module state of its own, so when validation in workflows did it,
 * every workflow that validated a proposal paid that (docs/performance.md).
 */
export function compileStepSchema(definition: Pick<Definition, '$defs'>, step: StepDefinition, part: DataPart): ValidateFunction {
  const schema = declaredSchema(definition, step, part);
  if (!metaSchema.validateSchema(schema)) throw new Error(`schema is invalid: ${metaSchema.errorsText(metaSchema.errors)}`);
  return compileChecked(schema);
}

function declaredSchema(definition: Pick<Definition, '$defs'>, step: StepDefinition, part: DataPart): JsonSchema {
  const schema = schemaOf(definition, step, part);
  if (!schema) throw new Error(`step "${step.id}" declares no ${part} schema`);
  return schema;
}

/**
 * Compiles a schema without the meta-schema check. Each schema gets its own ajv instance: ajv
 * registers every schema with an `$id` in its instance, so two definitions (or versions) reusing an
 * `$id` would otherwise collide.
 */
function compileChecked(schema: JsonSchema): ValidateFunction {
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateSchema: false });
  addFormats(ajv);
  return ajv.compile(schema);
}

/**
 * The cached validator of a step's part, compiled without the meta-schema check: a node's
 * definitions had it when they were loaded (definitions/check.ts), and the evidence integrity
 * checks report a bundle's (evidence/integrity.ts). A schema ajv cannot compile still throws here.
 */
function validatorFor(definitionHash: string, definition: Pick<Definition, '$defs'>, step: StepDefinition, part: DataPart): ValidateFunction {
  const key = `${definitionHash}:${step.id}:${part}`;
  let validate = cache.get(key);
  if (!validate) {
    validate = compileChecked(declaredSchema(definition, step, part));
    cache.set(key, validate);
  }
  return validate;
}

export function fieldErrors(errors: ErrorObject[] | null | undefined, prefix: string): FieldError[] {
  return (errors ?? []).map((e) => {
    const missing = e.keyword === 'required' ? `/${String((e.params as { missingProperty: string }).missingProperty)}` : '';
    const extra =
      e.keyword === 'additionalProperties'
        ? `/${String((e.params as { additionalProperty: string }).additionalProperty)}`
        : '';
    return { field: `${prefix}${e.instancePath}${missing}${extra}`, message: e.message ?? e.keyword };
  });
}

function partErrors(definitionHash: string, definition: Pick<Definition, '$defs'>, step: StepDefinition, part: DataPart, value: unknown): FieldError[] {
  if (part === 'output' && !step.output) {
    return value === undefined ? [] : [{ field: '/output', message: `step "${step.id}" declares no output; leave it out` }];
  }
  if (part === 'output' && value === undefined) return [{ field: '/output', message: `required: step "${step.id}" declares an output schema` }];
  const validate = validatorFor(definitionHash, definition, step, part);
  return validate(value) ? [] : fieldErrors(validate.errors, `/${part}`);
}

/** Throws `validation_failed` naming every bad field of the input and the output at once. */
export function validateStepData(definitionHash: string, definition: Pick<Definition, '$defs'>, step: StepDefinition, data: StepPayload): void {
  const details = [
    ...partErrors(definitionHash, definition, step, 'input', data.input),
    ...partErrors(definitionHash, definition, step, 'output', data.output),
  ];
  if (details.length === 0) return;
  const parts = [...new Set(details.map((d) => d.field.split('/')[1]))];
  const summary = details.map((d) => `${d.field} ${d.message}`).join('; ');
  throw new LockstepError('validation_failed', `${parts.join(' and ')} of step "${step.id}" ${parts.length > 1 ? 'are' : 'is'} invalid: ${summary}`, details);
}
