/**
 * The instance workflow's messages, declared once and imported by the workflow, the API and the
 * node. Every handler takes a single JSON object, as the Temporal Web UI sends one.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Definition } from '../src/model/definition';
import type { InstanceHeader } from '../src/model/instance';
import type { ChainPosition } from '../src/model/pin';
import type { ProcessState } from '../src/process/state';

export const TASK_QUEUE = 'lockstep';

/** The failure type of a local activity offered to a process that does not lead its party (src/node/workers.ts). */
export const NOT_LEADING = 'not_leading';

export function instanceWorkflowId(instanceId: string): string {
  return `instance-${instanceId}`;
}

/**
 * A step this node's workflow holds but has not decided yet: one of its own party's, from its
 * proposal on, or a peer's, from the moment its final pin is signalled with it.
 */
export interface PendingStep {
  envelopeHash: string;
  step: string;
  author: string;
  /** What guards read of the step's input and output (guardReadData), and no more; every participant holds it. */
  input?: unknown;
  output?: unknown;
}

export interface CarriedState {
  state: ProcessState;
  pending: PendingStep[];
  confirmations: PinConfirmation[];
  /** Chain position of the last decided step: anything at or before it is a duplicate. */
  lastPosition?: ChainPosition;
  invited: boolean;
  recentlyDecided: string[];
  /** Steps this party has proposed in the instance (the last nonce used). */
  ownNonce: number;
}

export interface InstanceWorkflowInput {
  header: InstanceHeader;
  definition: Definition;
  /** The party whose node runs this copy of the instance. */
  party: string;
  /** When to continue-as-new; defaults stay well inside Temporal's per-run limits. */
  limits?: RunLimits;
  /** State handed over by continue-as-new. */
  carried?: CarriedState;
  /** Where the details shown in the Temporal UI link to; absent in runs started before it existed. */
  links?: InstanceLinks;
}

/** Where this party's node serves the instance's data; links in the Temporal UI point there. */
export interface InstanceLinks {
  /** Base URL of the party's REST API, e.g. http://127.0.0.1:4002 */
  apiUrl: string;
}

export interface RunLimits {
  /** History events per run (Temporal's hard limit is 51,200). */
  maxEvents: number;
  /** Updates and signals per run (Temporal allows 2,000 updates and 10,000 signals). */
  maxMessages: number;
  /**
   * History bytes per run (Temporal terminates a workflow whose history passes 50 MB). Past it
   * the run takes no new proposal until it has continued as new; absent in runs started before.
   */
  maxHistoryBytes?: number;
}

export const DEFAULT_RUN_LIMITS: Required<RunLimits> = { maxEvents: 10_000, maxMessages: 1_000, maxHistoryBytes: 16 * 1_048_576 };

export interface InstanceResult {
  outcome: string;
  steps: number;
}

export interface ProposeRequest {
  step: string;
  input?: unknown;
  /** Required exactly when the step declares an output schema. */
  output?: unknown;
  /**
   * The step data's salt (32 random bytes, 0x-prefixed hex), set by the REST API: with it, the
   * workflow builds the step's envelope in the Update's own task. An Update sent from the Temporal
   * UI has none: a queued activity then derives one from the party's key.
   */
  salt?: string;
}

export interface ProposeResult {
  envelopeHash: string;
  status: 'pending';
}

/** A step's tag is final on chain. Without `envelopeHash` the node is still waiting for its data. */
export interface PinConfirmation {
  /** `${author}/${nonce}`: the author's n-th step in the instance. */
  slot: string;
  position: ChainPosition;
  envelopeHash?: string;
  /**
   * The step the envelope proposes, told with its final pin in one signal. Absent in signals
   * sent before that, when the data exchange sent it in an envelope signal of its own.
   */
  proposal?: PendingStep;
}

export interface InstanceView {
  header: InstanceHeader;
  party: string;
  state: ProcessState;
  pending: PendingStep[];
  nextSteps: string[];
  /** The earliest final step whose data has not arrived: every later step waits for it. */
  waitingFor?: { author: string; nonce: number; position: ChainPosition };
}

/** Propose a step for this node's party. The validator enforces role, order, input and output schemas. */
export const proposeUpdate = defineUpdate<ProposeResult, [ProposeRequest]>('propose');
/**
 * Complete a human task from the Temporal Web UI: one JSON object `{ "step", "input" }`, checked
 * like `propose` (role, order, input schema, guard) and also that the step is a human task.
 */
export const completeTaskUpdate = defineUpdate<ProposeResult, [ProposeRequest]>('completeTask');
/**
 * A peer's envelope became known, as the data exchange used to tell it. No node sends it any
 * more (the final pin's signal carries the step); handled still so that older histories replay.
 */
export const envelopeSignal = defineSignal<[PendingStep]>('envelope');
/** A pin reached the required confirmations, with its step once the envelope is here: sent by the pin signaller, in chain order. */
export const pinConfirmedSignal = defineSignal<[PinConfirmation]>('pinConfirmed');
export const viewQuery = defineQuery<InstanceView>('view');
