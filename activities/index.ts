/**
 * The instance workflow's activities: every side effect of a step (signing, private transfer,
 * pinning, persistence). Each is idempotent, because Temporal retries it until it succeeds.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { NodeContext } from '../src/node/context';
import { sealEnvelope, stepSalt } from '../src/envelope/seal';
import type { ProposalFields } from '../src/envelope/build';
import { contextOf, tagOf } from '../src/chain/pins';
import { leafOf } from '../src/chain/merkle';
import type { PinReceipt } from '../src/model/pin';
import { envelopeFor } from '../src/exchange/resend';
import { PinFailedError } from '../src/chain/batcher';
import type { Decision } from '../src/store/store';
import type { InstanceDoc, StepDoc } from '../src/store/documents';
import type { Invitation } from '../src/model/instance';
import { syncHumanTasks } from '../src/events/human-tasks';

export interface SealRequest {
  instanceId: string;
  step: string;
  input: unknown;
  /** Only for steps that declare an output schema (validated by the workflow). */
  output?: unknown;
  /** The author's step number, counted by the workflow, so a retried seal rebuilds the same envelope. */
  nonce: number;
  proposedAt: string;
}

/** A proposal whose envelope the workflow built (its salt came with the Update): what publishStep signs and stores. */
export interface Proposal extends SealRequest {
  definitionHash: string;
  salt: string;
}

/** The step to publish: stored already (by sealStep), or a proposal to sign and store first. */
export interface PublishRequest {
  instanceId: string;
  envelopeHash: string;
  to: string[];
  proposal?: Proposal;
}

/** The failure type of a step that can never be pinned: the workflow stops waiting for it. */
export const PIN_FAILED = 'pin_failed';

/**
 * How often publishStep and inviteParticipants heartbeat; the workflow's heartbeat timeout for
 * them (20 s) is four times this. Most end sooner and never beat: each beat is a write on the
 * Temporal server.
 */
export const PUBLISH_HEARTBEAT_MS = 5_000;

