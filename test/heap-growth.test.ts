/**
 * The node's heap growth setting (src/node/heap.ts) does what it is for: under the same churn of
 * objects that live long enough to be promoted, a process with the flag set holds a smaller heap
 * than one left to V8's own sizing. Each run is a child process, since V8's flags are per process.
 */
import { execFileSync } from 'node:child_process';
import { heapGrowthFlag } from '../src/node/heap';

/**
 * Holds some 30 MB live, then allocates about 500 MB in batches that each stay alive for the next
 * ten (promoted, then garbage), and prints the largest heap size seen.
 */
const CHURN = `
  const flag = process.argv[1];
  if (flag) require('node:v8').setFlagsFromString(flag);
  const live = Array.from({ length: 400_000 }, (_, i) => ({ i, s: 'x' + i }));
  const ring = [];
  let peak = 0;
  for (let round = 0; round < 300; round++) {
    ring.push(Array.from({ length: 20_000 }, (_, i) => ({ round, i, s: 'y' + i })));
    if (ring.length > 10) ring.shift();
    peak = Math.max(peak, process.memoryUsage().heapTotal);
  }
  process.stdout.write(JSON.stringify({ peakMb: Math.round(peak / 2 ** 20), held: live.length }));
`;

function peakHeapMb(flag: string | undefined): number {
  const out = JSON.parse(execFileSync(process.execPath, ['-e', CHURN, flag ?? ''], { encoding: 'utf8', timeout: 60_000 })) as { peakMb: number; held: number };
  expect(out.held).toBe(400_000);
  return out.peakMb;
}

test('the flag names V8 heap growth, and 0 sets nothing', () => {
  expect(heapGrowthFlag(30)).toBe('--heap-growing-percent=30');
  expect(heapGrowthFlag(0)).toBeUndefined();
  expect(() => heapGrowthFlag(-1)).toThrow(RangeError);
});

test('a process with the heap growth limited holds a smaller heap under the same churn', () => {
  const limited = peakHeapMb(heapGrowthFlag(30));
  const free = peakHeapMb(undefined);
  expect(limited).toBeGreaterThan(30); // it did hold the live data
  expect(limited).toBeLessThan(free * 0.8);
});
