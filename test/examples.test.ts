/**
 * The three example processes, end to end on the real stack: four parties, one network, several
 * instances at once. Each example runs to each of its end states; every participant ends with
 * the same history (hashes, chain positions, verdicts) and the same outcome. Also shown: the
 * private remittance (insurer B holds no data for it yet records it identically), a guard
 * refusing bad input at propose time, two suppliers accepting one award at once (chain order
 * settles it), and a deadline missed in chain time (rejected on every node).
 */
import { startTestNetwork, type TestNetwork } from './support/network';
import { Miner, ProcessDriver, type Instance } from './support/process-driver';
import { quietTemporalRuntime } from './support/quiet-runtime';

const DAY = 86_400;
let net: TestNetwork;
let miner: Miner;
let driver: ProcessDriver;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(['acme', 'globex', 'initech', 'umbrella'], 1);
  miner = new Miner(net);
  driver = new ProcessDriver(net);
}, 240_000);

afterAll(async () => {
  await miner?.stop();
  await net?.stop();
});

async function expectAgreement(instance: Instance): Promise<void> {
  const histories = await instance.sharedHistories();
  const [first, ...others] = Object.values(histories);
  for (const other of others) expect(other).toEqual(first);
}

const CLAIM_ROLES = { provider: 'acme', 'insurer-a': 'globex', 'insurer-b': 'initech' };
const CLAIM = { claimRef: 'CLM-2001', patientRef: 'p-42', procedureCode: '99214', serviceDate: '2026-11-02', amount: 480 };
const CREDIT_ROLES = { buyer: 'acme', seller: 'globex', 'issuing-bank': 'initech', 'advising-bank': 'umbrella' };
const ISSUE = { creditNumber: 'LC-77', amount: { amount: 50000, currency: 'EUR' }, expiryDate: '2027-03-31', documentsRequired: ['invoice', 'bill-of-lading'] };
const DOCS = { documents: [{ kind: 'invoice', reference: 'INV-9' }, { kind: 'bill-of-lading', reference: 'BL-3' }] };
/** The issuing bank's document check: its result is the output of accept-documents. */
const EXAMINED = { examined: ['invoice', 'bill-of-lading'], examinedOn: '2026-11-20' };
const TENDER_ROLES = { buyer: 'acme', north: 'globex', south: 'initech' };

async function claimSettled(): Promise<void> {
  const claim = await driver.start('acme', 'healthcare-claim', CLAIM_ROLES);
  await claim.take('provider', 'submit-claim', CLAIM);
  // A "request more information" loop, twice.
  for (const round of [1, 2]) {
    await claim.take('insurer-a', 'request-information', { question: `round ${round}: operative report?` });
    await claim.take('provider', 'provide-information', { answer: `report ${round} attached` });
  }
  // The guard refuses an approval above the claim, before anything is sent.
  const greedy = await claim.propose('insurer-a', 'approve-primary', {}, { coveredAmount: 500 });
  expect(greedy.status).toBe(422);
  expect(greedy.body.code).toBe('guard');
  expect(greedy.body.detail).toContain('cannot cover more than the amount claimed');
  await claim.take('insurer-a', 'approve-primary', {}, { coveredAmount: 400 });
  // Parallel branches: the private remittance and the secondary settlement, in either order.
  const [remittance] = await Promise.all([
    claim.take('insurer-a', 'send-remittance', { paymentRef: 'EFT-1', paidAmount: 400, member: { memberId: 'M-1', plan: 'gold' } }),
    claim.take('insurer-b', 'settle-secondary', { paidAmount: 80 }),
  ]);
  await claim.take('provider', 'close-claim');
  expect(await claim.outcome()).toBe('settled');
  await expectAgreement(claim);

  // Insurer B holds no data for the remittance, yet records the same step at the same place.
  const onB = (await claim.history('initech')).find((s) => s.envelopeHash === remittance)!;
  const onProvider = (await claim.history('acme')).find((s) => s.envelopeHash === remittance)!;
  expect(onB).toEqual(expect.objectContaining({ step: 'send-remittance', status: 'confirmed', input: null, visible: false }));
  expect(onProvider).toEqual(expect.objectContaining({ visible: true, input: expect.objectContaining({ member: { memberId: 'M-1', plan: 'gold' } }) }));
  const place = (s: typeof onB) => ({ seq: s.seq, block: s.chain!.blockNumber, blockHash: s.chain!.blockHash, logIndex: s.chain!.logIndex, index: s.chain!.index, tx: s.chain!.transactionHash });
  expect(place(onB)).toEqual(place(onProvider));
  expect(onB.signature).toBe(onProvider.signature);
}

