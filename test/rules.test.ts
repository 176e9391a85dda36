/** The rules of the road, as every node applies them. */
import { join } from 'node:path';
import { loadDefinitionFile } from '../src/definitions/load';
import { applyStep, checkActor, checkPreconditions, findStep, nextSteps } from '../src/process/rules';
import { validateStepData } from '../src/process/step-data';
import Ajv2020 from 'ajv/dist/2020';
import { emptyState } from '../src/process/state';
import { LockstepError } from '../src/model/errors';
import type { InstanceHeader } from '../src/model/instance';
import type { Definition } from '../src/model/definition';
import { semanticProblems } from '../src/definitions/check';

const po = loadDefinitionFile(join(__dirname, '..', 'definitions', 'purchase-order.yaml'));
const header: InstanceHeader = { id: 'i', definitionId: 'purchase-order', definitionHash: po.hash, roles: { buyer: 'acme', seller: 'globex' }, createdBy: 'acme', createdAt: '' };
const step = (id: string) => findStep(po.definition, id);

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as LockstepError).code;
  }
}

test('only the party bound to the actor role may take a step', () => {
  expect(codeOf(() => checkActor(header, step('order'), 'acme'))).toBeUndefined();
  expect(codeOf(() => checkActor(header, step('order'), 'globex'))).toBe('forbidden');
});

test('a step waits for its predecessors, happens once, and nothing follows the end', () => {
  let state = emptyState();
  expect(codeOf(() => checkPreconditions(state, step('accept')))).toBe('precondition_failed');
  state = applyStep(state, step('order'), { envelopeHash: '0x01', author: 'acme' });
  expect(codeOf(() => checkPreconditions(state, step('accept')))).toBeUndefined();
  expect(codeOf(() => checkPreconditions(state, step('order')))).toBe('conflict');
  expect(nextSteps(po.definition, header, state).map((s) => s.id)).toEqual(['accept']);
  for (const [id, author] of [['accept', 'globex'], ['ship', 'globex'], ['pay', 'acme']] as const) {
    state = applyStep(state, step(id), { envelopeHash: `0x${id}`, author });
  }
  expect(state.ended).toEqual({ outcome: 'completed', envelopeHash: '0xpay' });
  expect(state.seq).toBe(4);
  expect(nextSteps(po.definition, header, state)).toEqual([]);
  expect(codeOf(() => checkPreconditions(state, step('accept')))).toBe('conflict');
});

test('an unknown step is named with the known ones', () => {
  expect(() => findStep(po.definition, 'refund')).toThrow(/no step "refund".*order, accept, ship, pay/);
});

test('input is validated against the step schema, naming each failing field', () => {
  expect(() => validateStepData(po.hash, po.definition, step('order'), { input: { sku: 'A', quantity: 1, unitPrice: 2 } })).not.toThrow();
  try {
    validateStepData(po.hash, po.definition, step('order'), { input: { sku: '', quantity: 0, colour: 'red' } });
    throw new Error('expected a validation error');
  } catch (error) {
    const e = error as LockstepError;
    expect(e.code).toBe('validation_failed');
    expect(e.details.map((d) => d.field).sort()).toEqual(['/input/colour', '/input/quantity', '/input/sku', '/input/unitPrice']);
  }
  expect(() => validateStepData(po.hash, po.definition, step('accept'), { input: { deliveryDate: '2026-02-30' } })).toThrow(/deliveryDate/);
});

const claim = loadDefinitionFile(join(__dirname, '..', 'definitions', 'healthcare-claim.yaml'));
const approve = findStep(claim.definition, 'approve-primary');

function fieldsOf(fn: () => void): string[] {
  try {
    fn();
  } catch (error) {
    const e = error as LockstepError;
    expect(e.code).toBe('validation_failed');
    return e.details.map((d) => d.field).sort();
  }
  return [];
}

test('a declared output is required and validated against its schema, naming /output fields', () => {
  expect(fieldsOf(() => validateStepData(claim.hash, claim.definition, approve, { input: {}, output: { coveredAmount: 120.5 } }))).toEqual([]);
  expect(fieldsOf(() => validateStepData(claim.hash, claim.definition, approve, { input: {} }))).toEqual(['/output']);
  expect(fieldsOf(() => validateStepData(claim.hash, claim.definition, approve, { input: {}, output: { coveredAmount: -1, extra: true } }))).toEqual([
    '/output/coveredAmount',
    '/output/extra',
  ]);
  // Input and output have their own schemas (and cached validators) under the same step.
  expect(fieldsOf(() => validateStepData(claim.hash, claim.definition, approve, { input: { coveredAmount: 1 }, output: { coveredAmount: 1 } }))).toEqual(['/input/coveredAmount']);
  expect(() => validateStepData(claim.hash, claim.definition, approve, { input: { reviewNote: '' }, output: {} })).toThrow(
    /input and output of step "approve-primary" are invalid: .*\/input\/reviewNote.*\/output\/coveredAmount/,
  );
});

test('a step without an output schema refuses any output, naming it', () => {
  expect(() => validateStepData(po.hash, po.definition, step('order'), { input: { sku: 'A', quantity: 1, unitPrice: 2 }, output: { ok: true } })).toThrow(
    /output of step "order" is invalid: \/output step "order" declares no output; leave it out/,
  );
});

test('two definitions may reuse a schema $id: each validates against its own schema', () => {
  const definitionWith = (required: string): Definition => ({
    id: 'reuse',
    version: required,
    title: 'Reuse',
    roles: { a: {} },
    steps: [{ id: 's', title: 'S', actor: 'a', ends: 'done', input: { $id: 'https://example.com/schemas/s', type: 'object', required: [required] } }],
  });
  const first = definitionWith('alpha');
  const second = definitionWith('beta');
  const [s1, s2] = [first.steps[0]!, second.steps[0]!];
  expect(fieldsOf(() => validateStepData('0x01', first, s1, { input: { alpha: 1 } }))).toEqual([]);
  expect(fieldsOf(() => validateStepData('0x02', second, s2, { input: { beta: 1 } }))).toEqual([]);
  expect(fieldsOf(() => validateStepData('0x02', second, s2, { input: { alpha: 1 } }))).toEqual(['/input/beta']);
  expect(semanticProblems(second)).toEqual([]);
});

test('validating step data compiles the step schema alone; the meta-schema check is left to loading the definition', () => {
  // Workflows validate proposals, and each workflow has module state of its own: a meta-schema
  // compile there cost every workflow about 100 ms (docs/performance.md).
  const metaCheck = jest.spyOn(Ajv2020.prototype, 'validateSchema');
  try {
    const definition: Definition = { id: 'meta', version: '1', title: 'Meta', roles: { a: {} }, steps: [{ id: 's', title: 'S', actor: 'a', ends: 'done', input: { type: 'object', required: ['x'] } }] };
    expect(fieldsOf(() => validateStepData('0xmeta', definition, definition.steps[0]!, { input: {} }))).toEqual(['/input/x']);
    expect(metaCheck).not.toHaveBeenCalled();
    expect(semanticProblems(definition)).toEqual([]);
  } finally {
    metaCheck.mockRestore();
  }
});
