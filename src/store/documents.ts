/** The shapes this node keeps in its own MongoDB database (never shared with other parties). */
import type { Envelope, StepData } from '../model/envelope';
import type { InstanceHeader } from '../model/instance';
import type { ChainPosition, ObservedPin } from '../model/pin';
import type { StepRecord } from '../model/step';

export interface InstanceDoc {
  _id: string;
  header: InstanceHeader;
  /** Per-instance secret that masks pins. Never leaves the participants. */
  secret: string;
  invitationSignature: string;
  /** The parties bound to its roles, for queries by party. */
  parties: string[];
  status: 'active' | 'ended';
  outcome?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface StepDoc extends StepRecord {
  _id: string;
  envelope: Envelope;
  /** Only where this party may see the step's data. */
  data?: StepData;
  /** The masked pin this step is sequenced under. */
  pin: string;
  updatedAt: Date;
}

/**
 * A pin, keyed by its value: written when this node learns the envelope (`envelopeHash`) and/or
 * when the listener sees it on chain (`position`). Data and pin may arrive in either order.
 */
export interface PinDoc {
  _id: string;
  instanceId?: string;
  envelopeHash?: string;
  /** First sequencing of this pin; a repeat later in the chain is ignored. */
  position?: ObservedPin;
  confirmed: boolean;
  /** The instance workflow has been told the pin is final. */
  signaled: boolean;
}

export interface CheckpointDoc {
  _id: 'chain';
  /** Highest block whose logs have been read. */
  scannedBlock: number;
  /** Highest block treated as final (scannedHead - confirmations + 1). */
  confirmedBlock: number;
  updatedAt: Date;
}

export type { ChainPosition };
