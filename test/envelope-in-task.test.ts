/**
 * A proposal that brings its salt has its envelope built by the workflow, inside the Update's
 * task (src/envelope/build.ts), and is signed and stored only by publishStep, queued once that
 * task is recorded. So a proposal whose task was lost (a Temporal restart drops an Update not yet
 * recorded; the app's retried request then takes the same step number, with another time and
 * salt) leaves nothing behind, and the next one is stored, pinned and delivered. The real
 * document store (FerretDB here, or mongod where installed) holds the steps and slots; the
 * batcher and the data exchange are stand-ins.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { join } from 'node:path';
import pino from 'pino';
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities, type Proposal } from '../activities';
import { loadDefinitionFile } from '../src/definitions/load';
import { DefinitionRegistry } from '../src/definitions/registry';
import { buildEnvelope } from '../src/envelope/build';
import { newSalt } from '../src/envelope/seal';
import { verifyEnvelope } from '../src/envelope/verify';
import { devWallet } from '../src/stack/dev-chain';
import { startMongo, type RunningMongo } from '../src/stack/mongo-server';
import { freePort } from '../src/stack/ports';
import { slotId, Store } from '../src/store/store';
import type { NodeContext } from '../src/node/context';
import type { NetworkFile } from '../src/model/network';
import type { SignedEnvelope } from '../src/model/envelope';

const approval = loadDefinitionFile(join(__dirname, 'fixtures', 'definitions', 'approval.yaml'));
const acme = devWallet(0);
const header = {
  id: 'built-1',
  definitionId: 'approval',
  definitionHash: approval.hash,
  roles: { requester: 'acme', approver: 'globex' },
  createdBy: 'acme',
  createdAt: '2026-11-22T00:00:00.000Z',
};
const network = { parties: { acme: { name: 'acme', address: acme.address }, globex: { name: 'globex', address: devWallet(1).address } } } as unknown as NetworkFile;

let dir: string;
let mongo: RunningMongo;
let store: Store;
/** What the stand-in data exchange was given, in order. */
const sent: { to: string; signed: SignedEnvelope }[] = [];
let activities: ReturnType<typeof createActivities>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-envelope-in-task-test-'));
  mongo = await startMongo({ dir, logDir: dir, port: await freePort() });
  store = await Store.connect(mongo.uri, 'envelope_in_task');
  await store.saveInstance({ header, secret: `0x${'3c'.repeat(32)}`, signature: '0xsig' });
  const ctx = {
    party: 'acme',
    wallet: acme,
    network,
    definitions: new DefinitionRegistry([approval]),
    store,
    batcher: { pin: () => Promise.resolve({ root: '0x01', index: 0, count: 1, proof: [], transactionHash: '0x02' }) },
    dx: {
      sendEnvelope: (to: { name: string }, signed: SignedEnvelope) => {
        sent.push({ to: to.name, signed });
        return Promise.resolve();
      },
    },
    log: pino({ level: 'silent' }),
  } as unknown as NodeContext;
  activities = createActivities(ctx, { flush: () => Promise.resolve() });
}, 90_000);

afterAll(async () => {
  await store?.close();
  await mongo?.process.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs `work` as the first attempt of a queued activity. */
function asActivity<T>(work: () => Promise<T>): Promise<T> {
  const info = { heartbeatDetails: undefined, attempt: 1 } as unknown as Info;
  const context = new Context(info, new Promise<never>(() => undefined), new AbortController().signal, () => undefined, undefined, pino({ level: 'silent' }) as never, undefined as never, {});
  return asyncLocalStorage.run(context, work);
}

/** A proposal and its envelope hash, as the workflow's Update handler makes them. */
function proposed(nonce: number, amount: number, proposedAt: string): { proposal: Proposal; envelopeHash: string } {
  const proposal: Proposal = { instanceId: header.id, definitionHash: header.definitionHash, step: 'request', input: { amount }, nonce, proposedAt, salt: newSalt() };
  return { proposal, envelopeHash: buildEnvelope({ ...proposal, author: 'acme' }).hash };
}

const publish = ({ proposal, envelopeHash }: { proposal: Proposal; envelopeHash: string }) =>
  asActivity(() => activities.publishStep({ instanceId: header.id, envelopeHash, to: ['globex'], proposal }));

test('a proposal built in a task that was lost leaves its step number to the next, which is signed, stored, pinned and delivered once', async () => {
  // Built in a task that never got recorded: publishStep never ran for it, and nothing is stored.
  const lost = proposed(1, 5, '2026-11-22T10:00:00.000Z');
  // The app asks again: the same step number, another time, salt and data.
  const next = proposed(1, 7, '2026-11-22T10:00:03.000Z');
  expect(next.envelopeHash).not.toBe(lost.envelopeHash);
  await publish(next);

  const stored = await store.step(next.envelopeHash);
  expect(stored).toMatchObject({ status: 'pending', author: 'acme', nonce: 1, data: { salt: next.proposal.salt, input: { amount: 7 } }, receipt: { root: '0x01' } });
  expect(await store.slots.findOne({ _id: slotId(header.id, 'acme', 1) })).toMatchObject({ envelopeHash: next.envelopeHash });
  expect(store.storedLately(next.envelopeHash)).toBe(true);
  expect(store.storedLately(lost.envelopeHash)).toBe(false);
  // globex received the envelope the workflow built, signed by acme, with its data and receipt.
  expect(sent.map((s) => [s.to, s.signed.hash, s.signed.receipt?.root, s.signed.data?.input])).toEqual([['globex', next.envelopeHash, '0x01', { amount: 7 }]]);
  expect(() => verifyEnvelope(network, sent[0]!.signed)).not.toThrow();

  // A retried publish stores nothing twice: one step.proposed event.
  await publish(next);
  const { events } = await store.events.readAfter(0, 100);
  expect(events.filter((e) => e.type === 'step.proposed' && e.envelopeHash === next.envelopeHash)).toHaveLength(1);

  // The slot still takes one envelope, ever: the lost one, were it ever published, is refused.
  await expect(publish(lost)).rejects.toThrow(/already sent a different envelope/);
}, 60_000);

test('a proposal that does not build the envelope the workflow holds is refused for good, and nothing is stored', async () => {
  const { proposal, envelopeHash } = proposed(2, 9, '2026-11-22T10:00:05.000Z');
  const failure = await publish({ proposal: { ...proposal, input: { amount: 900 } }, envelopeHash }).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure).toMatchObject({ type: 'bad_proposal', nonRetryable: true, message: expect.stringContaining(`not the workflow's ${envelopeHash}`) });
  expect(await store.slots.findOne({ _id: slotId(header.id, 'acme', 2) })).toBeNull();
  expect(await store.step(envelopeHash)).toBeNull();
}, 60_000);
