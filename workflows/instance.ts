/**
 * The process-instance workflow: one per instance on each participant's node.
 *
 * A step is proposed through the `propose` update (validated: role, order, input and output schemas), its
 * envelope built in the Update's workflow task, then signed, stored, pinned on chain and delivered
 * privately to the other participants by one queued activity.
 * Every node applies a step only when it holds both the envelope and the confirmed pin, strictly
 * in chain order, re-checking the rules at that point: the first step sequenced wins, a competing
 * one is rejected as a conflict naming the winner, identically on every node.
 *
 * Deterministic: no I/O, clocks or keys here; everything with a side effect is an activity.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, LocalActivities, Proposal } from '../activities';
import { buildEnvelope } from '../src/envelope/build';
import type { Decision } from '../src/store/store';
import { LockstepError } from '../src/model/errors';
import { comparePositions, type ChainPosition } from '../src/model/pin';
import { validateStepData } from '../src/process/step-data';
import { jsonValueProblem, stepDataSizeProblem } from '../src/process/json-value';
import { applyStep, judge, nextSteps, StepRefused } from '../src/process/rules';
import { guardReadData, guardReadPaths } from '../src/process/guard';
import { initialState } from '../src/process/state';
import { openStepIds } from '../src/process/tasks';
import { participantsOf } from '../src/model/instance';
import { hasHumanSteps, instanceCurrentDetails, openHumanTasks, taskAttributes } from './human-tasks';
import {
  completeTaskUpdate,
  envelopeSignal,
  pinConfirmedSignal,
  proposeUpdate,
  viewQuery,
  DEFAULT_RUN_LIMITS,
  NOT_LEADING,
  type InstanceResult,
  type InstanceWorkflowInput,
  type PendingStep,
  type PinConfirmation,
  type ProposeRequest,
  type ProposeResult,
} from './messages';

/** Retried until they succeed: a peer or the chain being down delays a step, it never loses it. */
const durable = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/**
 * Work for every peer in one activity: pinning a step and delivering it, inviting the
 * participants. Heartbeats show it alive while the batch fills and peers answer (up to 25 s
 * each), so a crashed worker's work is taken up after the heartbeat timeout rather than the
 * whole start-to-close one. The SDK sends heartbeats at most every 80 % of the timeout, so 20 s
 * leaves a busy server 4 s to take each.
 */
const publishing = proxyActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/** Local bookkeeping that must never block on the network: sealing a step, recording a decision. */
const local = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '5 seconds' },
});
/**
 * Recording a decision, first tried inside the workflow task when the process holding it leads
 * its party (src/node/workers.ts): no round trip through Temporal's queues. Its input is all from
 * the history, so running it again after a failed task records the same. One short attempt: a
 * local activity holds its workflow task open (and an Update waits for that task); a slow or
 * failed attempt is queued instead, where waiting costs nothing.
 */
const inTask = proxyLocalActivities<LocalActivities>({
  startToCloseTimeout: '4 seconds',
  retry: { maximumAttempts: 1 },
});

const RECENTLY_DECIDED_KEPT = 1_000;
/** A proposal's salt, as the REST API makes it (src/envelope/seal.ts, newSalt). */
const SALT = /^0x[0-9a-f]{64}$/;
const TASK_ATTRIBUTES_PATCH = 'human-task-search-attributes';
/** Runs recorded before decisions were recorded in the workflow task replay with the activity queued. */
const LOCAL_DECISIONS_PATCH = 'decisions-recorded-in-task';
/** Runs recorded before publishStep and inviteParticipants replay with an activity for the pin and one per peer. */
const ONE_ACTIVITY_FOR_PEERS_PATCH = 'one-activity-for-all-peers';
/** Runs recorded before the workflow built a salted proposal's envelope itself replay with sealStep queued. */
const ENVELOPE_IN_TASK_PATCH = 'envelope-built-in-task';
/** Runs recorded before they watched their history's size replay without continuing as new for it. */
const HISTORY_BYTES_PATCH = 'history-bytes-per-run';

/** Turns a rule violation into a failure the caller sees, with its code and offending fields. */
function refuse(error: unknown): never {
  if (error instanceof LockstepError) {
    throw ApplicationFailure.create({ type: error.code, message: error.message, details: [error.details], nonRetryable: true });
  }
  throw error;
}

