/**
 * Pin masking. What goes on chain for a step is keccak256(instanceSecret ‖ envelopeHash): only the
 * instance's participants, who hold the secret, can link a pin to its instance or step; to anyone
 * else two pins of the same instance look unrelated.
 */
import { concat, keccak256 } from 'ethers';

export function maskPin(instanceSecret: string, envelopeHash: string): string {
  return keccak256(concat([instanceSecret, envelopeHash]));
}
