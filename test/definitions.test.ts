/** Loading definitions: the bundled ones are valid; a wrong one is impossible to miss. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefinitionError, loadDefinitionFile, loadDefinitions, parseDefinition, checkDefinition, checkDefinitionText } from '../src/definitions/load';
import { DefinitionRegistry } from '../src/definitions/registry';
import { hashJson } from '../src/envelope/canonical';

/** A partial order of steps (`after`). */
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

/** A state machine with a choice, a loop and two end states; `mutate` breaks one thing. */
function machine(mutate: (d: Record<string, any>) => void = () => undefined): unknown {
  const d: Record<string, any> = {
    id: 'machine',
    version: '1',
    title: 'Machine',
    roles: { buyer: {}, seller: {} },
    $defs: { money: { type: 'number', minimum: 0 } },
    states: { start: { initial: true }, quoted: {}, queried: {}, won: { end: 'won' }, lost: { end: 'lost' } },
    steps: [
      { id: 'quote', title: 'Quote', actor: 'seller', from: ['start'], to: ['quoted'], input: { type: 'object', properties: { price: { $ref: '#/$defs/money' } } } },
      { id: 'ask', title: 'Ask', actor: 'buyer', from: ['quoted'], to: ['queried'], visibility: ['buyer', 'seller'] },
      { id: 'answer', title: 'Answer', actor: 'seller', from: ['queried'], to: ['quoted'], visibility: ['seller', 'buyer'], input: { type: 'object', properties: { note: { type: 'string' } } } },
      { id: 'accept', title: 'Accept', actor: 'buyer', from: ['quoted'], to: ['won'], guard: { rule: { '>': [{ var: 'steps.quote.input.price' }, 0] } } },
      { id: 'decline', title: 'Decline', actor: 'buyer', from: ['quoted'], to: ['lost'] },
    ],
  };
  mutate(d);
  return JSON.parse(JSON.stringify(d));
}

/** An output schema for the sample's quote step, for the cases about outputs. */
const QUOTE_OUTPUT = { type: 'object', required: ['total'], properties: { total: { $ref: '#/$defs/money' } } };

function problemsOf(value: unknown): string {
  return checkDefinition(value, 'sample.json').problems.map((p) => `${p.path}: ${p.message}`).join('\n');
}

test('every bundled definition loads, with a stable hash', () => {
  const loaded = loadDefinitions(join(__dirname, '..', 'definitions'));
  expect(loaded.map((d) => d.definition.id).sort()).toEqual(['competitive-tender', 'healthcare-claim', 'letter-of-credit', 'purchase-order']);
  const again = loadDefinitionFile(join(__dirname, '..', 'definitions', 'purchase-order.yaml'));
  expect(again.hash).toBe(loaded.find((d) => d.definition.id === 'purchase-order')!.hash);
  expect(again.hash).toMatch(/^0x[0-9a-f]{64}$/);
});

test('the sample state machine is valid, so each case below breaks exactly one thing', () => {
  expect(problemsOf(machine())).toBe('');
  expect(problemsOf(base)).toBe('');
});

test('a step may declare an output schema, with $refs to the shared $defs, and guards may read its fields', () => {
  const withOutput = machine((d) => {
    d.steps[0].output = QUOTE_OUTPUT;
    d.steps[3].guard.rule = { '>': [{ var: 'steps.quote.output.total' }, { var: 'steps.quote.input.price' }] };
    d.steps[4].output = { type: 'object', properties: { reason: { type: 'string' } } };
    d.steps[4].guard = { rule: { '!!': { var: 'output.reason' } } };
  });
  expect(problemsOf(withOutput)).toBe('');
});

test("a definition's identity is the hash of its canonical form: key order and layout do not matter, content does", () => {
  const reordered = JSON.parse(JSON.stringify(machine(), (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v)));
  expect(hashJson(reordered)).toBe(hashJson(machine()));
  expect(hashJson(machine((d) => (d.version = '2')))).not.toBe(hashJson(machine()));
});

