/**
 * The rules of the richer language, as `decide()` applies them in chain order on every node:
 * choices, parallel branches that join, loops, guards, deadlines in chain time, and the winner
 * of a conflict. Pure functions over the bundled example definitions.
 */
import { join } from 'node:path';
import { loadDefinitionFile } from '../src/definitions/load';
import { applyStep, judge, nextSteps, StepRefused } from '../src/process/rules';
import { initialState, type ProcessState } from '../src/process/state';
import jsonLogic from 'json-logic-js';
import { guardReadData, guardReadPaths } from '../src/process/guard';
import { SeededRandom } from './support/seeded-random';
import type { Definition } from '../src/model/definition';
import { stateFromConfirmed, stepsFor } from '../src/process/tasks';
import type { StepPayload } from '../src/process/step-data';
import type { LoadedDefinition } from '../src/model/definition';
import type { InstanceHeader } from '../src/model/instance';

const DAY = 86_400;
const load = (file: string) => loadDefinitionFile(join(__dirname, '..', 'definitions', file));
const claim = load('healthcare-claim.yaml');
const credit = load('letter-of-credit.yaml');
const tender = load('competitive-tender.yaml');

function headerOf(loaded: LoadedDefinition): InstanceHeader {
  const roles = Object.fromEntries(Object.keys(loaded.definition.roles).map((r) => [r, `party-${r}`]));
  return { id: 'i', definitionId: loaded.definition.id, definitionHash: loaded.hash, roles, createdBy: 'x', createdAt: '' };
}

/** Decides one step the way the workflow's decide() does; returns the new state or the refusal. */
function decideWith(loaded: LoadedDefinition, state: ProcessState, step: string, data: Partial<StepPayload>, timestamp = 1_000, hash = `0x${step}-${state.seq}`): ProcessState | StepRefused {
  const header = headerOf(loaded);
  const author = header.roles[loaded.definition.steps.find((s) => s.id === step)!.actor]!;
  const payload = { input: data.input ?? {}, ...(data.output !== undefined ? { output: data.output } : {}) };
  try {
    const def = judge(loaded.definition, header, state, { step, author, ...payload }, timestamp, false);
    return applyStep(state, def, { envelopeHash: hash, author, timestamp, ...payload }, loaded.definition);
  } catch (error) {
    if (error instanceof StepRefused) return error;
    throw error;
  }
}

/** The same, for the many steps that carry only an input. */
function decide(loaded: LoadedDefinition, state: ProcessState, step: string, input: unknown = {}, timestamp = 1_000, hash = `0x${step}-${state.seq}`): ProcessState | StepRefused {
  return decideWith(loaded, state, step, { input }, timestamp, hash);
}

/** Insurer A's adjudication: the amount it covers is the step's output. */
const adjudicate = (state: ProcessState, coveredAmount: number, hash?: string) =>
  decideWith(claim, state, 'approve-primary', { output: { coveredAmount } }, 1_000, hash);

function ok(result: ProcessState | StepRefused): ProcessState {
  if (result instanceof StepRefused) throw new Error(`unexpected refusal: ${result.code} ${result.message}`);
  return result;
}

function refused(result: ProcessState | StepRefused): StepRefused {
  if (!(result instanceof StepRefused)) throw new Error('expected a refusal');
  return result;
}

const CLAIM = { claimRef: 'CLM-1001', patientRef: 'p-77', procedureCode: '99213', serviceDate: '2026-10-01', amount: 300 };

test('an instance starts in its initial states; only the steps from there are next', () => {
  const state = initialState(claim.definition);
  expect(state.marked).toEqual(['drafting']);
  expect(nextSteps(claim.definition, headerOf(claim), state).map((s) => s.id)).toEqual(['submit-claim']);
});

test('a choice: the first branch taken consumes the state, and its rival loses naming the winner', () => {
  let state = ok(decide(claim, initialState(claim.definition), 'submit-claim', CLAIM));
  expect(nextSteps(claim.definition, headerOf(claim), state).map((s) => s.id)).toEqual(['request-information', 'approve-primary', 'deny-claim']);
  state = ok(decide(claim, state, 'deny-claim', { reason: 'not covered' }, 1_000, '0xdeny'));
  expect(state.ended).toEqual({ outcome: 'denied', envelopeHash: '0xdeny' });
  const late = refused(adjudicate(state, 10));
  expect(late.code).toBe('conflict');
  expect(late.winner).toBe('0xdeny');
});

