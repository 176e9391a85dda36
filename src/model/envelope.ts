import type { PinReceipt } from './pin';

/**
 * A step envelope: what a party proposes. The envelope itself carries no business data, only
 * the hash of it (`inputHash`), so that participants outside the step's visibility can still
 * verify that the step happened and apply the process rules. Its hash is what gets pinned
 * (masked) on chain; its signature binds it to the author's key.
 */
export interface Envelope {
  v: 1;
  instanceId: string;
  definitionHash: string;
  step: string;
  author: string;
  /** The author's step number in this instance (1, 2, …): locates the step's tag on chain. */
  nonce: number;
  proposedAt: string;
  /** keccak256(canonical(StepData)): covers the step's input and output (the name predates outputs). */
  inputHash: string;
}

/** The private part of a step: sent only to the roles allowed to see it. */
export interface StepData {
  /** Random salt, so that a guessable input cannot be confirmed from its hash. */
  salt: string;
  /** What the actor submitted to take the step. */
  input: unknown;
  /** The result the actor produced (e.g. a decision); present only when the step declares an output schema. */
  output?: unknown;
}

/** A step's data as the process rules read it: its input, and its output where it has one; not the salt. */
export function ruleData(data: StepData): { input: unknown; output?: unknown } {
  return { input: data.input, ...(data.output !== undefined ? { output: data.output } : {}) };
}

export interface SignedEnvelope {
  envelope: Envelope;
  /** 0x-prefixed keccak256(canonical(envelope)). */
  hash: string;
  /** Author's EIP-191 signature over the hash bytes. */
  signature: string;
  /** Present only for recipients entitled to the step's data. */
  data?: StepData;
  /** Where the step sits in its batch: lets the recipient prove the envelope against the chain. */
  receipt?: PinReceipt;
}
