/**
 * A proposal's envelope, unsigned: pure (hashing only), so the instance workflow builds it inside
 * the Update's task, and the publish activity rebuilds the same one to sign and store.
 */
import type { Envelope, StepData } from '../model/envelope';
import { hashJson } from './canonical';

/** What a proposal is made of: the envelope's own fields (less what building derives) and its data. */
export type ProposalFields = Omit<Envelope, 'v' | 'inputHash'> & StepData;

export function buildEnvelope(p: ProposalFields): { envelope: Envelope; hash: string; data: StepData } {
  // No `output` key when there is none: the data hash of a step without output stays as it was.
  const data: StepData = { salt: p.salt, input: p.input, ...(p.output !== undefined ? { output: p.output } : {}) };
  const envelope: Envelope = {
    v: 1,
    instanceId: p.instanceId,
    definitionHash: p.definitionHash,
    step: p.step,
    author: p.author,
    nonce: p.nonce,
    proposedAt: p.proposedAt,
    inputHash: hashJson(data),
  };
  return { envelope, hash: hashJson(envelope), data };
}
