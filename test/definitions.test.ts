/** Loading definitions: the bundled ones are valid; a wrong one is impossible to miss. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefinitionError, loadDefinitionFile, loadDefinitions, parseDefinition, checkDefinition } from '../src/definitions/load';

const base = {
  id: 'sample',
  version: '1',
  title: 'Sample',
  roles: { buyer: {}, seller: {} },
  steps: [
    { id: 'order', title: 'Order', actor: 'buyer' },
    { id: 'accept', title: 'Accept', actor: 'seller', after: ['order'], ends: 'done' },
  ],
};

function problemsOf(value: unknown): string[] {
  return checkDefinition(value, 'sample.json').problems.map((p) => `${p.path}: ${p.message}`);
}

test('every bundled definition loads, with a stable hash', () => {
  const loaded = loadDefinitions(join(__dirname, '..', 'definitions'));
  expect(loaded.map((d) => d.definition.id)).toContain('purchase-order');
  const again = loadDefinitionFile(join(__dirname, '..', 'definitions', 'purchase-order.yaml'));
  expect(again.hash).toBe(loaded.find((d) => d.definition.id === 'purchase-order')!.hash);
  expect(again.hash).toMatch(/^0x[0-9a-f]{64}$/);
});

test.each([
  ['an unknown actor role', { ...base, steps: [{ ...base.steps[0], actor: 'bank' }, base.steps[1]] }, /\/steps\/0\/actor: unknown role "bank"/],
  ['a step after itself', { ...base, steps: [base.steps[0], { ...base.steps[1], after: ['accept'] }] }, /\/steps\/1\/after\/0: step "accept" cannot come after itself/],
  ['a step after an unknown step', { ...base, steps: [base.steps[0], { ...base.steps[1], after: ['quote'] }] }, /unknown step "quote"/],
  ['duplicate step ids', { ...base, steps: [base.steps[0], { ...base.steps[1], id: 'order' }] }, /duplicate step id "order"/],
  ['a cycle', { ...base, steps: [{ ...base.steps[0], after: ['accept'] }, base.steps[1]] }, /cycle: (order -> accept -> order|accept -> order -> accept)/],
  ['visibility naming an unknown role', { ...base, steps: [{ ...base.steps[0], visibility: ['auditor'] }, base.steps[1]] }, /\/steps\/0\/visibility\/0: unknown role "auditor"/],
  ['a bad input schema', { ...base, steps: [{ ...base.steps[0], input: { type: 'nonsense' } }, base.steps[1]] }, /\/steps\/0\/input: invalid JSON Schema/],
  ['no end', { ...base, steps: [base.steps[0], { ...base.steps[1], ends: undefined }] }, /no step ends the instance/],
  ['a missing title', { ...base, title: undefined }, /must have required property 'title'/],
  ['an unknown field', { ...base, colour: 'red' }, /\/colour: must NOT have additional properties/],
  ['a bad step id', { ...base, steps: [{ ...base.steps[0], id: 'Order Now' }, base.steps[1]] }, /\/steps\/0\/id: must match pattern/],
])('refuses %s, naming the element', (_what, value, expected) => {
  expect(problemsOf(JSON.parse(JSON.stringify(value))).join('\n')).toMatch(expected);
});

test('YAML syntax errors name the line and column', () => {
  const { problems } = parseDefinition('id: x\nroles: [a\nsteps: 1\n', 'broken.yaml');
  expect(problems.length).toBeGreaterThan(0);
  expect(problems[0]!.line).toBeGreaterThan(0);
  expect(problems[0]!.column).toBeGreaterThan(0);
});

test('a folder with one bad definition is refused as a whole, naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-defs-'));
  writeFileSync(join(dir, 'good.json'), JSON.stringify(base));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...base, id: 'bad', roles: {} }));
  expect(() => loadDefinitions(dir)).toThrow(DefinitionError);
  expect(() => loadDefinitions(dir)).toThrow(/bad\.json/);
});
