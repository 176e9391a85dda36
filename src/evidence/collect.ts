/**
 * Building an evidence bundle from a node's own records: the instance's decided steps in chain
 * order, with envelopes, signatures, receipts, the data this party may read, and where each pin
 * sits on chain. Pending steps are left out: they are not part of the history yet.
 */
import { LockstepError } from '../model/errors';
import { EVIDENCE_FORMAT, type EvidenceBundle, type EvidenceStep } from '../model/evidence';
import { participantsOf } from '../model/instance';
import type { NodeContext } from '../node/context';
import type { InstanceDoc, StepDoc } from '../store/documents';
import { contextOf, tagOf } from '../chain/pins';

type EvidenceSources = Pick<NodeContext, 'party' | 'network' | 'store' | 'definitions'>;

export async function collectEvidence(ctx: EvidenceSources, instanceId: string): Promise<EvidenceBundle> {
  const instance = await ctx.store.instance(instanceId);
  if (!instance) throw new LockstepError('not_found', `unknown instance ${instanceId}`, [{ field: 'instanceId', message: 'unknown' }]);
  const loaded = ctx.definitions.byAgreedHash(instance.header.definitionHash, `instance ${instanceId}`);
  const decided = (await ctx.store.history(instanceId, instance)).filter((s) => s.status !== 'pending' && s.seq !== undefined);
  const { chain } = ctx.network;
  return {
    format: EVIDENCE_FORMAT,
    exportedBy: ctx.party,
    exportedAt: new Date().toISOString(),
    chain: { chainId: chain.chainId, sequencer: chain.sequencer, deployBlock: chain.deployBlock, confirmations: chain.confirmations },
    parties: Object.fromEntries(participantsOf(instance.header).map((p) => [p, { address: ctx.network.parties[p]?.address ?? '' }])),
    definition: { hash: loaded.hash, document: loaded.definition },
    instance: { header: instance.header, signature: instance.invitationSignature, secret: instance.secret },
    steps: decided.map((s) => evidenceStep(ctx, instance, s)),
  };
}

function evidenceStep(ctx: EvidenceSources, instance: InstanceDoc, s: StepDoc): EvidenceStep {
  if (!s.chain || !s.receipt) {
    // A decided step always has both; a missing one means the store was damaged.
    throw new LockstepError('precondition_failed', `step ${s.envelopeHash} of instance ${instance._id} is decided but has no ${s.chain ? 'receipt' : 'chain position'}`);
  }
  return {
    seq: s.seq!,
    status: s.status as EvidenceStep['status'],
    ...(s.rejection ? { rejection: s.rejection } : {}),
    envelope: s.envelope,
    hash: s.envelopeHash,
    signature: s.signature,
    ...(s.data ? { data: s.data } : {}),
    receipt: s.receipt,
    pin: {
      chainId: ctx.network.chain.chainId,
      contract: ctx.network.chain.sequencer,
      blockNumber: s.chain.blockNumber,
      blockHash: s.chain.blockHash,
      transactionHash: s.chain.transactionHash,
      logIndex: s.chain.logIndex,
      index: s.chain.index,
      tag: tagOf(contextOf(instance.secret, s.author, s.nonce)),
    },
  };
}
