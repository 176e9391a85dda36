/** The rules of the road, as every node applies them. */
import { join } from 'node:path';
import { loadDefinitionFile } from '../src/definitions/load';
import { applyStep, checkActor, checkPreconditions, findStep, nextSteps } from '../src/process/rules';
import { validateStepData } from '../src/process/step-data';
import { emptyState } from '../src/process/state';
import { LockstepError } from '../src/model/errors';
import type { InstanceHeader } from '../src/model/instance';

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