const malformed: [string, unknown, RegExp][] = [
  ['an unknown actor role', { ...base, steps: [{ ...base.steps[0], actor: 'bank' }, base.steps[1]] }, /\/steps\/0\/actor: unknown role "bank"; roles: buyer, seller/],
  ['a step after itself', { ...base, steps: [base.steps[0], { ...base.steps[1], after: ['accept'] }] }, /\/steps\/1\/after\/0: step "accept" cannot come after itself/],
  ['a step after an unknown step', { ...base, steps: [base.steps[0], { ...base.steps[1], after: ['quote'] }] }, /\/steps\/1\/after\/0: after names unknown step "quote"/],
  ['duplicate step ids', { ...base, steps: [base.steps[0], { ...base.steps[1], id: 'order' }] }, /\/steps\/1\/id: duplicate step id "order"/],
  ['steps waiting for each other', { ...base, steps: [{ ...base.steps[0], after: ['accept'] }, base.steps[1]] }, /cycle: (order -> accept -> order|accept -> order -> accept)/],
  ['visibility naming an unknown role', { ...base, steps: [{ ...base.steps[0], visibility: ['buyer', 'auditor'] }, base.steps[1]] }, /\/steps\/0\/visibility\/1: visibility names unknown role "auditor"/],
  ['visibility without the actor', machine((d) => (d.steps[1].visibility = ['seller'])), /\/steps\/1\/visibility: visibility must include the actor "buyer"/],
  ['a bad input schema', machine((d) => (d.steps[0].input = { type: 'nonsense' })), /\/steps\/0\/input: invalid JSON Schema/],
  ['a bad $ref', machine((d) => (d.steps[0].input.properties.price = { $ref: '#/$defs/price' })), /\/steps\/0\/input: bad \$ref: .*#\/\$defs\/price.*shared \$defs: money/],
  ['no end', { ...base, steps: [base.steps[0], { ...base.steps[1], ends: undefined }] }, /no step ends the instance/],
  ['a missing title', { ...base, title: undefined }, /must have required property 'title'/],
  ['an unknown field', { ...base, colour: 'red' }, /\/colour: must NOT have additional properties/],
  ['a bad step id', { ...base, steps: [{ ...base.steps[0], id: 'Order Now' }, base.steps[1]] }, /\/steps\/0\/id: must match pattern/],
  ['a step from an unknown state', machine((d) => (d.steps[1].from = ['pondering'])), /\/steps\/1\/from\/0: unknown state "pondering"; states: start, quoted/],
  ['a step to an unknown state', machine((d) => (d.steps[4].to = ['gone'])), /\/steps\/4\/to\/0: unknown state "gone"/],
  ['states used without a state machine', { ...base, steps: [{ ...base.steps[0], to: ['ordered'] }, base.steps[1]] }, /\/steps\/0\/to\/0: .*declares no "states"/],
  ['no initial state', machine((d) => (d.states.start = {})), /\/states: no state is initial/],
  ['an unreachable step', machine((d) => {
    d.steps.push({ id: 'haggle', title: 'Haggle', actor: 'buyer', from: ['limbo'], to: ['quoted'] });
    d.states.limbo = {};
  }), /\/steps\/5: unreachable step "haggle": it waits for state "limbo"/],
  ['an unreachable state', machine((d) => (d.states.forgotten = { end: 'never' })), /\/states\/forgotten: unreachable state "forgotten"/],
  ['a cycle without exit', machine((d) => d.steps.splice(3, 2)), /cycle without exit: (quoted -> queried -> quoted|queried -> quoted -> queried) never reaches an end state/],
  ['a dead-end state', machine((d) => {
    d.steps[4].to = ['stuck'];
    d.states.stuck = {};
  }), /\/states\/stuck: dead end: no step leads from state "stuck" to an end state/],
  ['a step that consumes and leads nowhere', machine((d) => delete d.steps[4].to), /\/steps\/4: step "decline" consumes state\(s\) quoted and leads nowhere/],
  ['a step from an end state', machine((d) => d.steps.push({ id: 'reopen', title: 'Reopen', actor: 'buyer', from: ['lost'], to: ['quoted'] })), /\/steps\/5\/from\/0: step "reopen" starts from end state "lost"/],
  ['a state both initial and end', machine((d) => (d.states.won.initial = true)), /\/states\/won: state "won" is both initial and an end/],
  ['a guard over an unknown field', machine((d) => (d.steps[3].guard.rule = { '>': [{ var: 'steps.quote.input.cost' }, 0] })), /\/steps\/3\/guard\/rule: guard reads unknown field "steps.quote.input.cost": .*declares no "cost"/],
  ['a guard over an unknown step', machine((d) => (d.steps[3].guard.rule = { '>': [{ var: 'steps.offer.input.price' }, 0] })), /guard reads "steps.offer.input.price": there is no step "offer"/],
  ['a guard over data not visible to all', machine((d) => (d.steps[0].visibility = ['seller'])), /guard reads "steps.quote.input.price", but step "quote" is visible only to seller: every participant must hold what a guard reads/],
  ["a guard over its own private input", machine((d) => {
    d.steps[2].visibility = ['seller'];
    d.steps[2].guard = { rule: { '!!': { var: 'input.note' } } };
  }), /\/steps\/2\/guard\/rule: guard reads "input.note", but step "answer" is visible only to seller/],
  ['a guard with an unknown operation', machine((d) => (d.steps[3].guard.rule = { similar: [{ var: 'steps.quote.input.price' }, 1] })), /unknown JSON Logic operation "similar"/],
  ['a guard reading outside the instance data', machine((d) => (d.steps[3].guard.rule = { '==': [{ var: 'now' }, 1] })), /guard reads unknown field "now": a guard may read input.<field>/],
  ['a guard with a computed field name', machine((d) => (d.steps[3].guard.rule = { var: { cat: ['steps.', 'quote'] } })), /a "var" must name a field literally/],
  ['a guard with a computed missing field', machine((d) => (d.steps[3].guard.rule = { missing: { merge: ['steps.quote.input.price'] } })), /a "missing" must name its fields literally/],
  ['a guard with a computed missing_some field', machine((d) => (d.steps[3].guard.rule = { missing_some: [1, { if: [true, ['steps.quote.input.price']] }] })), /a "missing_some" must name its fields literally/],
  ['a guard missing an unknown field in a list', machine((d) => (d.steps[3].guard.rule = { missing: [['steps.quote.input.cost']] })), /guard reads unknown field "steps.quote.input.cost"/],
  ['a guard that is not JSON Logic', machine((d) => (d.steps[3].guard.rule = { '==': [1, 1], '!=': [1, 2] })), /a JSON Logic operation is an object with exactly one key/],
  ['a deadline anchored on an unknown step', machine((d) => (d.steps[3].deadline = { anchor: 'tender', within: '5d' })), /\/steps\/3\/deadline\/anchor: deadline anchored on unknown step "tender"/],
  ['a deadline anchored on its own step', machine((d) => (d.steps[3].deadline = { anchor: 'accept', within: 60 })), /deadline of step "accept" is anchored on the step itself/],
  ['a deadline with a bad duration', machine((d) => (d.steps[3].deadline = { anchor: 'quote', within: '5 weeks' })), /\/steps\/3\/deadline\/within: must match pattern/],
  ['a waiting period anchored on an unknown step', machine((d) => (d.steps[4].notBefore = { anchor: 'nothing', after: '1h' })), /\/steps\/4\/notBefore\/anchor: notBefore anchored on unknown step "nothing"/],
  ['a human task for an unknown role', machine((d) => (d.steps[3].human = { assignee: 'clerk', form: 'Accept' })), /\/steps\/3\/human\/assignee: human task assigned to unknown role "clerk"/],
  ['a human task for a role that cannot take the step', machine((d) => (d.steps[3].human = { assignee: 'seller', form: 'Accept' })), /human task assigned to "seller", but only the actor "buyer" can take step "accept"/],
  ['a human task without a form title', machine((d) => (d.steps[3].human = { assignee: 'buyer' })), /\/steps\/3\/human\/form: must have required property 'form'/],
  ['a bad output schema', machine((d) => (d.steps[0].output = { type: 'nonsense' })), /\/steps\/0\/output: invalid JSON Schema/],
  ['an output with a bad $ref', machine((d) => (d.steps[0].output = { type: 'object', properties: { total: { $ref: '#/$defs/total' } } })), /\/steps\/0\/output: bad \$ref: .*#\/\$defs\/total.*shared \$defs: money/],
  ['a guard over an unknown output field', machine((d) => {
    d.steps[0].output = QUOTE_OUTPUT;
    d.steps[3].guard.rule = { '>': [{ var: 'steps.quote.output.cost' }, 0] };
  }), /\/steps\/3\/guard\/rule: guard reads unknown field "steps.quote.output.cost": the output schema of step "quote" declares no "cost"/],
  ['a guard over the output of a step that declares none', machine((d) => (d.steps[3].guard.rule = { '>': [{ var: 'steps.quote.output.price' }, 0] })), /guard reads unknown field "steps.quote.output.price": step "quote" declares no output schema/],
  ['a guard over its own undeclared output', machine((d) => (d.steps[3].guard.rule = { '>': [{ var: 'output.total' }, 0] })), /\/steps\/3\/guard\/rule: guard reads unknown field "output.total": step "accept" declares no output schema/],
  ['a guard over an output not visible to all', machine((d) => {
    d.steps[2].output = { type: 'object', properties: { verdict: { type: 'string' } } };
    d.steps[3].guard.rule = { '==': [{ var: 'steps.answer.output.verdict' }, 'ok'] };
    d.steps[2].visibility = ['seller'];
  }), /guard reads "steps.answer.output.verdict", but step "answer" is visible only to seller/],
  ['an outcome that is not an identifier', { ...base, steps: [base.steps[0], { ...base.steps[1], ends: 'All Done!' }] }, /\/steps\/1\/ends: must match pattern/],
];

test(`at least 25 kinds of malformed definition are refused (${malformed.length} here)`, () => {
  expect(malformed.length).toBeGreaterThanOrEqual(25);
});

test.each(malformed)('refuses %s, naming the element', (_what, value, expected) => {
  expect(problemsOf(JSON.parse(JSON.stringify(value)))).toMatch(expected);
});

test('YAML syntax errors name the line and column', () => {
  const { problems } = parseDefinition('id: x\nroles: [a\nsteps: 1\n', 'broken.yaml');
  expect(problems.length).toBeGreaterThan(0);
  expect(problems[0]!.line).toBeGreaterThan(0);
  expect(problems[0]!.column).toBeGreaterThan(0);
});

test('problems in a YAML file name the line and column of the bad element', () => {
  const text = ['id: located', 'version: "1"', 'title: Located', 'roles:', '  buyer: {}', 'steps:', '  - id: order', '    title: Order', '    actor: banker', '    ends: done', ''].join('\n');
  const { problems } = checkDefinitionText(text, 'located.yaml');
  expect(problems).toEqual([expect.objectContaining({ file: 'located.yaml', path: '/steps/0/actor', line: 9, column: 12 })]);
});

test('duplicate keys in YAML are refused where they are written', () => {
  const { problems } = checkDefinitionText('id: a\nid: b\n', 'twice.yaml');
  expect(problems[0]).toEqual(expect.objectContaining({ line: 2 }));
  expect(problems[0]!.message).toMatch(/unique/i);
});

test('a folder with one bad definition is refused as a whole, naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-defs-'));
  writeFileSync(join(dir, 'good.json'), JSON.stringify(base));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...base, id: 'bad', roles: {} }));
  expect(() => loadDefinitions(dir)).toThrow(DefinitionError);
  expect(() => loadDefinitions(dir)).toThrow(/invalid process definition in .*bad\.json/);
});

