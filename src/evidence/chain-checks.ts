/**
 * The checks against the chain, read through the arbiter's own RPC endpoint: each step's tag is
 * where the bundle says, sent by its author's address, sequenced there first, deep enough, under a
 * batch root that commits to the step's envelope; the steps are in chain order; none is missing.
 */
import { getAddress } from 'ethers';
import { SequencerClient } from '../chain/sequencer';
import { instancePinsBetween, type InstancePin } from '../chain/instance-pins';
import { contextOf, stepLeaf, tagOf } from '../chain/pins';
import { verifyMerkleProof } from '../chain/merkle';
import { comparePositions, type ObservedTag } from '../model/pin';
import type { EvidenceBundle, EvidenceStep } from '../model/evidence';
import { participantsOf } from '../model/instance';
import { fail, pass, type Check } from './verdict';

/**
 * What the verifier read from the chain: every pin of the instance's tags, whoever sent it, from
 * the Sequencer's deployment to the head, each with the party and step number its tag stands for.
 * Each author's steps are those reached from step 1 with no gap wider than TAG_WINDOW, as a node
 * sees them (instance-pins.ts); never the numbers the bundle claims, which could send the search
 * anywhere.
 */
export interface ChainView {
  chainId: number;
  head: number;
  pins: InstancePin[];
}

export async function readChain(rpcUrl: string, sequencer: string, fromBlock: number, bundle: EvidenceBundle): Promise<ChainView> {
  const client = new SequencerClient({ rpcUrl, address: sequencer });
  try {
    const head = await client.head();
    const chainId = Number((await client.provider.getNetwork()).chainId);
    return { chainId, head, pins: await instancePinsBetween(client, bundle.instance.secret, participantsOf(bundle.instance.header), fromBlock, head) };
  } finally {
    client.destroy();
  }
}

function sameAddress(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && getAddress(a) === getAddress(b);
}

/** The first sequencing of a tag by a given sender: the only one that counts. */
function firstSequencing(chain: ChainView, tag: string, sender: string): ObservedTag | undefined {
  return chain.pins.find(({ pin }) => pin.tag === tag && sameAddress(pin.author, sender))?.pin;
}

export function bundleChain(bundle: EvidenceBundle, chain: ChainView): Check[] {
  const checks: Check[] = [];
  checks.push(
    chain.chainId === bundle.chain.chainId
      ? pass('chain', `chain id ${chain.chainId}, Sequencer ${bundle.chain.sequencer}, head ${chain.head}`)
      : fail('chain', `the RPC endpoint serves chain ${chain.chainId}, the bundle is about chain ${bundle.chain.chainId}`),
  );
  // Every step of the instance that is final on chain must be in the bundle: an exporter cannot
  // leave out a step that would change the verdict of later ones (a whole run of left-out steps
  // at the end included: the chain was read past each step found).
  const included = new Set(bundle.steps.map((s) => `${s.envelope.author}/${s.envelope.nonce}`));
  const missing: string[] = [];
  const counted = new Set<string>();
  for (const { pin, party, nonce } of chain.pins) {
    const slot = `${party}/${nonce}`;
    // A step's pin is its author's first sequencing of its tag; pins in chain order.
    if (counted.has(slot) || !sameAddress(pin.author, bundle.parties[party]?.address)) continue;
    counted.add(slot);
    const final = chain.head - pin.blockNumber + 1 >= bundle.chain.confirmations;
    if (final && !included.has(slot)) missing.push(`${party}'s step ${nonce} (block ${pin.blockNumber}, tx ${pin.transactionHash})`);
  }
  const duplicated = bundle.steps.length - included.size;
  checks.push(
    missing.length === 0 && duplicated === 0
      ? pass('complete', `every final pin of this instance on chain is in the bundle (${bundle.steps.length} steps)`)
      : fail('complete', [missing.length > 0 ? `final on chain but missing from the bundle: ${missing.join(', ')}` : '', duplicated > 0 ? `${duplicated} step(s) appear twice` : ''].filter(Boolean).join('; ')),
  );
  return checks;
}

