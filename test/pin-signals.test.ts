/**
 * The pin signaller's order and levels (a unit test: the store and Temporal client are stand-ins
 * that record what the signaller reads and sends). A final step whose data is late holds back the
 * later steps of its instance; data that comes within the grace means one full signal and no bare
 * one; data later than the grace means a bare signal, then `data.waiting`, and the later steps.
 * A full signal carries the step, with what guards read of its data and nothing more.
 */
import pino from 'pino';
import { DATA_WAIT_GRACE_MS, PinSignaller } from '../src/node/pin-signals';
import type { NodeContext } from '../src/node/context';
import type { SlotDoc } from '../src/store/documents';
import type { StepDoc } from '../src/store/documents';
import type { PendingStep, PinConfirmation } from '../workflows/messages';
import { eventually } from './support/eventually';

function slot(instanceId: string, author: string, nonce: number, blockNumber: number, proven: boolean): SlotDoc {
  return {
    _id: `${instanceId}/${author}/${nonce}`,
    instanceId,
    author,
    nonce,
    tag: `0x${String(blockNumber).padStart(16, '0')}`,
    position: { tag: '0x', author, root: '0x', count: 1, index: 0, blockNumber, blockHash: `0xb${blockNumber}`, timestamp: 1_700_000_000 + blockNumber, transactionHash: `0xt${blockNumber}`, logIndex: 0 },
    ...(proven ? { envelopeHash: `0xe${blockNumber}` } : {}),
    proven,
    signaled: 'none',
  };
}

/** Every stored step is `ship`, with its data stored apart; a guard reads `ship`'s carrier, and nothing else of it (a step of instance `guarded`). */
function storedStep(envelopeHash: string, author: string): StepDoc {
  return { _id: envelopeHash, envelopeHash, step: 'ship', author, dataApart: true } as StepDoc;
}
const SHIP_DATA = { salt: `0x${'1'.repeat(64)}`, input: { carrier: 'DHL', notes: 'n'.repeat(10_000) }, output: { tracking: 'T1' } };
const guardedDefinition = { steps: [{ id: 'pay', guard: { rule: { '==': [{ var: 'steps.ship.input.carrier' }, 'DHL'] } } }] };
const plainDefinition = { steps: [{ id: 'ship' }] };

/**
 * A node context whose store holds `slots` (and their steps) and whose Temporal client records
 * each pin signal; `storedLately` are the steps this process stored lately (known from memory).
 */
function fakeNode(slots: SlotDoc[], missingSteps = new Set<string>(), storedLately = new Set<string>()) {
  const sent: { instanceId: string; slot: string; level: 'bare' | 'full'; proposal?: PendingStep }[] = [];
  const stepsRead: string[] = [];
  const events: { type: string; data: unknown }[] = [];
  const store = {
    slotsToSignal: () => Promise.resolve(slots.filter((s) => (s.proven ? 'full' : 'bare') !== s.signaled).map((s) => ({ ...s }))),
    slotsToldBare: () => Promise.resolve(slots.filter((s) => s.signaled === 'bare' && !s.proven)),
    markSignaled: (told: { id: string; level: 'bare' | 'full' }[]) => {
      for (const t of told) slots.find((s) => s._id === t.id)!.signaled = t.level;
      return Promise.resolve();
    },
    slot: (id: string) => Promise.resolve(slots.find((s) => s._id === id) ?? null),
    instance: () => Promise.resolve({ status: 'active' }),
    stepStoredLately: (hash: string) => (storedLately.has(hash) ? 'ship' : undefined),
    step: (hash: string) => {
      stepsRead.push(hash);
      const owner = slots.find((s) => s.envelopeHash === hash);
      return Promise.resolve(owner && !missingSteps.has(hash) ? storedStep(hash, owner.author) : null);
    },
    withData: (steps: StepDoc[]) => Promise.resolve(steps.map((st) => (st.dataApart ? { ...st, data: SHIP_DATA } : st))),
    agreedInstance: (id: string) => Promise.resolve({ _id: id, header: { definitionHash: id === 'guarded' ? '0xguarded' : '0xplain' } }),
    events: { emit: (e: { type: string; data: unknown }) => Promise.resolve(void events.push(e)) },
  };
  const temporal = {
    workflow: {
      getHandle: (workflowId: string) => ({
        signal: (_def: unknown, c: PinConfirmation) =>
          Promise.resolve(void sent.push({ instanceId: workflowId, slot: c.slot, level: c.envelopeHash ? 'full' : 'bare', ...(c.proposal ? { proposal: c.proposal } : {}) })),
      }),
    },
  };
  const definitions = { byAgreedHash: (hash: string) => ({ definition: hash === '0xguarded' ? guardedDefinition : plainDefinition }) };
  const ctx = { store, temporal, definitions, log: pino({ level: 'silent' }) } as unknown as NodeContext;
  return { signaller: new PinSignaller(ctx), sent, events, stepsRead };
}

