/**
 * The decided state of an instance, as the workflow holds it: which steps are final, how often
 * and when (in chain time), which states of the state machine are marked, and whether the
 * instance has ended. Pure data, carried across continue-as-new, so workflows, activities and
 * the API reason about it the same way.
 */
import type { Definition } from '../model/definition';

export interface DoneStep {
  /** The latest confirmed occurrence of the step (a step in a loop may be taken again). */
  envelopeHash: string;
  seq: number;
  author: string;
  /** How many times the step has been confirmed. */
  count?: number;
  /** Block timestamp (seconds) of the latest occurrence's pin: the anchor of deadlines. */
  timestamp?: number;
  /** What guards read of the latest occurrence's input and output (guardReadData), and no more; all participants hold it. */
  input?: unknown;
  output?: unknown;
}

export interface ProcessState {
  /** Confirmed steps by step id. */
  done: Record<string, DoneStep>;
  /** Number of decided (confirmed or rejected) steps so far. */
  seq: number;
  /** Marked states of the state machine, sorted. */
  marked?: string[];
  /** Envelope hash of the step that last consumed each state: the winner when a rival comes too late. */
  consumedBy?: Record<string, string>;
  ended?: { outcome: string; envelopeHash: string };
}

export function emptyState(): ProcessState {
  return { done: {}, seq: 0 };
}

/** The state an instance starts in: its definition's initial states marked. */
export function initialState(definition: Definition): ProcessState {
  const marked = Object.entries(definition.states ?? {})
    .filter(([, s]) => s.initial)
    .map(([id]) => id)
    .sort();
  return marked.length > 0 ? { ...emptyState(), marked } : emptyState();
}
