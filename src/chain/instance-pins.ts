/**
 * The pins of one instance's steps in a block range, found by their tags alone. A node expects
 * each author's tags up to TAG_WINDOW past the last step it has seen, so the steps that count are
 * those reached from step 1 with no gap wider than that: the same here. Only the blocks that hold
 * them are fetched (`tagsBetween` with `only`), so one instance costs the same on a busy
 * Sequencer as on an idle one: a node reading back for an instance it was invited to late, and a
 * verifier.
 */
import type { ObservedTag } from '../model/pin';
import { TAG_WINDOW } from '../store/store';
import { contextOf, tagOf } from './pins';
import type { SequencerClient } from './sequencer';

export interface InstancePin {
  pin: ObservedTag;
  /** The party whose step number `nonce` this tag stands for (whoever sent it). */
  party: string;
  nonce: number;
}

/**
 * In chain order. Each read looks twice as far past the last step found as that step's number
 * (at least TAG_WINDOW), so a long history takes a few reads of the range, not one per window;
 * steps beyond a gap wider than TAG_WINDOW are then left out, as a node would never see them.
 */
export async function instancePinsBetween(sequencer: Pick<SequencerClient, 'tagsBetween'>, secret: string, parties: readonly string[], fromBlock: number, toBlock: number): Promise<InstancePin[]> {
  const wanted = new Map<string, { party: string; nonce: number }>();
  const upTo = new Map(parties.map((party) => [party, 0]));
  const want = (party: string, last: number): void => {
    for (let nonce = upTo.get(party)! + 1; nonce <= last; nonce++) wanted.set(tagOf(contextOf(secret, party, nonce)), { party, nonce });
    upTo.set(party, last);
  };
  for (const party of parties) want(party, TAG_WINDOW);
  for (;;) {
    const found = (await sequencer.tagsBetween(fromBlock, toBlock, new Set(wanted.keys()))).map((pin) => ({ pin, ...wanted.get(pin.tag)! }));
    const reached = reachedFromStart(found);
    let grown = false;
    for (const party of parties) {
      const last = Math.max(0, ...reached.filter((p) => p.party === party).map((p) => p.nonce));
      if (last + TAG_WINDOW > upTo.get(party)!) {
        want(party, last + Math.max(TAG_WINDOW, last));
        grown = true;
      }
    }
    if (!grown) return reached;
  }
}

/** The pins whose step number is reached from step 1 of its author with no gap wider than TAG_WINDOW. */
function reachedFromStart(found: InstancePin[]): InstancePin[] {
  const limit = new Map<string, number>();
  for (const { party, nonce } of [...found].sort((a, b) => a.nonce - b.nonce)) {
    const reach = limit.get(party) ?? TAG_WINDOW;
    if (nonce <= reach) limit.set(party, Math.max(reach, nonce + TAG_WINDOW));
  }
  return found.filter(({ party, nonce }) => nonce <= (limit.get(party) ?? TAG_WINDOW));
}
