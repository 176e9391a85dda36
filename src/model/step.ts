import type { ChainPosition } from './pin';

export type StepStatus = 'pending' | 'confirmed' | 'rejected';

/** One step of an instance's history, as every participant records it. */
export interface StepRecord {
  envelopeHash: string;
  instanceId: string;
  step: string;
  author: string;
  /** The author's step number in the instance. */
  nonce: number;
  status: StepStatus;
  /** Position in the instance's decided history (0-based); absent while pending. */
  seq?: number;
  chain?: ChainPosition;
  signature: string;
  proposedAt: string;
  decidedAt?: string;
  /** Why a step was rejected, e.g. the envelope hash of the step that won a conflict. */
  rejection?: { code: string; message: string; winner?: string };
}