describe('pin signaller', () => {
  test('a final step whose data comes within the grace is told once, with it, and the later step of its instance only after it', async () => {
    const late = slot('i1', 'alpha', 1, 10, false);
    const later = slot('i1', 'beta', 1, 11, true);
    const other = slot('i2', 'alpha', 1, 12, true);
    const { signaller, sent } = fakeNode([late, later, other]);

    await signaller.flush();
    // Another instance is not held back; the late step and the one after it wait.
    expect(sent.map((s) => s.slot)).toEqual(['alpha/1']);
    expect(sent[0]!.instanceId).toContain('i2');

    // The envelope comes (the data exchange asks for a pass).
    late.proven = true;
    late.envelopeHash = '0xe10';
    await signaller.flush();
    expect(sent.slice(1).map((s) => `${s.slot}:${s.level}`)).toEqual(['alpha/1:full', 'beta/1:full']);
    expect(sent.slice(1).every((s) => s.instanceId.includes('i1'))).toBe(true);
    expect(sent.some((s) => s.level === 'bare')).toBe(false);
  });

  test('a final step whose data is later than the grace is told bare, apps hear data.waiting, and the later step follows', async () => {
    const late = slot('i3', 'alpha', 1, 20, false);
    const later = slot('i3', 'beta', 1, 21, true);
    const { signaller, sent, events } = fakeNode([late, later]);

    await signaller.flush();
    expect(sent).toEqual([]);
    // No new block, no envelope: the grace's end alone brings the next pass.
    const told = await eventually('the bare signal after the grace', () => Promise.resolve(sent.length >= 2 ? sent : undefined), DATA_WAIT_GRACE_MS * 3, 50);
    expect(told.map((s) => `${s.slot}:${s.level}`)).toEqual(['alpha/1:bare', 'beta/1:full']);
    expect(late.signaled).toBe('bare');
    await eventually('data.waiting', () => Promise.resolve(events.length > 0 ? events : undefined), DATA_WAIT_GRACE_MS * 2, 50);
    expect(events).toEqual([expect.objectContaining({ type: 'data.waiting', data: { pin: 'alpha/1', waitingFor: 'data' } })]);

    // Its data comes at last: told again, with it.
    late.proven = true;
    late.envelopeHash = '0xe20';
    await signaller.flush();
    expect(sent.slice(2).map((s) => `${s.slot}:${s.level}`)).toEqual(['alpha/1:full']);
  });

  test('a final step is told with the step itself, what guards read of its data, and not before the step is stored', async () => {
    const guarded = slot('guarded', 'alpha', 1, 30, true);
    const plain = slot('plain', 'beta', 1, 31, true);
    const plainLater = slot('plain', 'alpha', 1, 32, true);
    const missing = new Set([plain.envelopeHash!]);
    const { signaller, sent } = fakeNode([guarded, plain, plainLater], missing);

    await signaller.flush();
    expect(sent).toEqual([
      { instanceId: 'instance-guarded', slot: 'alpha/1', level: 'full', proposal: { envelopeHash: '0xe30', step: 'ship', author: 'alpha', input: { carrier: 'DHL' } } },
    ]);
    // Proven before the data exchange stored the step: not told, nor written down as told, and
    // the later step of its instance waits behind it.
    expect([plain.signaled, plainLater.signaled]).toEqual(['none', 'none']);

    // The exchange stores it and asks for a pass: told now, without its data (no guard reads it), then the later one.
    missing.clear();
    await signaller.flush();
    expect(sent.slice(1)).toEqual([
      { instanceId: 'instance-plain', slot: 'beta/1', level: 'full', proposal: { envelopeHash: '0xe31', step: 'ship', author: 'beta' } },
      { instanceId: 'instance-plain', slot: 'alpha/1', level: 'full', proposal: { envelopeHash: '0xe32', step: 'ship', author: 'alpha' } },
    ]);
    expect(plain.signaled).toBe('full');
  });

  test('a step this process stored lately is told from memory when no guard reads it; its data, when one does, is read from the store', async () => {
    const guarded = slot('guarded', 'alpha', 1, 40, true);
    const plain = slot('plain', 'beta', 1, 41, true);
    const elsewhere = slot('plain', 'alpha', 1, 42, true);
    const { signaller, sent, stepsRead } = fakeNode([guarded, plain, elsewhere], new Set(), new Set([guarded.envelopeHash!, plain.envelopeHash!]));

    await signaller.flush();
    // Instances are told side by side; within one, in chain order.
    expect(sent).toHaveLength(3);
    expect(sent).toEqual(
      expect.arrayContaining([
        { instanceId: 'instance-guarded', slot: 'alpha/1', level: 'full', proposal: { envelopeHash: '0xe40', step: 'ship', author: 'alpha', input: { carrier: 'DHL' } } },
        { instanceId: 'instance-plain', slot: 'beta/1', level: 'full', proposal: { envelopeHash: '0xe41', step: 'ship', author: 'beta' } },
        { instanceId: 'instance-plain', slot: 'alpha/1', level: 'full', proposal: { envelopeHash: '0xe42', step: 'ship', author: 'alpha' } },
      ]),
    );
    expect(sent.filter((s) => s.instanceId === 'instance-plain').map((s) => s.slot)).toEqual(['beta/1', 'alpha/1']);
    // The guarded step's data, and the step another process stored, come from the store; the plain step stored here does not.
    expect(stepsRead.sort()).toEqual(['0xe40', '0xe42']);
  });
});