test('two suppliers accepting the same award: the one decided first wins, the other is a conflict naming it', () => {
  let state = initialState(tender.definition);
  state = ok(decide(tender, state, 'call-for-tenders', { lot: 'steel', quantity: 40 }));
  state = ok(decide(tender, state, 'bid-south', { unitPrice: 9, deliveryDays: 10 }));
  expect(refused(decideWith(tender, state, 'offer-award', { input: { quantity: 40 }, output: { ranking: ['south', 'north'] } })).code).toBe('precondition_failed');
  state = ok(decide(tender, state, 'bid-north', { unitPrice: 8, deliveryDays: 12 }));
  state = ok(decideWith(tender, state, 'offer-award', { input: { quantity: 40 }, output: { ranking: ['south', 'north'] } }));
  const won = ok(decide(tender, state, 'accept-award-south', { signatory: 'S' }, 1_000, '0xsouth'));
  expect(won.ended?.outcome).toBe('awarded');
  const lost = refused(decide(tender, won, 'accept-award-north', { signatory: 'N' }));
  expect(lost.code).toBe('conflict');
  expect(lost.winner).toBe('0xsouth');
});

test('parallel branches join: the provider closes the claim only once both insurers are done', () => {
  let state = ok(decide(claim, initialState(claim.definition), 'submit-claim', CLAIM));
  state = ok(adjudicate(state, 200));
  expect(state.marked).toEqual(['remittance-due', 'secondary-due']);
  state = ok(decide(claim, state, 'send-remittance', { paymentRef: 'R1', paidAmount: 200, member: { memberId: 'm', plan: 'gold' } }));
  const early = refused(decide(claim, state, 'close-claim'));
  expect(early.code).toBe('precondition_failed');
  expect(early.message).toContain('"secondary-settled"');
  state = ok(decide(claim, state, 'settle-secondary', { paidAmount: 100 }));
  state = ok(decide(claim, state, 'close-claim'));
  expect(state.ended?.outcome).toBe('settled');
});

test('a loop: information may be requested and provided again and again', () => {
  let state = ok(decide(claim, initialState(claim.definition), 'submit-claim', CLAIM));
  for (let round = 1; round <= 3; round++) {
    state = ok(decide(claim, state, 'request-information', { question: `q${round}` }));
    // The question consumed "submitted": an approval decided now lost to it.
    const rival = refused(adjudicate(state, 1));
    expect([rival.code, rival.winner]).toEqual(['conflict', state.done['request-information']!.envelopeHash]);
    state = ok(decide(claim, state, 'provide-information', { answer: `a${round}` }));
    expect(state.consumedBy?.submitted).toBeUndefined();
  }
  expect(state.done['request-information']!.count).toBe(3);
  expect(state.marked).toEqual(['submitted']);
  // Nothing leads back to the start: the claim is submitted once.
  expect(refused(decide(claim, state, 'submit-claim', CLAIM)).code).toBe('conflict');
});

test('guards read the shared inputs kept in the state, and refuse with their message', () => {
  expect(Object.fromEntries(guardReadPaths(claim.definition))).toEqual({
    'submit-claim': [['input', 'amount']],
    'approve-primary': [['output', 'coveredAmount']],
    'settle-secondary': [['input', 'paidAmount']],
  });
  let state = ok(decide(claim, initialState(claim.definition), 'submit-claim', CLAIM));
  // What the guards read of it, and nothing else.
  expect(state.done['submit-claim']!.input).toEqual({ amount: CLAIM.amount });
  const greedy = refused(adjudicate(state, 301));
  expect(greedy.code).toBe('guard');
  expect(greedy.message).toContain('cannot cover more than the amount claimed');
  expect(greedy.details).toEqual([{ field: '/output', message: 'insurer A cannot cover more than the amount claimed' }]);
  state = ok(adjudicate(state, 250));
  // The adjudication's output is what the secondary's guard reads: kept in the state like an input.
  expect(state.done['approve-primary']!.output).toEqual({ coveredAmount: 250 });
  expect(refused(decide(claim, state, 'settle-secondary', { paidAmount: 50.01 })).code).toBe('guard');
  ok(decide(claim, state, 'settle-secondary', { paidAmount: 50 }));
  // A private step's input is never kept: no guard may read it.
  state = ok(decide(claim, state, 'send-remittance', { paymentRef: 'R', paidAmount: 250, member: { memberId: 'm', plan: 'p' } }));
  expect(state.done['send-remittance']!.input).toBeUndefined();
});

