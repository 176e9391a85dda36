/**
 * A step envelope: what a party proposes. Its hash is what gets pinned (masked) on chain;
 * its signature binds it to the author's key.
 */
export interface Envelope {
  v: 1;
  instanceId: string;
  definitionHash: string;
  step: string;
  author: string;
  input: unknown;
  /** Unique per proposal, so that two identical proposals still differ in hash. */
  nonce: string;
  proposedAt: string;
}

export interface SignedEnvelope {
  envelope: Envelope;
  /** 0x-prefixed keccak256(canonical(envelope)). */
  hash: string;
  /** Author's EIP-191 signature over the hash bytes. */
  signature: string;
}
