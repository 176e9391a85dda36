/**
 * How far V8 lets a heap grow past its live data before the next full collection. Left to
 * itself, V8 sizes that room by how fast it collects (up to four times the live data), and a node
 * under load, whose requests keep objects alive long enough to be promoted, then holds two to three
 * times the memory it uses: 150-230 MB of main-thread heap for 55-65 MB live, and 85-110 MB in
 * the workflow thread for 60-70 live (docs/performance.md). A fixed, smaller room costs more frequent full
 * collections, which V8 runs mostly on its own threads beside the JavaScript.
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flag for a growth of `percent` past the live data; none for 0 (V8's own sizing). */
export function heapGrowthFlag(percent: number): string | undefined {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth must be a whole number of percent, 0 or more, got ${percent}`);
  return percent === 0 ? undefined : `--heap-growing-percent=${percent}`;
}

/**
 * Applies to every heap of the process, the workflow thread's too: V8's flags are per process and
 * read at each collection. Call once, at start.
 */
export function limitHeapGrowth(percent: number): void {
  const flag = heapGrowthFlag(percent);
  if (flag) setFlagsFromString(flag);
}
