/**
 * Where the time of one step goes, hop by hop, from timestamps observable without touching the
 * engine's logic: the driver's own clock (REST request and answer, final event on every node), the
 * nodes' pino log lines ("step stored", "step pinned", "step delivered", "final step signalled",
 * "step decided", with their durations) and the local time each block was first seen.
 */
import { readFileSync } from 'node:fs';
import type { StepSample } from './driver';
import { summarise, type Summary } from './stats';

/** What the node logs say about one step (times in ms since the epoch). */
export interface StepLog {
  stored?: { at: number; ms: number; signMs: number };
  pinned?: { at: number; ms: number; transactionHash: string };
  /** Per party: the envelope accepted from its author. */
  accepted: Record<string, number>;
  /** Per party: the proven final pin signalled to its workflow, and the decision recorded. */
  signalled: Record<string, number>;
  /** When the transaction carrying the step was signed and broadcast. */
  batchSent?: number;
  decided: Record<string, { at: number; ms: number }>;
}

interface LogLine {
  msg?: string;
  time?: number;
  envelopeHash?: string;
  ms?: number;
  signMs?: number;
  transactionHash?: string;
}

/** Reads the JSON lines of each party's node log; lines that are not JSON are skipped. */
export function readStepLogs(logs: Record<string, string>): Map<string, StepLog> {
  const steps = new Map<string, StepLog>();
  const entry = (hash: string): StepLog => {
    let found = steps.get(hash);
    if (!found) steps.set(hash, (found = { accepted: {}, signalled: {}, decided: {} }));
    return found;
  };
  /** 'batch sent' lines, by transaction: when the step's batch left the node. */
  const batchSentAt = new Map<string, number>();
  for (const [party, file] of Object.entries(logs)) {
    for (const text of readFileSync(file, 'utf8').split('\n')) {
      if (!text.startsWith('{')) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      if (line.msg === 'batch sent' && line.transactionHash && line.time !== undefined) batchSentAt.set(line.transactionHash, line.time);
      if (!line.envelopeHash || line.time === undefined) continue;
      const step = entry(line.envelopeHash);
      if (line.msg === 'step stored') step.stored ??= { at: line.time, ms: line.ms ?? 0, signMs: line.signMs ?? 0 };
      else if (line.msg === 'step pinned') step.pinned = { at: line.time, ms: line.ms ?? 0, transactionHash: line.transactionHash ?? '' };
      else if (line.msg === 'envelope accepted') step.accepted[party] ??= line.time;
      else if (line.msg === 'final step signalled') step.signalled[party] ??= line.time;
      else if (line.msg === 'step decided') step.decided[party] ??= { at: line.time, ms: line.ms ?? 0 };
    }
  }
  for (const step of steps.values()) if (step.pinned) step.batchSent = batchSentAt.get(step.pinned.transactionHash);
  return steps;
}

/** The hops of one step's critical path, in order, plus transfer (which runs beside the chain). */
export const HOPS = [
  ['api', 'REST call to the publish activity starting: HTTP, auth, Update (validation, envelope built in its workflow task), activity dispatched'],
  ['signing', 'publish activity: build and sign the envelope'],
  ['persist-pending', 'publish activity: store the pending step'],
  ['batch', 'stored to batch sent: step queued, batch cut, transaction signed and broadcast'],
  ['inclusion', 'batch sent to its block seen'],
  ['confirmation-wait', 'inclusion to N blocks deep'],
  ['receipt', 'batch sent to the publish activity holding the receipt (polls the queue, saves the receipt); transfer starts then'],
  ['transfer', 'receipt to the envelope accepted by the last peer (publish activity sends to all side by side; each peer verifies, validates, stores)'],
  ['listener-signal', 'N deep and envelope here (whichever is later) to the final pin signalled to the workflow (listener poll, store, signal), last node'],
  ['apply', 'signalled to recordDecision starting (workflow task; a local activity on the leader), last node'],
  ['persist-decision', 'recordDecision: history, event log, tasks, last node'],
  ['notify', 'decision recorded to the event heard over WebSocket, last node'],
] as const;

export type Hop = (typeof HOPS)[number][0];

export interface BlockTimes {
  blockOf(transactionHash: string): number | undefined;
  seenAt(blockNumber: number): number;
}

/** The hop durations (ms) of one step; a hop whose timestamps are missing is left out. */
export function hopsOf(sample: StepSample, log: StepLog, blocks: BlockTimes, confirmations: number): Partial<Record<Hop, number>> {
  const hops: Partial<Record<Hop, number>> = {};
  const { stored, pinned } = log;
  if (!stored) return hops;
  hops.api = stored.at - stored.ms - sample.requestedAt;
  hops.signing = stored.signMs;
  hops['persist-pending'] = stored.ms - stored.signMs;
  if (!pinned || log.batchSent === undefined) return hops;
  const sent = log.batchSent;
  hops.batch = sent - stored.at;
  hops.receipt = pinned.at - sent;
  const accepted = Object.values(log.accepted);
  if (accepted.length > 0) hops.transfer = Math.max(...accepted) - pinned.at;
  const block = blocks.blockOf(pinned.transactionHash);
  if (block === undefined) return hops;
  const included = blocks.seenAt(block);
  const deep = blocks.seenAt(block + confirmations - 1);
  hops.inclusion = included - sent;
  hops['confirmation-wait'] = deep - included;
  // The node that decided last holds the step's finality on all participants.
  const last = Object.entries(log.decided).sort(([, a], [, b]) => b.at - a.at)[0];
  if (!last) return hops;
  const [party, decided] = last;
  const signalled = log.signalled[party];
  if (signalled !== undefined) {
    // The author holds its own envelope from the start.
    hops['listener-signal'] = signalled - Math.max(deep, log.accepted[party] ?? 0);
    hops.apply = decided.at - decided.ms - signalled;
  }
  hops['persist-decision'] = decided.ms;
  hops.notify = sample.finalAt - decided.at;
  return hops;
}

export type Profile = Record<Hop, Summary>;

export function profileOf(samples: StepSample[], logs: Map<string, StepLog>, blocks: BlockTimes, confirmations: number): Profile {
  const values = Object.fromEntries(HOPS.map(([hop]) => [hop, [] as number[]])) as Record<Hop, number[]>;
  for (const sample of samples) {
    const log = sample.envelopeHash ? logs.get(sample.envelopeHash) : undefined;
    if (!log) continue;
    for (const [hop, ms] of Object.entries(hopsOf(sample, log, blocks, confirmations))) values[hop as Hop].push(ms);
  }
  return Object.fromEntries(HOPS.map(([hop]) => [hop, summarise(values[hop])])) as Profile;
}
