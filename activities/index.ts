/**
 * The instance workflow's activities: every side effect of a step (signing, private transfer,
 * pinning, persistence). Each is idempotent, because Temporal retries it until it succeeds.
 */
import { keccak256 } from 'ethers';
import { ApplicationFailure } from '@temporalio/activity';
import type { NodeContext } from '../src/node/context';
import { sealEnvelope, signHash } from '../src/envelope/seal';
import { contextOf, tagOf } from '../src/chain/pins';
import { leafOf } from '../src/chain/merkle';
import type { PinReceipt } from '../src/model/pin';
import { envelopeFor } from '../src/exchange/resend';
import { PinFailedError } from '../src/chain/batcher';
import type { Decision } from '../src/store/store';
import type { InstanceDoc, StepDoc } from '../src/store/documents';
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

/** The failure type of a step that can never be pinned: the workflow stops waiting for it. */
export const PIN_FAILED = 'pin_failed';

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
    const doc = await ctx.store.step(envelopeHash);
    if (!doc) throw ApplicationFailure.nonRetryable(`step ${envelopeHash} is not in this node's store`, 'not_found');
    return doc;
  }

  return {
    async inviteParticipant(req: { instanceId: string; to: string }): Promise<void> {
      const doc = await instance(req.instanceId);
      await ctx.dx.sendInvitation(ctx.network.parties[req.to]!, { header: doc.header, secret: doc.secret, signature: doc.invitationSignature }, ctx.party);
    },

    async sealStep(req: SealRequest): Promise<{ envelopeHash: string }> {
      const startedAt = Date.now();
      const doc = await instance(req.instanceId);
      // The salt is derived from our key and the nonce: unguessable to others, stable across retries.
      const salt = keccak256(signHash(ctx.wallet, keccak256(Buffer.from(`salt:${req.instanceId}:${req.nonce}`))));
      const signed = sealEnvelope(ctx.wallet, {
        instanceId: req.instanceId,
        definitionHash: doc.header.definitionHash,
        step: req.step,
        author: ctx.party,
        nonce: req.nonce,
        proposedAt: req.proposedAt,
        salt,
        input: req.input,
        output: req.output,
      });
      const signedAt = Date.now();
      await ctx.store.savePendingStep(doc, signed, true);
      // Durations (ms) feed the benchmark's per-hop profile (bench/profile.ts).
      ctx.log.info({ instanceId: req.instanceId, step: req.step, envelopeHash: signed.hash, ms: Date.now() - startedAt, signMs: signedAt - startedAt }, 'step sealed');
      return { envelopeHash: signed.hash };
    },

    async deliverStep(req: { instanceId: string; envelopeHash: string; to: string }): Promise<void> {
      const startedAt = Date.now();
      const doc = await instance(req.instanceId);
      const step = await storedStep(req.envelopeHash);
      const signed = envelopeFor(ctx, doc.header, step, req.to);
      await ctx.dx.sendEnvelope(ctx.network.parties[req.to]!, signed, ctx.party);
      ctx.log.info({ instanceId: req.instanceId, step: step.step, envelopeHash: req.envelopeHash, to: req.to, withData: signed.data !== undefined, ms: Date.now() - startedAt }, 'step delivered');
    },

    /** Hands the step to the durable batcher; returns once its batch is on its way to the chain. */
    async pinStep(req: { instanceId: string; envelopeHash: string }): Promise<PinReceipt & { transactionHash: string }> {
      const startedAt = Date.now();
      const doc = await instance(req.instanceId);
      const step = await storedStep(req.envelopeHash);
      const context = contextOf(doc.secret, step.author, step.nonce);
      let receipt: PinReceipt & { transactionHash: string };
      try {
        receipt = await ctx.batcher.pin({ envelopeHash: step.envelopeHash, instanceId: req.instanceId, tag: tagOf(context), leaf: leafOf(context, step.envelopeHash) }, 25_000);
      } catch (error) {
        if (!(error instanceof PinFailedError)) throw error;
        // Never pinned, so never delivered: only this node knows the step; it ends here, rejected.
        await ctx.store.setAsideStep(req.instanceId, step.envelopeHash, error.reason);
        throw ApplicationFailure.nonRetryable(error.message, PIN_FAILED);
      }
      await ctx.store.saveReceipt(doc, step, { root: receipt.root, index: receipt.index, count: receipt.count, proof: receipt.proof });
      // Not awaited: the workflow need not wait for this node's signalling pass (it logs its own errors).
      void pins.flush();
      ctx.log.info({ instanceId: req.instanceId, step: step.step, envelopeHash: step.envelopeHash, transactionHash: receipt.transactionHash, index: receipt.index, ms: Date.now() - startedAt }, 'step pinned');
      return receipt;
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