export async function instanceWorkflow(input: InstanceWorkflowInput): Promise<InstanceResult> {
  const { header, definition, party } = input;
  const limits = input.limits ?? DEFAULT_RUN_LIMITS;
  const carried = input.carried;
  let state = carried?.state ?? initialState(definition);
  /**
   * What guards read of each step's data: that much of it travels with the pending step to
   * `decide()` and stays in the state, and no more is kept (a step's data can be a megabyte, and
   * what is kept is carried across continue-as-new).
   */
  const guardRead = guardReadPaths(definition);
  const heldOf = (step: PendingStep): PendingStep => ({ envelopeHash: step.envelopeHash, step: step.step, author: step.author, ...guardReadData(guardRead.get(step.step), step) });
  let lastPosition: ChainPosition | undefined = carried?.lastPosition;
  let invited = carried?.invited ?? false;
  const pending = new Map<string, PendingStep>((carried?.pending ?? []).map((p) => [p.envelopeHash, heldOf(p)]));
  /** Final tags by slot (`author/nonce`), with their envelope once it is here and proven. */
  const confirmations = new Map<string, PinConfirmation>((carried?.confirmations ?? []).map((c) => [c.slot, c]));
  let ownNonce = carried?.ownNonce ?? 0;
  /** This party's open steps as this run last had them recorded (`Decision.openSteps`): unknown at its start, so its first decision records them. */
  let recordedOpenSteps: string | undefined;
  let inFlight = 0;
  let messages = 0;
  /** Hashes of recently decided steps, so a late duplicate notice cannot revive one. Bounded. */
  const recentlyDecided = new Set<string>(carried?.recentlyDecided ?? []);
  const remember = (envelopeHash: string): void => {
    recentlyDecided.add(envelopeHash);
    if (recentlyDecided.size > RECENTLY_DECIDED_KEPT) recentlyDecided.delete(recentlyDecided.values().next().value!);
  };

  // Runs recorded before task search attributes existed replay without their upserts.
  const showsTaskAttributes = hasHumanSteps(definition) && patched(TASK_ATTRIBUTES_PATCH);
  let shownTaskAttributes: string | undefined;
  const decidesInTask = patched(LOCAL_DECISIONS_PATCH);
  const peersInOneActivity = patched(ONE_ACTIVITY_FOR_PEERS_PATCH);
  // Set only in runs that have peersInOneActivity too: publishStep is what stores such a step.
  const buildsEnvelopes = patched(ENVELOPE_IN_TASK_PATCH);
  const maxHistoryBytes = patched(HISTORY_BYTES_PATCH) ? (limits.maxHistoryBytes ?? DEFAULT_RUN_LIMITS.maxHistoryBytes) : Infinity;
  /**
   * Each proposal puts its data in the history twice (its Update, its publish activity's input),
   * and a run continues as new only between proposals (`inFlight`): a burst of large ones could
   * otherwise carry a run past Temporal's 50 MB and get the workflow terminated. Counted from the
   * run's start, so that a large input (definition, carried state) cannot make every run full.
   */
  const startingBytes = workflowInfo().historySize;
  const grownBytes = (): number => workflowInfo().historySize - startingBytes;
  const historyFull = (): boolean => grownBytes() > maxHistoryBytes;

  /** In this workflow task if it can be (see `inTask`), otherwise queued for the leading process. */
  async function recordDecision(decision: Decision): Promise<void> {
    if (decidesInTask) {
      try {
        return await inTask.recordDecision(decision);
      } catch (error) {
        // A local activity's failure reaches the workflow as the activity's own failure, unwrapped.
        const failure = error instanceof ActivityFailure ? error.cause : error;
        if (!(failure instanceof ApplicationFailure && failure.type === NOT_LEADING)) log.warn('recording the decision in the workflow task failed; queued instead', { instanceId: header.id, error: String(error) });
      }
    }
    await local.recordDecision(decision);
  }

  const isDuplicate = (position: ChainPosition): boolean =>
    lastPosition !== undefined && comparePositions(position, lastPosition) <= 0;

  setHandler(viewQuery, () => {
    const next = earliestConfirmation();
    const [author, nonce] = next && !next.envelopeHash ? next.slot.split('/') : [];
    return {
      header,
      party,
      state,
      pending: [...pending.values()],
      nextSteps: nextSteps(definition, header, state).map((s) => s.id),
      ...(author && nonce ? { waitingFor: { author, nonce: Number(nonce), position: next!.position } } : {}),
    };
  });

  // Runs recorded before the final pin's signal carried its step heard of peers' steps this way.
  setHandler(envelopeSignal, (notice: PendingStep) => {
    messages++;
    if (!recentlyDecided.has(notice.envelopeHash)) pending.set(notice.envelopeHash, heldOf(notice));
  });

  setHandler(pinConfirmedSignal, ({ proposal, ...confirmation }: PinConfirmation) => {
    messages++;
    if (isDuplicate(confirmation.position)) return;
    const known = confirmations.get(confirmation.slot);
    // A slot's first final sequencing stands; a later signal may only add its envelope.
    if (!known || (!known.envelopeHash && comparePositions(known.position, confirmation.position) === 0)) {
      confirmations.set(confirmation.slot, confirmation);
    }
    // The step comes with its envelope: a peer's step is pending here from now on (this party's
    // own has been since its proposal).
    const held = confirmations.get(confirmation.slot)?.envelopeHash;
    if (proposal && proposal.envelopeHash === held && !pending.has(held) && !recentlyDecided.has(held)) pending.set(held, heldOf(proposal));
  });

  /**
   * Builds the step's envelope, records it as pending and publishes it: `propose` and
   * `completeTask` alike. A proposal that brings its salt (the REST API's do) has its envelope
   * built here, with no activity: it is signed and stored by publishStep, queued as this task
   * completes, so a step takes its number only once its task is recorded (run again after a
   * failed task, this builds another envelope, at that task's time; nothing had seen the first).
   * The REST API answers once it is stored. Without a salt (an Update sent from the Temporal
   * UI) the queued sealStep derives one from the key, then signs and stores: never a local
   * activity, which would store the step before its task is recorded (docs/performance.md).
   */
  async function proposeStep(request: ProposeRequest): Promise<ProposeResult> {
    messages++;
    const nonce = ++ownNonce;
    const proposedAt = new Date().toISOString(); // workflow time: deterministic on replay
    inFlight++;
    try {
      const seal = { instanceId: header.id, step: request.step, input: inputOf(request), output: request.output, nonce, proposedAt };
      const proposal: Proposal | undefined = buildsEnvelopes && request.salt !== undefined ? { ...seal, definitionHash: header.definitionHash, salt: request.salt } : undefined;
      const { envelopeHash } = proposal ? { envelopeHash: buildEnvelope({ ...proposal, author: party }).hash } : await local.sealStep(seal);
      pending.set(envelopeHash, heldOf({ envelopeHash, step: request.step, author: party, input: inputOf(request), output: request.output }));
      showTasks();
      void publish(envelopeHash, proposal);
      return { envelopeHash, status: 'pending' as const };
    } finally {
      inFlight--;
    }
  }

  /** Refuses (nothing recorded) a proposal the rules, the schema or the guard would reject now. */
  function validateProposal(request: ProposeRequest, humanOnly: boolean): void {
    try {
      if (typeof request !== 'object' || request === null || typeof request.step !== 'string') {
        throw new LockstepError('bad_request', 'a proposal is an object { "step": string, "input": object, "output"?: object }', [
          { field: '/step', message: 'required string' },
        ]);
      }
      const known = definition.steps.find((s) => s.id === request.step);
      if (humanOnly && known && !known.human) {
        throw new LockstepError('bad_request', `step "${known.id}" is not a human task; take it with the propose Update or the REST API`, [
          { field: '/step', message: 'not a human task' },
        ]);
      }
      if (request.salt !== undefined && (typeof request.salt !== 'string' || !SALT.test(request.salt))) {
        throw new LockstepError('bad_request', `salt must be 32 bytes as 0x-prefixed lower-case hex; got ${JSON.stringify(request.salt)?.slice(0, 80)}`, [{ field: '/salt', message: 'not 32 bytes of hex' }]);
      }
      if (historyFull()) {
        throw new LockstepError('unavailable', `instance ${header.id} is continuing as new (this run's history has grown by ${(grownBytes() / 1_048_576).toFixed(2)} MiB, past its ${(maxHistoryBytes / 1_048_576).toFixed(2)} MiB); propose again in a moment`);
      }
      const input = inputOf(request);
      // The REST API refuses such data at its edge; an Update from the Temporal UI reaches here unchecked,
      // and a value too deep to serialise would fail the workflow task for good once accepted.
      const problem = jsonValueProblem({ input, output: request.output });
      if (problem) throw new LockstepError('bad_request', `step data ${problem.field === '/' ? '' : `at ${problem.field} `}${problem.message}`, [problem]);
      // Too large for the task that would accept it: that task would fail on every attempt.
      const tooLarge = stepDataSizeProblem({ input, output: request.output });
      if (tooLarge) throw new LockstepError('payload_too_large', tooLarge.message, [tooLarge]);
      // Chain time so far (the last decided pin's) is a lower bound of this step's pin time.
      judge(definition, header, state, { step: request.step, author: party, input, output: request.output }, lastPosition?.timestamp, true, (step) => {
        const mine = [...pending.values()].find((p) => p.step === step.id && p.author === party);
        if (mine) {
          throw new LockstepError('conflict', `step "${step.id}" is already proposed by ${party} and pending (envelope ${mine.envelopeHash})`, [
            { field: '/step', message: 'already pending' },
          ]);
        }
        validateStepData(header.definitionHash, definition, step, { input, output: request.output });
      });
    } catch (error) {
      refuse(error);
    }
  }

  setHandler(proposeUpdate, proposeStep, {
    validator: (request: ProposeRequest) => validateProposal(request, false),
    description: 'Propose a step for this party: { "step": "<step id>", "input": { … } }',
  });

  setHandler(completeTaskUpdate, proposeStep, {
    validator: (request: ProposeRequest) => validateProposal(request, true),
    description: 'Complete an open human task: { "step": "<step id>", "input": { … } }. The current details show the open task and its input schema.',
  });

  /**
   * Sign and store the step if its Update's task built it (`proposal`), pin it (the receipt of
   * the step's place in its batch travels with the envelope), then deliver it to each peer in
   * parallel: a slow peer delays nobody else. One publishStep activity does all; runs from before
   * it had an activity for the pin and one per peer.
   */
  async function publish(envelopeHash: string, proposal?: Proposal): Promise<void> {
    inFlight++;
    const peers = participantsOf(header).filter((p) => p !== party);
    try {
      try {
        if (peersInOneActivity) await publishing.publishStep({ instanceId: header.id, envelopeHash, to: peers, ...(proposal ? { proposal } : {}) });
        else await durable.pinStep({ instanceId: header.id, envelopeHash });
      } catch (error) {
        // The batcher set the step aside (the contract refuses it): it was never sent anywhere,
        // so nobody waits for it; it stops holding this instance and may be proposed again.
        if (!(error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.type === 'pin_failed')) throw error;
        log.warn('step can never be pinned; set aside', { instanceId: header.id, envelopeHash, reason: error.cause.message });
        pending.delete(envelopeHash);
        remember(envelopeHash);
        showTasks();
        return;
      }
      if (!peersInOneActivity) await Promise.all(peers.map((to) => durable.deliverStep({ instanceId: header.id, envelopeHash, to })));
    } finally {
      inFlight--;
    }
  }

  async function invite(): Promise<void> {
    if (invited || header.createdBy !== party) return;
    inFlight++;
    try {
      const peers = participantsOf(header).filter((p) => p !== party);
      if (peersInOneActivity) await publishing.inviteParticipants({ instanceId: header.id, to: peers });
      else await Promise.all(peers.map((to) => durable.inviteParticipant({ instanceId: header.id, to })));
      invited = true;
    } finally {
      inFlight--;
    }
  }

  function earliestConfirmation(): PinConfirmation | undefined {
    let earliest: PinConfirmation | undefined;
    for (const c of confirmations.values()) if (!earliest || comparePositions(c.position, earliest.position) < 0) earliest = c;
    return earliest;
  }

  /**
   * The earliest final step, if its envelope is here; otherwise nothing: a later step, from any
   * author, never overtakes an earlier one whose data is still missing.
   */
  function nextToApply(): (PinConfirmation & { envelopeHash: string }) | undefined {
    const earliest = earliestConfirmation();
    if (!earliest?.envelopeHash || !pending.has(earliest.envelopeHash)) return undefined;
    return { ...earliest, envelopeHash: earliest.envelopeHash };
  }

  async function decide(next: PinConfirmation & { envelopeHash: string }): Promise<void> {
    const proposal = pending.get(next.envelopeHash)!;
    const seq = state.seq;
    let rejection: { code: string; message: string; winner?: string } | undefined;
    try {
      // The verdict depends only on the chain order and the pin's block time: the same on every node.
      const step = judge(definition, header, state, proposal, next.position.timestamp, false);
      state = applyStep(state, step, { envelopeHash: next.envelopeHash, author: proposal.author, timestamp: next.position.timestamp, input: proposal.input, output: proposal.output }, definition);
    } catch (error) {
      if (!(error instanceof LockstepError)) throw error;
      const winner = error instanceof StepRefused ? error.winner : undefined;
      rejection = { code: error.code, message: error.message, ...(winner ? { winner } : {}) };
      state = { ...state, seq: seq + 1 };
    }
    remember(next.envelopeHash);
    pending.delete(next.envelopeHash);
    confirmations.delete(next.slot);
    lastPosition = next.position;
    const openSteps = openStepIds(definition, header, party, state);
    const listed = openSteps.join(' '); // step ids hold no spaces
    const openChanged = listed !== recordedOpenSteps;
    recordedOpenSteps = listed;
    await recordDecision({
      instanceId: header.id,
      envelopeHash: next.envelopeHash,
      status: rejection ? 'rejected' : 'confirmed',
      seq,
      position: next.position,
      rejection,
      outcome: state.ended?.outcome,
      step: proposal.step,
      author: proposal.author,
      ...(openChanged ? { openSteps } : {}),
    });
    publishSearchAttributes();
    showTasks();
  }

  function publishSearchAttributes(): void {
    upsertSearchAttributes({
      LockstepStatus: [state.ended ? `ended:${state.ended.outcome}` : 'active'],
      LockstepNextSteps: nextSteps(definition, header, state).map((s) => s.id),
    });
  }

  /**
   * What the Temporal UI shows of the instance: the current details (not a command, so free to
   * change) and, for definitions with human tasks, the task search attributes when they change.
   */
  function showTasks(): void {
    setCurrentDetails(instanceCurrentDetails(definition, header, state, party, [...pending.values()], input.links));
    if (!showsTaskAttributes) return;
    const attributes = taskAttributes(openHumanTasks(definition, header, state, party, pending.values()));
    const shown = JSON.stringify(attributes);
    if (shown === shownTaskAttributes) return;
    shownTaskAttributes = shown;
    upsertSearchAttributes({ ...attributes });
  }

  function runTooLong(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength > limits.maxEvents || messages > limits.maxMessages || historyFull();
  }

  const finished = (): boolean => state.ended !== undefined && pending.size === 0 && inFlight === 0;

  if (!carried) publishSearchAttributes();
  showTasks();
  void invite();

  for (;;) {
    await condition(() => nextToApply() !== undefined || finished() || (runTooLong() && inFlight === 0));
    const next = nextToApply();
    if (next) {
      await decide(next);
      continue;
    }
    if (finished()) break;
    await condition(allHandlersFinished);
    if (inFlight > 0 || nextToApply()) continue;
    log.info('continuing as new', { instanceId: header.id, seq: state.seq, messages });
    return continueAsNew<typeof instanceWorkflow>({
      header,
      definition,
      party,
      limits,
      ...(input.links ? { links: input.links } : {}),
      carried: {
        state,
        pending: [...pending.values()],
        confirmations: [...confirmations.values()],
        ownNonce,
        lastPosition,
        invited,
        recentlyDecided: [...recentlyDecided],
      },
    });
  }
  await condition(allHandlersFinished);
  return { outcome: state.ended!.outcome, steps: state.seq };
}

/** An absent input is `{}`; an explicit null is the caller's value and must meet the step's schema like any other. */
function inputOf(request: { input?: unknown }): unknown {
  return request.input === undefined ? {} : request.input;
}
