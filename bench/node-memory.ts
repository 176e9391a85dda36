/**
 * Where each node's memory was when its resident size peaked in the Lockstep phase, from the
 * node's "memory" debug lines (one a second): the main thread's V8 heap (allocated and in use),
 * the workflow thread's (taken every tenth second), buffers, and the rest of the resident size,
 * which is code, stacks and native memory (the Temporal core's among it); and the main thread's
 * garbage-collection pauses over the phase. Says whether a node over its memory target holds live
 * JavaScript objects, heap not yet collected, or native memory, and what collecting costs.
 */
import { linesWithMessage } from './node-log';

export interface NodeMemoryFigure {
  party: string;
  rssMb: number;
  heapTotalMb: number;
  heapUsedMb: number;
  /** Memory of buffers and other objects outside the heap that V8 accounts for (includes arrayBuffers). */
  externalMb: number;
  /** The workflow thread's V8 heap, allocated; 0 when the node did not report it. */
  threadHeapTotalMb: number;
  /** Resident size not in the V8 heaps or their external memory: code, stacks, native allocations. */
  otherMb: number;
  /** The main thread's garbage-collection pauses in the window, in ms. */
  gcPauseMs: number;
}

interface Sample {
  time: number;
  rssMb: number;
  heapTotalMb: number;
  heapUsedMb: number;
  externalMb: number;
  threadHeapTotalMb?: number;
  gcMs?: number;
}

/** Each node's sample with the largest resident size in [from, to]; nodes without samples are left out. */
export function nodeMemoryAtPeak(logs: Record<string, string>, from: number, to: number): NodeMemoryFigure[] {
  const figures: NodeMemoryFigure[] = [];
  for (const [party, file] of Object.entries(logs)) {
    const samples = linesWithMessage<Sample>(file, 'memory').filter((s) => s.time >= from && s.time <= to);
    const peak = samples.reduce<Sample | undefined>((top, s) => (!top || s.rssMb > top.rssMb ? s : top), undefined);
    if (!peak) continue;
    const threadHeapTotalMb = peak.threadHeapTotalMb ?? 0;
    figures.push({
      party,
      rssMb: peak.rssMb,
      heapTotalMb: peak.heapTotalMb,
      heapUsedMb: peak.heapUsedMb,
      externalMb: peak.externalMb,
      threadHeapTotalMb,
      otherMb: peak.rssMb - peak.heapTotalMb - threadHeapTotalMb - peak.externalMb,
      gcPauseMs: (samples.at(-1)!.gcMs ?? 0) - (samples[0]!.gcMs ?? 0),
    });
  }
  return figures;
}