test('a step for a definition hash the node does not hold is refused naming both hashes', () => {
  const held = loadDefinitionFile(join(__dirname, '..', 'definitions', 'purchase-order.yaml'));
  const registry = new DefinitionRegistry([held]);
  const theirs = `0x${'ab'.repeat(32)}`;
  expect(() => registry.byAgreedHash(theirs, 'envelope 0x01', 'purchase-order')).toThrow(
    new RegExp(`definition purchase-order with hash ${theirs}, but this node holds purchase-order with hash ${held.hash}`),
  );
  expect(() => registry.byAgreedHash(theirs, 'invitation', 'unknown-process')).toThrow(new RegExp(`${theirs}.*purchase-order@${held.hash}`));
});

test('two versions of a definition are held side by side: new instances get the newest, old hashes still resolve', () => {
  const v1 = loadDefinitionFile(join(__dirname, '..', 'definitions', 'purchase-order.yaml'));
  const v10 = { ...v1, definition: { ...v1.definition, version: '10', title: 'Purchase order, v10' }, hash: `0x${'10'.repeat(32)}`, source: 'v10.yaml' };
  const v9 = { ...v1, definition: { ...v1.definition, version: '9' }, hash: `0x${'09'.repeat(32)}`, source: 'v9.yaml' };
  const registry = new DefinitionRegistry([v1, v10, v9]);
  expect(registry.get('purchase-order').definition.version).toBe('10');
  expect(registry.all().map((d) => d.hash)).toEqual([v10.hash]);
  expect(registry.byAgreedHash(v1.hash, 'an old instance').definition.version).toBe('1');
  expect(registry.byAgreedHash(v9.hash, 'an old instance').definition.version).toBe('9');
  expect(() => new DefinitionRegistry([v1, { ...v1, source: 'copy.yaml' }])).toThrow(/version 1 is declared twice: .*purchase-order.yaml and copy.yaml/);
});
