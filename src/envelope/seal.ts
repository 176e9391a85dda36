/** Building and signing envelopes and invitations: the only place a party's key signs data. */
import { getBytes, hexlify, randomBytes, type BaseWallet } from 'ethers';
import type { Envelope, SignedEnvelope, StepData } from '../model/envelope';
import type { InstanceHeader, Invitation } from '../model/instance';
import { hashJson } from './canonical';

/** What a proposal is made of: the envelope's own fields (less what sealing derives) and its data. */
export type ProposalFields = Omit<Envelope, 'v' | 'inputHash'> & StepData;

/**
 * Signs an EIP-191 personal message over the 32 hash bytes, so any standard tool can verify it.
 * ethers signs deterministically (RFC 6979): a retried seal yields the very same envelope.
 */
export function signHash(wallet: BaseWallet, hash: string): string {
  return wallet.signMessageSync(getBytes(hash));
}

export function sealEnvelope(wallet: BaseWallet, p: ProposalFields): SignedEnvelope {
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
  const hash = hashJson(envelope);
  return { envelope, hash, signature: signHash(wallet, hash), data };
}

export function sealInvitation(wallet: BaseWallet, header: InstanceHeader, secret: string): Invitation {
  return { header, secret, signature: signHash(wallet, hashJson(header)) };
}

export function newSecret(): string {
  return hexlify(randomBytes(32));
}
