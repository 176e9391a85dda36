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

/**
 * A request to the data-exchange endpoint refused for what it is, not for bad timing: a forged or
 * tampered envelope, a sender outside the instance or the step's role, a second envelope for a
 * step number already taken. The key is the request's digest, so a replayed request counts once.
 */
export function securityRefused(
  events: EventLog,
  r: { digest: string; route: string; code: string; message: string; sender?: string; author?: string; instanceId?: string; envelopeHash?: string; remote?: string },
): Promise<LockstepEvent | null> {
  return events.emit({
    type: 'security.refused',
    key: `security.refused:${r.digest}:${r.code}`,
    ...(r.instanceId ? { instanceId: r.instanceId } : {}),
    ...(r.envelopeHash ? { envelopeHash: r.envelopeHash } : {}),
    data: { route: r.route, code: r.code, message: r.message, sender: r.sender ?? null, author: r.author ?? null, remote: r.remote ?? null },
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

/**
 * A step of this instance is queued for the chain but its transaction is refused or reverted
 * (no funds, say): the batcher keeps trying, and says why here, once per batch and instance.
 */
export function pinFailing(events: EventLog, f: { batch: string; instanceId: string; steps: string[]; reason: string }): Promise<LockstepEvent | null> {
  return events.emit({ type: 'pin.failing', key: `pin.failing:${f.batch}:${f.instanceId}`, instanceId: f.instanceId, data: { batch: f.batch, steps: f.steps, reason: f.reason } });
}

/** A step the contract refuses even alone: set aside for good, never pinned, never delivered. */
export function pinFailed(events: EventLog, f: { instanceId: string; envelopeHash: string; reason: string }): Promise<LockstepEvent | null> {
  return events.emit({ type: 'pin.failed', key: `pin.failed:${f.envelopeHash}`, instanceId: f.instanceId, envelopeHash: f.envelopeHash, data: { reason: f.reason } });
}
