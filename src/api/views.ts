/** The API's representations of stored documents: one view per concept, used by every route. */
import type { InstanceDoc, StepDoc } from '../store/documents';

export function instanceView(doc: InstanceDoc) {
  return { ...doc.header, status: doc.status, outcome: doc.outcome ?? null };
}

/** `doc` with its data filled in where this party may see it (Store.history, Store.withData). */
export function stepView(doc: StepDoc, head: number) {
  return {
    seq: doc.seq ?? null,
    step: doc.step,
    author: doc.author,
    nonce: doc.nonce,
    status: doc.status,
    envelopeHash: doc.envelopeHash,
    signature: doc.signature,
    proposedAt: doc.proposedAt,
    decidedAt: doc.decidedAt ?? null,
    chain: doc.chain ? { ...doc.chain, confirmations: Math.max(0, head - doc.chain.blockNumber + 1) } : null,
    input: doc.data?.input ?? null,
    output: doc.data?.output ?? null,
    visible: doc.data !== undefined,
    rejection: doc.rejection ?? null,
  };
}

/** A step as the REST API returns it: the one shape apps, the CLI, the demo and tests read. */
export type StepView = ReturnType<typeof stepView>;
