/**
 * The decided state of an instance, as the workflow holds it: which steps are final, in which
 * order, and whether the instance has ended. Pure data, so workflows, activities and the API
 * reason about it the same way.
 */
export interface DoneStep {
  envelopeHash: string;
  seq: number;
  author: string;
}

export interface ProcessState {
  /** Confirmed steps by step id. */
  done: Record<string, DoneStep>;
  /** Number of decided (confirmed or rejected) steps so far. */
  seq: number;
  ended?: { outcome: string; envelopeHash: string };
}

export function emptyState(): ProcessState {
  return { done: {}, seq: 0 };
}