async function claimDenied(): Promise<void> {
  const claim = await driver.start('acme', 'healthcare-claim', CLAIM_ROLES);
  await claim.take('provider', 'submit-claim', { ...CLAIM, claimRef: 'CLM-2002' });
  await claim.take('insurer-a', 'deny-claim', { reason: 'procedure not covered by the plan' });
  expect(await claim.outcome()).toBe('denied');
  const late = await claim.propose('insurer-a', 'approve-primary', {}, { coveredAmount: 1 });
  expect(late.status).toBe(409);
  await expectAgreement(claim);
}

async function creditPaid(): Promise<void> {
  const lc = await driver.start('initech', 'letter-of-credit', CREDIT_ROLES);
  await lc.take('issuing-bank', 'issue-credit', ISSUE);
  await lc.take('advising-bank', 'advise-credit', { adviceRef: 'ADV-1' });
  await lc.take('seller', 'present-documents', DOCS);
  await lc.take('issuing-bank', 'accept-documents', {}, EXAMINED);
  const over = await lc.propose('issuing-bank', 'honour', { amount: { amount: 50001, currency: 'EUR' }, paymentRef: 'PAY-1' });
  expect([over.status, over.body.code]).toEqual([422, 'guard']);
  await lc.take('issuing-bank', 'honour', { amount: { amount: 50000, currency: 'EUR' }, paymentRef: 'PAY-1' });
  expect(await lc.outcome()).toBe('paid');
  await expectAgreement(lc);
}

async function creditPaidAfterWaiver(): Promise<void> {
  const lc = await driver.start('initech', 'letter-of-credit', CREDIT_ROLES);
  await lc.take('issuing-bank', 'issue-credit', ISSUE);
  await lc.take('advising-bank', 'advise-credit', { adviceRef: 'ADV-2' });
  await lc.take('seller', 'present-documents', DOCS);
  await lc.take('issuing-bank', 'raise-discrepancies', { discrepancies: ['invoice amount differs'] });
  await lc.take('seller', 'present-corrected', DOCS);
  await lc.take('issuing-bank', 'raise-discrepancies', { discrepancies: ['bill of lading unsigned'] });
  await lc.take('buyer', 'waive-discrepancies');
  await lc.take('issuing-bank', 'honour', { amount: { amount: 49000, currency: 'EUR' }, paymentRef: 'PAY-2' });
  expect(await lc.outcome()).toBe('paid');
  await expectAgreement(lc);
}

async function creditRefused(): Promise<void> {
  const lc = await driver.start('initech', 'letter-of-credit', CREDIT_ROLES);
  await lc.take('issuing-bank', 'issue-credit', ISSUE);
  await lc.take('advising-bank', 'advise-credit', { adviceRef: 'ADV-3' });
  await lc.take('seller', 'present-documents', DOCS);
  await lc.take('issuing-bank', 'raise-discrepancies', { discrepancies: ['goods shipped late'] });
  await lc.take('buyer', 'refuse-documents');
  expect(await lc.outcome()).toBe('refused');
  await expectAgreement(lc);
}

async function tenderCancelled(): Promise<void> {
  const tender = await driver.start('acme', 'competitive-tender', TENDER_ROLES);
  await tender.take('buyer', 'call-for-tenders', { lot: 'copper wire', quantity: 200 });
  await Promise.all([tender.take('north', 'bid-north', { unitPrice: 7.5, deliveryDays: 20 }), tender.take('south', 'bid-south', { unitPrice: 7.9, deliveryDays: 12 })]);
  await tender.take('buyer', 'offer-award', { quantity: 200 }, { ranking: ['north', 'south'] });
  await tender.take('buyer', 'cancel-tender', { reason: 'budget withdrawn' });
  expect(await tender.outcome()).toBe('cancelled');
  await expectAgreement(tender);
  // Bids are private between the buyer and each supplier.
  const southSeesNorth = (await tender.history('initech')).find((s) => s.step === 'bid-north')!;
  expect([southSeesNorth.visible, southSeesNorth.input]).toEqual([false, null]);
}

