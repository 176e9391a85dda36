/** Holding a step request: until the step is stored (every proposal), or decided (`?wait=confirmed`), on this node, or time out. */
import type { EventLog } from '../events/log';
import type { LockstepEvent } from '../model/event';
import type { Store } from '../store/store';
import type { StepDoc } from '../store/documents';

const POLL_MS = 250;

/** Resolves with the decided step and its data, or null when `timeoutMs` passes first. */
export async function waitForDecision(store: Store, events: EventLog, envelopeHash: string, timeoutMs: number): Promise<StepDoc | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const doc = await store.step(envelopeHash);
    if (doc && doc.status !== 'pending') return (await store.withData([doc]))[0]!;
    const left = deadline - Date.now();
    if (left <= 0) return null;
    await wakeOnEvent(events, envelopeHash, Math.min(left, POLL_MS * 8));
  }
}

/**
 * Resolves true once the step is stored on this node, false when `timeoutMs` passes first (the
 * process that leads the party is down, say). A proposal is stored by its publish activity, queued
 * as the Update completes, which runs on the leading process: there the step is known stored
 * from memory, without a command (the store is looked at only every 2 s, should leadership have
 * moved); a process that does not lead looks in the store every POLL_MS.
 */
export async function waitUntilStored(store: Store, events: EventLog, envelopeHash: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let looked = false; ; looked = true) {
    if (store.storedLately(envelopeHash)) return true;
    if (looked && (await store.step(envelopeHash))) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await wakeOnEvent(events, envelopeHash, Math.min(left, store.leads ? POLL_MS * 8 : POLL_MS));
  }
}

/** Sleeps until an event about this step is appended in this process, or `ms` pass (other replicas). */
function wakeOnEvent(events: EventLog, envelopeHash: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      events.appended.off('event', onEvent);
      resolve();
    };
    const onEvent = (e: LockstepEvent) => {
      if (e.envelopeHash === envelopeHash) done();
    };
    const timer = setTimeout(done, ms);
    events.appended.on('event', onEvent);
  });
}
