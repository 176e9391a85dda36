/**
 * The pin signaller's order and levels (a unit test: the store and Temporal client are stand-ins
 * that record what the signaller reads and sends). A final step whose data is late holds back the
 * later steps of its instance; data that comes within the grace means one full signal and no bare
 * one; data later than the grace means a bare signal, then `data.waiting`, and the later steps.
 */
import pino from 'pino';
import { DATA_WAIT_GRACE_MS, PinSignaller } from '../src/node/pin-signals';
import type { NodeContext } from '../src/node/context';
import type { SlotDoc } from '../src/store/documents';
import type { PinConfirmation } from '../workflows/messages';
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

/** A node context whose store holds `slots` and whose Temporal client records each pin signal. */
function fakeNode(slots: SlotDoc[]) {
  const sent: { instanceId: string; slot: string; level: 'bare' | 'full' }[] = [];
  const events: { type: string; data: unknown }[] = [];
  const store = {
    slotsToSignal: () => Promise.resolve(slots.filter((s) => (s.proven ? 'full' : 'bare') !== s.signaled).map((s) => ({ ...s }))),
    slotsToldBare: () => Promise.resolve(slots.filter((s) => s.signaled === 'bare' && !s.proven)),
    markSignaled: (told: { id: string; level: 'bare' | 'full' }[]) => {
      for (const t of told) slots.find((s) => s._id === t.id)!.signaled = t.level;
      return Promise.resolve();
    },
    slots: { findOne: ({ _id }: { _id: string }) => Promise.resolve(slots.find((s) => s._id === _id) ?? null) },
    instance: () => Promise.resolve({ status: 'active' }),
    events: { emit: (e: { type: string; data: unknown }) => Promise.resolve(void events.push(e)) },
  };
  const temporal = {
    workflow: {
      getHandle: (workflowId: string) => ({
        signal: (_def: unknown, c: PinConfirmation) => Promise.resolve(void sent.push({ instanceId: workflowId, slot: c.slot, level: c.envelopeHash ? 'full' : 'bare' })),
      }),
    },
  };
  const ctx = { store, temporal, log: pino({ level: 'silent' }) } as unknown as NodeContext;
  return { signaller: new PinSignaller(ctx), sent, events };
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
});