/** Rules that read another step's data in every way a guard can: nested, absent, through arrays and strings, all of a part. */
const READING_RULES: unknown[] = [
  { '==': [{ var: 'steps.src.input.a.b' }, 1] },
  { missing: ['steps.src.input.c', 'steps.src.input.a.z'] },
  { '!': { missing: [['steps.src.input.c']] } },
  { missing_some: [1, ['steps.src.output.x', 'steps.src.output.y']] },
  { some: [{ var: 'steps.src.input.list' }, { '>': [{ var: '' }, 2] }] },
  { var: ['steps.src.input.arr.1.k', 'none'] },
  { var: ['steps.src.input.s.length', -1] },
  { '!!': [{ var: 'steps.src.output' }] },
  { cat: [{ var: 'steps.src.input.a.b' }, { var: 'input.q' }] },
];

test('what guards read of a step is all that is kept, and every verdict on it is the verdict on the whole data', () => {
  const definition = {
    steps: [{ id: 'src' }, ...READING_RULES.map((rule, i) => ({ id: `check-${i}`, guard: { rule } }))],
  } as unknown as Definition;
  const paths = guardReadPaths(definition);
  expect(paths.get('src')).toEqual([['input', 'a', 'b'], ['input', 'c'], ['input', 'a', 'z'], ['output', 'x'], ['output', 'y'], ['input', 'list'], ['input', 'arr', '1', 'k'], ['input', 's', 'length'], ['output']]);
  const random = new SeededRandom(20261122);
  const anything = (depth: number): unknown =>
    random.pick([
      () => random.int(0, 4),
      () => 'x'.repeat(random.int(0, 3)),
      () => null,
      () => (depth > 0 ? Array.from({ length: random.int(0, 3) }, () => anything(depth - 1)) : []),
      () => (depth > 0 ? Object.fromEntries(['b', 'k', 'z', 'other'].filter(() => random.chance(0.5)).map((k) => [k, anything(depth - 1)])) : {}),
    ])();
  for (let round = 0; round < 500; round++) {
    const input = Object.fromEntries(['a', 'c', 'list', 'arr', 's', 'q', 'unread'].filter(() => random.chance(0.7)).map((k) => [k, anything(2)]));
    const whole = { input, ...(random.chance(0.5) ? { output: { x: anything(1), y: anything(1), unread: anything(2) } } : {}) };
    const kept = guardReadData(paths.get('src'), whole);
    expect((kept.input as Record<string, unknown>).unread).toBeUndefined();
    for (const rule of READING_RULES) {
      const on = (data: object) => jsonLogic.apply(rule as jsonLogic.RulesLogic, { input: { q: 'own' }, steps: { src: { count: 1, author: 'p', ...data } } });
      expect([round, rule, on(kept)]).toEqual([round, rule, on(whole)]);
    }
  }
  // A key named like the prototype stays a key.
  const proto = JSON.parse('{"input": {"__proto__": {"b": 1}, "a": {"b": 2}}}') as { input: object };
  expect(JSON.stringify(guardReadData([['input', '__proto__', 'b'], ['input', 'a']], proto))).toBe('{"input":{"__proto__":{"b":1},"a":{"b":2}}}');
  // A step no guard reads keeps nothing; a part read whole is kept whole.
  expect(guardReadData(paths.get('check-0'), { input: { a: 1 } })).toEqual({});
  expect(guardReadData(paths.get('src'), { input: {}, output: { unread: [1, 2] } })).toEqual({ input: {}, output: { unread: [1, 2] } });
});

