/** Request bodies checked against the JSON Schemas of the wire formats before anything else. */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { LockstepError } from '../model/errors';
import { fieldErrors } from '../process/step-data';
import { WIRE_SCHEMAS, type WireFormat } from './wire-schemas';

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const compiled = new Map<WireFormat, ValidateFunction>();

export function requireShape<T>(body: unknown, format: WireFormat): T {
  let validate = compiled.get(format);
  if (!validate) {
    validate = ajv.compile(WIRE_SCHEMAS[format]);
    compiled.set(format, validate);
  }
  if (!validate(body)) {
    const details = fieldErrors(validate.errors, '');
    throw new LockstepError('validation_failed', `not a valid ${format}: ${details.map((d) => `${d.field || '/'} ${d.message}`).join('; ')}`, details);
  }
  return body as T;
}