export function createActivities(
  ctx: NodeContext,
  /** The pin signaller, told when a receipt may have proven a final slot (after a restart, the pin can be final first). */
  pins: { flush(): Promise<void> },
) {
  async function instance(instanceId: string): Promise<InstanceDoc> {
    const doc = await ctx.store.agreedInstance(instanceId);
    if (!doc) throw ApplicationFailure.nonRetryable(`instance ${instanceId} is not in this node's store`, 'not_found');
    return doc;
  }

  async function storedStep(envelopeHash: string): Promise<StepDoc> {
    const doc = await ctx.store.step(envelopeHash, { withData: true });
    if (!doc) throw ApplicationFailure.nonRetryable(`step ${envelopeHash} is not in this node's store`, 'not_found');
    return doc;
  }

  /**
   * Sends to every peer named, side by side, after `first` (if given); fails naming each peer
   * that did not take it, once the others have. Heartbeats name the peers that have, so the
   * activity's retry (which starts from the last heartbeat) sends only to the others: one just
   * before failing (the SDK delivers it ahead of the failure), and one every few seconds while
   * the batch fills and peers answer, so a crashed leader's work is taken up within the heartbeat
   * timeout (its retry may send again to a peer that took it since the last beat: a repeat
   * delivery changes nothing there).
   */
  async function toEach(peers: string[], send: (to: string) => Promise<void>, first?: () => Promise<void>): Promise<void> {
    const activity = Context.current();
    const details = activity.info.heartbeatDetails as unknown;
    const taken = new Set<string>(Array.isArray(details) ? (details as string[]) : []);
    const beat = setInterval(() => activity.heartbeat([...taken]), PUBLISH_HEARTBEAT_MS);
    try {
      await first?.();
      const outcomes = await Promise.allSettled(
        peers.filter((to) => !taken.has(to)).map(async (to) => {
          await send(to);
          taken.add(to);
        }),
      );
      const failed = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []));
      if (failed.length > 0) activity.heartbeat([...taken]);
      if (failed.length === 1) throw failed[0]!;
      if (failed.length > 1) throw new AggregateError(failed, failed.map((e) => e.message).join('; '));
    } finally {
      clearInterval(beat);
    }
  }

  async function deliver(doc: InstanceDoc, step: StepDoc, to: string): Promise<void> {
    const startedAt = Date.now();
    const signed = envelopeFor(ctx, doc.header, step, to);
    await ctx.dx.sendEnvelope(ctx.network.parties[to]!, signed, ctx.party);
    ctx.log.info({ instanceId: doc._id, step: step.step, envelopeHash: step.envelopeHash, to, withData: signed.data !== undefined, ms: Date.now() - startedAt }, 'step delivered');
  }

  async function pin(doc: InstanceDoc, step: StepDoc): Promise<PinReceipt & { transactionHash: string }> {
    const startedAt = Date.now();
    const context = contextOf(doc.secret, step.author, step.nonce);
    let receipt: PinReceipt & { transactionHash: string };
    try {
      receipt = await ctx.batcher.pin({ envelopeHash: step.envelopeHash, instanceId: doc._id, tag: tagOf(context), leaf: leafOf(context, step.envelopeHash) }, 25_000);
    } catch (error) {
      if (!(error instanceof PinFailedError)) throw error;
      // Never pinned, so never delivered: only this node knows the step; it ends here, rejected.
      await ctx.store.setAsideStep(doc._id, step.envelopeHash, error.reason);
      throw ApplicationFailure.nonRetryable(error.message, PIN_FAILED);
    }
    await ctx.store.saveReceipt(doc, step, { root: receipt.root, index: receipt.index, count: receipt.count, proof: receipt.proof });
    // Not awaited: the workflow need not wait for this node's signalling pass (it logs its own errors).
    void pins.flush();
    ctx.log.info({ instanceId: doc._id, step: step.step, envelopeHash: step.envelopeHash, transactionHash: receipt.transactionHash, index: receipt.index, ms: Date.now() - startedAt }, 'step pinned');
    return receipt;
  }

  /**
   * Signs and stores a proposal, queued after the workflow task that made it is recorded: only
   * then may the step take its number (a task that failed, or an Update lost with it, leaves
   * nothing here). When that task built the envelope (`envelopeHash`), the one built here must be
   * it. ethers signs deterministically, so a retry stores the very same step.
   */
  async function storeProposal(doc: InstanceDoc, proposal: Proposal, envelopeHash?: string): Promise<StepDoc> {
    const startedAt = Date.now();
    const signed = sealEnvelope(ctx.wallet, proposalFields(proposal));
    if (envelopeHash !== undefined && signed.hash !== envelopeHash) {
      throw ApplicationFailure.nonRetryable(`the proposal builds envelope ${signed.hash}, not the workflow's ${envelopeHash}`, 'bad_proposal');
    }
    const signedAt = Date.now();
    const step = await ctx.store.savePendingStep(doc, signed, true);
    // Durations (ms) feed the benchmark's per-hop profile (bench/profile.ts).
    ctx.log.info({ instanceId: doc._id, step: step.step, envelopeHash: signed.hash, ms: Date.now() - startedAt, signMs: signedAt - startedAt }, 'step stored');
    return step;
  }

  /** The envelope's fields of a proposal by this party. */
  function proposalFields(p: Proposal): ProposalFields {
    return { instanceId: p.instanceId, definitionHash: p.definitionHash, step: p.step, author: ctx.party, nonce: p.nonce, proposedAt: p.proposedAt, salt: p.salt, input: p.input, output: p.output };
  }

  return {
    /** One participant (runs before `inviteParticipants`, and of their instances still). */
    async inviteParticipant(req: { instanceId: string; to: string }): Promise<void> {
      const doc = await instance(req.instanceId);
      await ctx.dx.sendInvitation(ctx.network.parties[req.to]!, invitationOf(doc), ctx.party);
    },

    /** Every participant named, side by side; a retry invites only those that have not accepted (see toEach). */
    async inviteParticipants(req: { instanceId: string; to: string[] }): Promise<void> {
      const doc = await instance(req.instanceId);
      await toEach(req.to, (to) => ctx.dx.sendInvitation(ctx.network.parties[to]!, invitationOf(doc), ctx.party));
    },

    /**
     * Signs and stores a proposal with a salt derived from the key: for a proposal without a salt
     * of its own (an Update sent from the Temporal UI), and in runs from before the workflow built
     * envelopes itself.
     */
    async sealStep(req: SealRequest): Promise<{ envelopeHash: string }> {
      const doc = await instance(req.instanceId);
      const step = await storeProposal(doc, { ...req, definitionHash: doc.header.definitionHash, salt: stepSalt(ctx.wallet, req.instanceId, req.nonce) });
      return { envelopeHash: step.envelopeHash };
    },

    /** One peer (runs before `publishStep`, and of their instances still). */
    async deliverStep(req: { instanceId: string; envelopeHash: string; to: string }): Promise<void> {
      const doc = await instance(req.instanceId);
      await deliver(doc, await storedStep(req.envelopeHash), req.to);
    },

    /** Hands the step to the durable batcher; returns once its batch is on its way to the chain. */
    async pinStep(req: { instanceId: string; envelopeHash: string }): Promise<PinReceipt & { transactionHash: string }> {
      const doc = await instance(req.instanceId);
      return pin(doc, await storedStep(req.envelopeHash));
    },

    /**
     * Signs and stores the step when it comes as a proposal, pins it, then delivers it (with its
     * receipt) to every peer named, side by side: one activity where there were one for the pin
     * and one per peer. It heartbeats the peers that have taken it, so a retry (a peer was down)
     * pins nothing again and sends only to the others.
     */
    async publishStep(req: PublishRequest): Promise<void> {
      const doc = await instance(req.instanceId);
      let step = req.proposal ? await storeProposal(doc, req.proposal, req.envelopeHash) : await storedStep(req.envelopeHash);
      await toEach(
        req.to,
        (to) => deliver(doc, step, to),
        async () => {
          // The receipt (the step's place in its batch) travels with the envelope.
          const { root, index, count, proof } = await pin(doc, step);
          step = { ...step, receipt: { root, index, count, proof } };
        },
      );
    },

    async recordDecision(decision: Decision): Promise<void> {
      const startedAt = Date.now();
      await ctx.store.recordDecision(decision);
      await syncHumanTasks(ctx.store, ctx.definitions, ctx.party, decision.instanceId);
      ctx.log.info({ instanceId: decision.instanceId, envelopeHash: decision.envelopeHash, status: decision.status, seq: decision.seq, ms: Date.now() - startedAt }, 'step decided');
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

/** The activities the workflow also runs as local activities, in its own workflow task (see src/node/workers.ts). */
export type LocalActivities = Pick<Activities, 'recordDecision'>;

/** The local activities, each run through `runHere`, which refuses them in a process that does not lead its party. */
export function localActivities(activities: Activities, runHere: <T>(work: () => Promise<T>) => Promise<T>): LocalActivities {
  return {
    recordDecision: (decision) => runHere(() => activities.recordDecision(decision)),
  };
}

/** The invitation as stored, to send on to a participant (with its `sinceBlock` when it has one). */
export function invitationOf(doc: InstanceDoc): Invitation {
  return { header: doc.header, secret: doc.secret, signature: doc.invitationSignature, ...(doc.sinceBlock !== undefined ? { sinceBlock: doc.sinceBlock } : {}) };
}
