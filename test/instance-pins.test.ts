/**
 * Finding one instance's pins by their tags (a unit test: the Sequencer is a stand-in holding a
 * made-up chain; test/evidence.test.ts and test/late-invitation.test.ts read a real one). The
 * steps found are those a node would see, reached from step 1 with no gap wider than TAG_WINDOW,
 * and a long history takes a few reads of the range, not one per window.
 */
import { instancePinsBetween } from '../src/chain/instance-pins';
import { contextOf, tagOf } from '../src/chain/pins';
import { TAG_WINDOW } from '../src/store/store';
import type { ObservedTag } from '../src/model/pin';

const SECRET = `0x${'ab'.repeat(32)}`;

/** A chain holding, for each party, a pin of each listed step number (and one pin of another instance). */
function chain(steps: Record<string, number[]>) {
  const pins: ObservedTag[] = [];
  for (const [party, nonces] of Object.entries(steps)) {
    for (const nonce of nonces) pins.push({ tag: tagOf(contextOf(SECRET, party, nonce)), author: party, blockNumber: pins.length + 1 } as unknown as ObservedTag);
  }
  pins.push({ tag: tagOf(contextOf(`0x${'cd'.repeat(32)}`, 'alpha', 1)), author: 'alpha', blockNumber: pins.length + 1 } as unknown as ObservedTag);
  const reads: number[] = [];
  return {
    reads,
    sequencer: {
      tagsBetween: (_from: number, _to: number, only?: ReadonlySet<string>) => {
        reads.push(only!.size);
        return Promise.resolve(pins.filter((p) => only!.has(p.tag)));
      },
    },
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('the steps found are those reached from step 1 with no gap wider than the window, and none of another instance', async () => {
  const { sequencer } = chain({ alpha: [...range(1, 100), 100 + TAG_WINDOW, 100 + 3 * TAG_WINDOW], beta: [2, 3, 3 + TAG_WINDOW + 1] });
  const found = await instancePinsBetween(sequencer, SECRET, ['alpha', 'beta'], 0, 1_000);
  const of = (party: string) => found.filter((p) => p.party === party).map((p) => p.nonce);
  // alpha: 1..100, then 116 (a gap of exactly the window); 148 lies beyond a wider gap.
  expect(of('alpha')).toEqual([...range(1, 100), 100 + TAG_WINDOW]);
  // beta: 2 and 3 (step 1 was never pinned), not 20.
  expect(of('beta')).toEqual([2, 3]);
  expect(found.every(({ pin, party, nonce }) => pin.tag === tagOf(contextOf(SECRET, party, nonce)))).toBe(true);
});

test('a long history takes a few reads, each for twice as many step numbers as the last found', async () => {
  const { sequencer, reads } = chain({ alpha: range(1, 1_000) });
  const found = await instancePinsBetween(sequencer, SECRET, ['alpha', 'beta'], 0, 1_000);
  expect(found.map((p) => p.nonce)).toEqual(range(1, 1_000));
  // One read per window would be 63; doubling takes seven.
  expect(reads.length).toBeLessThanOrEqual(8);
  expect(reads.at(-1)!).toBeLessThan(2 * 1_000 + 3 * TAG_WINDOW + TAG_WINDOW);
});

test('an instance with no pins costs one read', async () => {
  const { sequencer, reads } = chain({});
  expect(await instancePinsBetween(sequencer, SECRET, ['alpha', 'beta'], 0, 1_000)).toEqual([]);
  expect(reads).toEqual([2 * TAG_WINDOW]);
});
