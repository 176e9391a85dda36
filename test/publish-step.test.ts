/**
 * The activities that work for every peer at once, publishStep and inviteParticipants (unit
 * test, with stand-ins for the store, the batcher and the data exchange; the real ones run in the
 * stack suites): publishStep pins, then sends to every peer side by side; a peer that is down
 * fails the attempt after the others have taken the step, and the retry, given the attempt's
 * heartbeat, sends only to that peer. Invitations go the same way.
 */
import { join } from 'node:path';
import pino from 'pino';
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import { createActivities } from '../activities';
import { loadDefinitionFile } from '../src/definitions/load';
import { DefinitionRegistry } from '../src/definitions/registry';
import type { NodeContext } from '../src/node/context';
import type { InstanceDoc, StepDoc } from '../src/store/documents';
import type { SignedEnvelope } from '../src/model/envelope';

const HASH = `0x${'ab'.repeat(32)}`;
const approval = loadDefinitionFile(join(__dirname, 'fixtures', 'definitions', 'approval.yaml'));
const header = {
  id: 'inst-1',
  definitionId: 'approval',
  definitionHash: approval.hash,
  roles: { requester: 'acme', approver: 'globex' },
  createdBy: 'acme',
  createdAt: '2026-11-21T00:00:00.000Z',
};

function standIns(down: Set<string>) {
  const journal: string[] = [];
  const instance = { _id: 'inst-1', header, secret: `0x${'11'.repeat(32)}` } as unknown as InstanceDoc;
  const step = { _id: HASH, envelopeHash: HASH, step: 'request', author: 'acme', nonce: 1, envelope: {}, signature: '0xsig', data: { input: { amount: 5 } } } as unknown as StepDoc;
  const ctx = {
    party: 'acme',
    network: { parties: { globex: { name: 'globex' }, initech: { name: 'initech' } } },
    definitions: new DefinitionRegistry([approval]),
    store: {
      agreedInstance: () => Promise.resolve(instance),
      step: () => Promise.resolve(step),
      saveReceipt: () => Promise.resolve(),
    },
    batcher: {
      pin: () => {
        journal.push('pin');
        return Promise.resolve({ root: '0x01', index: 0, count: 1, proof: [], transactionHash: '0x02' });
      },
    },
    dx: {
      sendInvitation: (to: { name: string }) => {
        if (down.has(to.name)) return Promise.reject(new Error(`cannot reach ${to.name}`));
        journal.push(`invited ${to.name}`);
        return Promise.resolve();
      },
      sendEnvelope: (to: { name: string }, signed: SignedEnvelope) => {
        if (down.has(to.name)) return Promise.reject(new Error(`cannot reach ${to.name}`));
        journal.push(`sent to ${to.name} with receipt ${signed.receipt?.root}`);
        return Promise.resolve();
      },
    },
    log: pino({ level: 'silent' }),
  } as unknown as NodeContext;
  return { journal, activities: createActivities(ctx, { flush: () => Promise.resolve() }) };
}

/** Runs `work` as an activity attempt that starts from `details` and reports its heartbeats. */
function attempt<T>(details: unknown, heartbeats: unknown[], work: () => Promise<T>): Promise<T> {
  const info = { heartbeatDetails: details, attempt: 1 } as unknown as Info;
  const context = new Context(info, new Promise<never>(() => undefined), new AbortController().signal, (d?: unknown) => heartbeats.push(d), undefined, pino({ level: 'silent' }) as never, undefined as never, {});
  return asyncLocalStorage.run(context, work);
}

test('a peer that is down fails the attempt after the others took the step; the retry sends to it alone', async () => {
  const down = new Set(['initech']);
  const { journal, activities } = standIns(down);
  const request = { instanceId: 'inst-1', envelopeHash: HASH, to: ['globex', 'initech'] };
  const heartbeats: unknown[] = [];
  await expect(attempt(undefined, heartbeats, () => activities.publishStep(request))).rejects.toThrow('cannot reach initech');
  // The receipt of the pin just made travels with the envelope.
  expect(journal).toEqual(['pin', 'sent to globex with receipt 0x01']);
  expect(heartbeats.at(-1)).toEqual(['globex']);

  down.clear();
  journal.length = 0;
  const again: unknown[] = [];
  await attempt(heartbeats.at(-1), again, () => activities.publishStep(request));
  // The pin is asked for again (the batcher answers with the receipt it has), the data goes to initech only.
  expect(journal).toEqual(['pin', 'sent to initech with receipt 0x01']);
  // An attempt that succeeds within the beat interval sends no heartbeat (each is a write on the Temporal server).
  expect(again).toEqual([]);
});

test('two peers down: the attempt fails naming both', async () => {
  const { activities } = standIns(new Set(['globex', 'initech']));
  const request = { instanceId: 'inst-1', envelopeHash: HASH, to: ['globex', 'initech'] };
  await expect(attempt(undefined, [], () => activities.publishStep(request))).rejects.toThrow('cannot reach globex; cannot reach initech');
});

test('invitations: a participant that is down fails the attempt; the retry invites it alone', async () => {
  const down = new Set(['globex']);
  const { journal, activities } = standIns(down);
  const request = { instanceId: 'inst-1', to: ['globex', 'initech'] };
  const heartbeats: unknown[] = [];
  await expect(attempt(undefined, heartbeats, () => activities.inviteParticipants(request))).rejects.toThrow('cannot reach globex');
  expect(journal).toEqual(['invited initech']);
  down.clear();
  await attempt(heartbeats.at(-1), [], () => activities.inviteParticipants(request));
  expect(journal).toEqual(['invited initech', 'invited globex']);
});
