/** Building and signing envelopes and invitations: the only place a party's key signs data. */
import { getBytes, hexlify, keccak256, randomBytes, type BaseWallet } from 'ethers';
import type { SignedEnvelope } from '../model/envelope';
import type { InstanceHeader, Invitation } from '../model/instance';
import { hashJson } from './canonical';
import { buildEnvelope, type ProposalFields } from './build';

/**
 * Signs an EIP-191 personal message over the 32 hash bytes, so any standard tool can verify it.
 * ethers signs deterministically (RFC 6979): a retried seal yields the very same envelope.
 */
export function signHash(wallet: BaseWallet, hash: string): string {
  return wallet.signMessageSync(getBytes(hash));
}

export function sealEnvelope(wallet: BaseWallet, p: ProposalFields): SignedEnvelope {
  const built = buildEnvelope(p);
  return { ...built, signature: signHash(wallet, built.hash) };
}

/** A step's salt, derived from the author's key and the step number: unguessable to others, the same at every attempt. */
export function stepSalt(wallet: BaseWallet, instanceId: string, nonce: number): string {
  return keccak256(signHash(wallet, keccak256(Buffer.from(`salt:${instanceId}:${nonce}`))));
}

export function sealInvitation(wallet: BaseWallet, header: InstanceHeader, secret: string): Invitation {
  return { header, secret, signature: signHash(wallet, hashJson(header)) };
}

export function newSecret(): string {
  return hexlify(randomBytes(32));
}

/** A proposal's salt: 32 random bytes, so that a guessable input cannot be confirmed from its hash. */
export function newSalt(): string {
  return hexlify(randomBytes(32));
}