test('deadlines are measured in chain time, from the anchor pin to this pin', () => {
  const issue = { creditNumber: 'LC-1', amount: { amount: 1000, currency: 'EUR' }, expiryDate: '2027-01-31', documentsRequired: ['invoice'] };
  const docs = { documents: [{ kind: 'invoice', reference: 'INV-1' }] };
  const t0 = 1_700_000_000;
  let state = ok(decide(credit, initialState(credit.definition), 'issue-credit', issue, t0));
  state = ok(decide(credit, state, 'advise-credit', { adviceRef: 'ADV-1' }, t0 + 60));
  expect(state.done['advise-credit']!.timestamp).toBe(t0 + 60);
  const late = refused(decide(credit, state, 'present-documents', docs, t0 + 60 + 30 * DAY + 1));
  expect(late.code).toBe('deadline');
  expect(late.message).toContain('too late');
  // The waiting period of expiry is measured the same way.
  expect(refused(decide(credit, state, 'expire', {}, t0 + 60 + 29 * DAY)).code).toBe('deadline');
  expect(ok(decide(credit, state, 'expire', {}, t0 + 60 + 30 * DAY)).ended?.outcome).toBe('expired');
  // Just in time: exactly 30 days.
  state = ok(decide(credit, state, 'present-documents', docs, t0 + 60 + 30 * DAY));
  // The examination deadline runs from the latest presentation.
  const tp = t0 + 60 + 30 * DAY;
  expect(refused(decide(credit, state, 'raise-discrepancies', { discrepancies: ['late shipment'] }, tp + 5 * DAY + 1)).code).toBe('deadline');
  state = ok(decide(credit, state, 'raise-discrepancies', { discrepancies: ['late shipment'] }, tp + DAY));
  expect(ok(decide(credit, state, 'refuse-documents', {}, tp + 2 * DAY)).ended?.outcome).toBe('refused');
});

test('proposing checks a deadline against the latest chain time known, and leaves waiting periods to the chain', () => {
  const issue = { creditNumber: 'LC-1', amount: { amount: 1000, currency: 'EUR' }, expiryDate: '2027-01-31', documentsRequired: ['invoice'] };
  let state = ok(decide(credit, initialState(credit.definition), 'issue-credit', issue, 100));
  state = ok(decide(credit, state, 'advise-credit', { adviceRef: 'A' }, 200));
  const header = headerOf(credit);
  const propose = (step: string, lastTimestamp: number) => () =>
    judge(credit.definition, header, state, { step, author: header.roles[credit.definition.steps.find((s) => s.id === step)!.actor]!, input: {} }, lastTimestamp, true);
  expect(propose('expire', 200)).not.toThrow();
  expect(propose('present-documents', 200 + 31 * DAY)).toThrow(/too late/);
});

test('the letter of credit honours at most the credit amount, in its currency', () => {
  const issue = { creditNumber: 'LC-1', amount: { amount: 1000, currency: 'EUR' }, expiryDate: '2027-01-31', documentsRequired: ['invoice'] };
  let state = ok(decide(credit, initialState(credit.definition), 'issue-credit', issue));
  for (const step of ['advise-credit', 'present-documents', 'raise-discrepancies', 'waive-discrepancies']) {
    const input = { 'advise-credit': { adviceRef: 'A' }, 'present-documents': { documents: [] }, 'raise-discrepancies': { discrepancies: ['x'] }, 'waive-discrepancies': {} }[step];
    state = ok(decide(credit, state, step, input));
  }
  expect(refused(decide(credit, state, 'honour', { amount: { amount: 1000, currency: 'USD' }, paymentRef: 'P' })).code).toBe('guard');
  expect(refused(decide(credit, state, 'honour', { amount: { amount: 1000.5, currency: 'EUR' }, paymentRef: 'P' })).code).toBe('guard');
  expect(ok(decide(credit, state, 'honour', { amount: { amount: 1000, currency: 'EUR' }, paymentRef: 'P' })).ended?.outcome).toBe('paid');
});

describe('open tasks rebuilt from a node history (GET /tasks, task events)', () => {
  const header = headerOf(claim);
  const ids = (party: string, confirmed: Parameters<typeof stateFromConfirmed>[1]) =>
    stepsFor(claim.definition, header, stateFromConfirmed(claim.definition, confirmed, false), party).map((s) => s.id).sort();

  test('a state machine: the initial state opens the first step, each confirmed step moves the marking', () => {
    expect(ids('party-provider', [])).toEqual(['submit-claim']);
    const submitted = [{ step: 'submit-claim', envelopeHash: '0x1', author: 'party-provider', input: { amount: 480 } }];
    expect(ids('party-insurer-a', submitted)).toEqual(['approve-primary', 'deny-claim', 'request-information']);
    expect(ids('party-provider', submitted)).toEqual([]);
    const asked = [...submitted, { step: 'request-information', envelopeHash: '0x2', author: 'party-insurer-a' }];
    expect(ids('party-insurer-a', asked)).toEqual([]);
    expect(ids('party-provider', asked)).toEqual(['provide-information']);
  });

  test('an ended instance offers nothing', () => {
    expect(stepsFor(claim.definition, header, stateFromConfirmed(claim.definition, [], true), 'party-provider')).toEqual([]);
  });
});
