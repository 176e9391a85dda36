/**
 * Events other parts of the node emit when they learn something apps should hear about. Each
 * call is safe to repeat: the key names the fact, so it is recorded once.
 *
 * - The chain listener calls `chainReorganised` when blocks it had read are replaced.
 * - Pin signalling calls `dataWaiting` when a pin is final but its envelope (or the envelope's
 *   proof against the pinned root) has not arrived: the instance waits for it.
 */
import type { LockstepEvent } from '../model/event';
import type { FieldError } from '../model/errors';
import type { EventLog } from './log';

export function chainReorganised(events: EventLog, r: { fromBlock: number; oldHash: string; newHash: string }): Promise<LockstepEvent | null> {
  return events.emit({ type: 'chain.reorganised', key: `chain.reorganised:${r.fromBlock}:${r.newHash}`, data: r });
}

export function dataWaiting(events: EventLog, w: { instanceId?: string; envelopeHash?: string; pin: string; waitingFor: 'data' }): Promise<LockstepEvent | null> {
  return events.emit({
    type: 'data.waiting',
    key: `data.waiting:${w.pin}:${w.waitingFor}`,
    ...(w.instanceId ? { instanceId: w.instanceId } : {}),
    ...(w.envelopeHash ? { envelopeHash: w.envelopeHash } : {}),
    data: { pin: w.pin, waitingFor: w.waitingFor },
  });
}

/** A peer's step whose data failed validation here: refused, never stored, but apps hear of it. */
export function stepInvalid(events: EventLog, s: { instanceId: string; step: string; envelopeHash: string; author: string; errors: FieldError[] }): Promise<LockstepEvent | null> {
  return events.emit({
    type: 'step.rejected',
    key: `step.invalid:${s.envelopeHash}`,
    instanceId: s.instanceId,
    step: s.step,
    envelopeHash: s.envelopeHash,
    data: { author: s.author, rejection: { code: 'validation_failed', message: 'the step data does not fit its schema', errors: s.errors } },
  });
}
