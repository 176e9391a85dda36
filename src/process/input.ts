/**
 * Validates a step's input against the step's JSON Schema (draft 2020-12, formats on), with the
 * definition's shared `$defs` in scope. Compiled validators are cached per definition hash and
 * step, so validation of a typical input costs microseconds. Pure (no I/O): runs inside
 * workflows as well as at the API edge and on every receiving node.
 */
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Definition, JsonSchema, StepDefinition } from '../model/definition';
import { LockstepError, type FieldError } from '../model/errors';

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);

const cache = new Map<string, ValidateFunction>();
const ACCEPT_ANYTHING_OBJECT: JsonSchema = { type: 'object' };

/** The step's input schema as compiled: the definition's `$defs` merged in, so `#/$defs/x` resolves. */
export function inputSchemaOf(definition: Pick<Definition, '$defs'>, step: StepDefinition): JsonSchema {
  const schema = step.input ?? ACCEPT_ANYTHING_OBJECT;
  if (!definition.$defs) return schema;
  const own = (schema.$defs ?? {}) as Record<string, unknown>;
  return { ...schema, $defs: { ...definition.$defs, ...own } };
}

/** Compiles without caching: for checking a definition before it is accepted. Throws on a bad schema. */
export function compileInputSchema(definition: Pick<Definition, '$defs'>, step: StepDefinition): ValidateFunction {
  return ajv.compile(inputSchemaOf(definition, step));
}

function validatorFor(definitionHash: string, definition: Pick<Definition, '$defs'>, step: StepDefinition): ValidateFunction {
  const key = `${definitionHash}:${step.id}`;
  let validate = cache.get(key);
  if (!validate) {
    validate = compileInputSchema(definition, step);
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

export function validateInput(definitionHash: string, definition: Pick<Definition, '$defs'>, step: StepDefinition, input: unknown): void {
  const validate = validatorFor(definitionHash, definition, step);
  if (!validate(input)) {
    const details = fieldErrors(validate.errors, '/input');
    const summary = details.map((d) => `${d.field} ${d.message}`).join('; ');
    throw new LockstepError('validation_failed', `input of step "${step.id}" is invalid: ${summary}`, details);
  }
}