/** Checks one step's pin; returns the pin as read from the chain when it is there. */
export function stepOnChain(bundle: EvidenceBundle, s: EvidenceStep, chain: ChainView): { checks: Check[]; observed?: ObservedTag } {
  const { author, nonce } = s.envelope;
  const address = bundle.parties[author]?.address;
  const tag = tagOf(contextOf(bundle.instance.secret, author, nonce));
  const p = s.pin;
  const where = `block ${p.blockNumber}, log ${p.logIndex}, index ${p.index}`;
  if (tag !== p.tag) return { checks: [fail('pin', `the step's tag is ${tag}, the bundle claims ${p.tag}`)] };
  if (p.chainId !== chain.chainId || !sameAddress(p.contract, bundle.chain.sequencer)) {
    return { checks: [fail('pin', `the reference names chain ${p.chainId} and contract ${p.contract}, not chain ${chain.chainId} and the Sequencer ${bundle.chain.sequencer}`)] };
  }
  const observed = chain.pins.find(({ pin }) => comparePositions(pin, p) === 0)?.pin;
  if (!observed) return { checks: [fail('pin', `no pin of this instance on chain at ${where}`)] };
  const mismatch = [
    observed.tag !== tag ? `the tag there is ${observed.tag}, not ${tag}` : '',
    observed.transactionHash !== p.transactionHash ? `it is in transaction ${observed.transactionHash}, not ${p.transactionHash}` : '',
    observed.blockHash !== p.blockHash ? `block ${p.blockNumber} is ${observed.blockHash} on the canonical chain, not ${p.blockHash}` : '',
    !sameAddress(observed.author, address) ? `it was sent by ${observed.author}, not by ${author} (${address ?? 'no address'})` : '',
  ].filter(Boolean);
  if (mismatch.length > 0) return { checks: [fail('pin', `at ${where}: ${mismatch.join('; ')}`)], observed };
  const checks: Check[] = [pass('pin', `tag ${tag} at ${where}, tx ${p.transactionHash}, sent by ${author}`)];
  const first = firstSequencing(chain, tag, observed.author);
  checks.push(first && comparePositions(first, observed) === 0 ? pass('first', 'the first sequencing of this tag') : fail('first', `the tag was sequenced earlier, at block ${first?.blockNumber}, log ${first?.logIndex}: only the first counts`));
  const r = s.receipt;
  const leaf = stepLeaf(bundle.instance.secret, author, nonce, s.hash);
  const proven = observed.root === r.root && observed.count === r.count && r.index === observed.index && verifyMerkleProof(leaf, observed.index, observed.count, r.proof, observed.root);
  checks.push(proven ? pass('merkle', `the batch root ${observed.root} commits to this envelope at index ${observed.index} of ${observed.count}`) : fail('merkle', `the batch root ${observed.root} does not commit to envelope ${s.hash} at index ${observed.index}`));
  const depth = chain.head - observed.blockNumber + 1;
  checks.push(depth >= bundle.chain.confirmations ? pass('final', `${depth} confirmations (${bundle.chain.confirmations} required)`) : fail('final', `only ${depth} confirmations, ${bundle.chain.confirmations} required`));
  return { checks, observed };
}

/** The bundle's steps must be numbered 0, 1, … and sit on chain in that order. */
export function orderCheck(steps: EvidenceStep[], i: number): Check {
  const s = steps[i]!;
  if (s.seq !== i) return fail('order', `numbered ${s.seq}, but it is step ${i} of the bundle`);
  const before = steps[i - 1];
  if (before && comparePositions(before.pin, s.pin) >= 0) {
    return fail('order', `sequenced at block ${s.pin.blockNumber}, log ${s.pin.logIndex}, index ${s.pin.index}, not after the previous step (block ${before.pin.blockNumber}, log ${before.pin.logIndex}, index ${before.pin.index})`);
  }
  return pass('order', before ? 'after the previous step on chain' : 'the first step');
}
