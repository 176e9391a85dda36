/**
 * Where each node's memory was when its resident size peaked in the Lockstep phase, from the
 * node's "memory" debug lines (one a second): the V8 heap (allocated and in use), buffers, and
 * the rest of the resident size, which is code, stacks and native memory (the Temporal core's
 * workflow and connection state among it). Says whether a node over its memory target holds live
 * JavaScript objects, heap not yet given back, or native memory.
 */
import { linesWithMessage } from './node-log';

export interface NodeMemoryFigure {
  party: string;
  rssMb: number;
  heapTotalMb: number;
  heapUsedMb: number;
  /** Memory of buffers and other objects outside the heap that V8 accounts for (includes arrayBuffers). */
  externalMb: number;
  /** Resident size not in the V8 heap or its external memory: code, stacks, native allocations. */
  otherMb: number;
}

interface Sample {
  time: number;
  rssMb: number;
  heapTotalMb: number;
  heapUsedMb: number;
  externalMb: number;
}

/** Each node's sample with the largest resident size in [from, to]; nodes without samples are left out. */
export function nodeMemoryAtPeak(logs: Record<string, string>, from: number, to: number): NodeMemoryFigure[] {
  const figures: NodeMemoryFigure[] = [];
  for (const [party, file] of Object.entries(logs)) {
    const peak = linesWithMessage<Sample>(file, 'memory')
      .filter((s) => s.time >= from && s.time <= to)
      .reduce<Sample | undefined>((top, s) => (!top || s.rssMb > top.rssMb ? s : top), undefined);
    if (!peak) continue;
    figures.push({
      party,
      rssMb: peak.rssMb,
      heapTotalMb: peak.heapTotalMb,
      heapUsedMb: peak.heapUsedMb,
      externalMb: peak.externalMb,
      otherMb: peak.rssMb - peak.heapTotalMb - peak.externalMb,
    });
  }
  return figures;
}