test('each example runs to each of its end states, several instances at once, with identical histories on every node', async () => {
  await Promise.all([claimSettled(), claimDenied(), creditPaid(), creditPaidAfterWaiver(), creditRefused(), tenderCancelled()]);
}, 400_000);

test('two suppliers accepting the same award at once: the chain order settles it, identically on every node', async () => {
  const tender = await driver.start('acme', 'competitive-tender', TENDER_ROLES);
  await tender.take('buyer', 'call-for-tenders', { lot: 'steel beams', quantity: 40 });
  await Promise.all([tender.take('north', 'bid-north', { unitPrice: 120, deliveryDays: 30 }), tender.take('south', 'bid-south', { unitPrice: 118, deliveryDays: 45 })]);
  await tender.take('buyer', 'offer-award', { quantity: 40 }, { ranking: ['north', 'south'] });

  // Both accept before either acceptance is sequenced: both pins land in the same block.
  miner.pause();
  const [north, south] = await Promise.all([tender.propose('north', 'accept-award-north', { signatory: 'N. Smith' }), tender.propose('south', 'accept-award-south', { signatory: 'S. Jones' })]);
  expect([north.status, south.status]).toEqual([202, 202]);
  await net.pendingTransactions(2);
  miner.resume();
  const [northViews, southViews] = await Promise.all([tender.decided(north.body.envelopeHash as string), tender.decided(south.body.envelopeHash as string)]);

  const verdicts = [northViews, southViews].map((views) => new Set(Object.values(views).map((v) => v.status)));
  expect(verdicts.every((v) => v.size === 1)).toBe(true); // every node reached the same verdict
  const northWon = Object.values(northViews)[0]!.status === 'confirmed';
  const [winner, loser] = northWon ? [northViews, southViews] : [southViews, northViews];
  for (const view of Object.values(loser)) {
    expect(view.status).toBe('rejected');
    expect(view.rejection).toEqual(expect.objectContaining({ code: 'conflict', winner: Object.values(winner)[0]!.envelopeHash }));
  }
  const winnerChain = Object.values(winner)[0]!.chain!;
  const loserChain = Object.values(loser)[0]!.chain!;
  expect([winnerChain.blockNumber, winnerChain.logIndex]).toEqual([loserChain.blockNumber, expect.any(Number)]);
  expect(winnerChain.logIndex).toBeLessThan(loserChain.logIndex);
  expect(await tender.outcome()).toBe('awarded');
  await expectAgreement(tender);
}, 240_000);

test('a presentation after its deadline in chain time is rejected on every node, and the unused credit expires', async () => {
  const lc = await driver.start('initech', 'letter-of-credit', CREDIT_ROLES);
  await lc.take('issuing-bank', 'issue-credit', ISSUE);
  await lc.take('advising-bank', 'advise-credit', { adviceRef: 'ADV-4' });
  // Expiry waits 30 days of chain time: refused on every node when pinned now.
  const early = await lc.propose('issuing-bank', 'expire');
  expect(early.status).toBe(202);
  for (const view of Object.values(await lc.decided(early.body.envelopeHash as string))) {
    expect([view.status, view.rejection?.code]).toEqual(['rejected', 'deadline']);
  }
  // 31 days pass on the chain (not on any node's clock): the next block is stamped then.
  miner.pause();
  const late = await lc.propose('seller', 'present-documents', DOCS);
  expect(late.status).toBe(202);
  await net.pendingTransactions(1);
  await net.provider.send('evm_increaseTime', [31 * DAY]);
  miner.resume();
  for (const view of Object.values(await lc.decided(late.body.envelopeHash as string))) {
    expect(view.status).toBe('rejected');
    expect(view.rejection).toEqual(expect.objectContaining({ code: 'deadline' }));
    expect(view.rejection!.message).toContain('too late');
  }
  await lc.take('issuing-bank', 'expire');
  expect(await lc.outcome()).toBe('expired');
  await expectAgreement(lc);
}, 240_000);
