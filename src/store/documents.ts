/** The shapes this node keeps in its own MongoDB database (never shared with other parties). */
import type { Envelope, StepData } from '../model/envelope';
import type { InstanceHeader } from '../model/instance';
import type { ChainPosition, ObservedTag, PinReceipt } from '../model/pin';
import type { StepRecord } from '../model/step';

export interface InstanceDoc {
  _id: string;
  header: InstanceHeader;
  /** Per-instance secret that masks pins. Never leaves the participants. */
  secret: string;
  invitationSignature: string;
  /** The invitation's `sinceBlock` (src/model/instance.ts), sent on with it. */
  sinceBlock?: number;
  /** The parties bound to its roles, for queries by party. */
  parties: string[];
  status: 'active' | 'ended';
  outcome?: string;
  createdAt: Date;
  updatedAt: Date;
  /**
   * On FerretDB, the envelope hashes of the instance's stored steps, each added before its step
   * is stored, so its history is read by `_id` (store.ts, `history`). Absent on MongoDB, and on
   * instances stored before it was kept: their history is read by the `instanceId` index.
   */
  stepIds?: string[];
  /**
   * The steps this party may take now by the decided history (names and order: no guards, no
   * deadlines), set when the instance is stored and by each decision that changes them, so that
   * `GET /tasks` passes over an instance that waits on others without reading its history. Absent
   * on instances stored before it was kept, until their next such decision: `GET /tasks` derives
   * theirs from the history.
   */
  openSteps?: string[];
}

export interface StepDoc extends StepRecord {
  _id: string;
  envelope: Envelope;
  /**
   * Only where this party may see the step's data. Stored here when small; larger data is stored
   * once in `step_data` (`dataApart`), so that the step's later writes (its receipt, its decision)
   * do not rewrite it: FerretDB writes a whole document back for every update. The store's reads
   * that return data (`history`, `withData`) fill it in. Steps stored before this also carry copies
   * of the data's input and output at the top level, which nothing reads.
   */
  data?: StepData;
  /** The step's data is in `step_data` under the same `_id`. */
  dataApart?: true;
  /** Receipt of the step's place in its batch (author's node: from the batcher; others: from the author). */
  receipt?: PinReceipt;
  updatedAt: Date;
}

/** A step's data, when too large to keep in its step document (StepDoc.dataApart). Written once, never updated. */
export interface StepDataDoc {
  _id: string;
  data: StepData;
}

/** A tag this node expects on chain: the author's n-th step in an instance (a sliding window). */
export interface TagDoc {
  _id: string;
  instanceId: string;
  author: string;
  nonce: number;
}

/**
 * One author's n-th step in an instance, as this node knows it: where its tag was first
 * sequenced (`position`), which envelope fills it and the receipt proving the envelope is the
 * one the batch committed to. Data and tag may arrive in either order.
 */
export interface SlotDoc {
  _id: string;
  instanceId: string;
  author: string;
  nonce: number;
  tag: string;
  position?: ObservedTag;
  envelopeHash?: string;
  receipt?: PinReceipt;
  /** The envelope's leaf is proven to sit at `position` in the batch's Merkle root. */
  proven: boolean;
  /** What the instance workflow has been told: nothing, that the slot is final without data, or with it. */
  signaled: 'none' | 'bare' | 'full';
}

/**
 * A slot sequenced on chain that is not settled yet: not final, or final but the workflow not yet
 * told with its data. A small working set, so the listener's and signaller's passes read it
 * whole instead of scanning every slot (FerretDB answers only a bare `{_id: <string>}` filter from an index).
 * Final is not written here: a sequencing is final once its block is at or below the checkpoint's
 * `confirmedBlock` (entries written before carry a `confirmed` flag, unread).
 */
export interface UnsettledDoc {
  _id: string;
  instanceId: string;
  blockNumber: number;
  blockHash: string;
}

/** A step waiting to be pinned (the batcher's durable queue). */
export interface PinQueueDoc {
  _id: string;
  instanceId: string;
  tag: string;
  leaf: string;
  queuedAt: Date;
  batch?: string;
  index?: number;
  /** Why this step can never be pinned (a batch holding it alone is refused): set aside, not retried. */
  failed?: string;
}

export interface BatchDoc {
  _id: string;
  root: string;
  leaves: string[];
  tags: string[];
  envelopeHashes: string[];
  nonce: number;
  /** Every signed version of the transaction (re-priced replacements appended). */
  rawTxs: string[];
  txHashes: string[];
  maxFeePerGas: string;
  maxPriorityFeePerGas: string;
  gasLimit: string;
  status: 'signed' | 'sent' | 'mined' | 'final';
  minedTx?: string;
  minedBlock?: number;
  reason?: string;
  /** Why the last broadcast was refused (cleared once one is taken): the same transaction is sent again, not re-priced. */
  refused?: string;
  createdAt: Date;
  lastSentAt: Date;
}

export interface CheckpointDoc {
  _id: 'chain';
  /** Highest block whose logs have been read. */
  scannedBlock: number;
  /** Highest block treated as final (scannedHead - confirmations + 1). */
  confirmedBlock: number;
  /** Its hash: if it ever changes, the chain reorganised deeper than the confirmation depth. */
  confirmedBlockHash?: string;
  updatedAt: Date;
}

export type { ChainPosition };
