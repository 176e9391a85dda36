/**
 * How a proposal's REST answer waits for its step to be stored (src/api/wait.ts): the leading
 * process, whose publish activity stores it, learns of it from memory and sends no command; a
 * process that does not lead looks in the store; neither waits past its limit. The store and the
 * event log are stand-ins: this is the code around them.
 */
import { EventEmitter } from 'node:events';
import { waitUntilStored } from '../src/api/wait';
import type { EventLog } from '../src/events/log';
import type { Store } from '../src/store/store';

const HASH = `0x${'ab'.repeat(32)}`;

function standIns(leads: boolean, storedAfterLookups = Infinity) {
  const appended = new EventEmitter();
  let stored = false;
  let lookups = 0;
  const store = {
    leads,
    storedLately: () => stored,
    step: () => {
      lookups++;
      return Promise.resolve(lookups > storedAfterLookups ? { _id: HASH } : null);
    },
  } as unknown as Store;
  return {
    store,
    events: { appended } as unknown as EventLog,
    lookups: () => lookups,
    /** What the publish activity does on the leading process: stores the step, and its event is appended. */
    storeNow: () => {
      stored = true;
      appended.emit('event', { type: 'step.proposed', envelopeHash: HASH });
    },
  };
}

test('on the leading process the stored step is heard of from memory: no lookup in the store', async () => {
  const { store, events, lookups, storeNow } = standIns(true);
  setTimeout(storeNow, 300);
  await expect(waitUntilStored(store, events, HASH, 10_000)).resolves.toBe(true);
  // Woken by the event, not by a look in the store (the leader looks only every 2 s).
  expect(lookups()).toBe(0);
});

test('a process that does not lead looks in the store until the step is there', async () => {
  const { store, events, lookups } = standIns(false, 2);
  await expect(waitUntilStored(store, events, HASH, 10_000)).resolves.toBe(true);
  expect(lookups()).toBe(3);
});

test('a step never stored: false once the limit has passed, after looking for it in the meantime', async () => {
  const { store, events, lookups } = standIns(false);
  await expect(waitUntilStored(store, events, HASH, 600)).resolves.toBe(false);
  expect(lookups()).toBeGreaterThanOrEqual(2);
});
