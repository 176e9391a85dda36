/**
 * The pins of one instance's steps in a block range, found by their tags alone: each author's
 * tags for step numbers up to `reach` (TAG_WINDOW past the last step found, as a node looks
 * ahead), read again while the steps found reach further. Only the blocks that hold them are
 * fetched (`tagsBetween` with `only`), so one instance costs the same on a busy Sequencer as on
 * an idle one: a node reading back for an instance it was invited to late, and a verifier.
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

/** In chain order; `reach`: how far each author's step numbers are looked for to begin with. */
export async function instancePinsBetween(sequencer: SequencerClient, secret: string, reach: ReadonlyMap<string, number>, fromBlock: number, toBlock: number): Promise<InstancePin[]> {
  const wanted = new Map<string, { party: string; nonce: number }>();
  const upTo = new Map(reach);
  for (let grown = true; grown; ) {
    for (const [party, last] of upTo) for (let nonce = 1; nonce <= last; nonce++) wanted.set(tagOf(contextOf(secret, party, nonce)), { party, nonce });
    const found = await sequencer.tagsBetween(fromBlock, toBlock, new Set(wanted.keys()));
    grown = false;
    for (const { tag } of found) {
      const { party, nonce } = wanted.get(tag)!;
      if (nonce + TAG_WINDOW > upTo.get(party)!) {
        upTo.set(party, nonce + TAG_WINDOW);
        grown = true;
      }
    }
    if (!grown) return found.map((pin) => ({ pin, ...wanted.get(pin.tag)! }));
  }
  return [];
}
