/** Where a pin was sequenced on chain: its total order is (blockNumber, logIndex, index). */
export interface ChainPosition {
  blockNumber: number;
  blockHash: string;
  /** Block timestamp (seconds): the chain time that deadlines are measured in. */
  timestamp: number;
  transactionHash: string;
  logIndex: number;
  /** Index of the pin inside its batch. */
  index: number;
}

/** A step's tag as observed in a `BatchPinned` event. */
export interface ObservedTag extends ChainPosition {
  /** 0x-prefixed 8-byte tag. */
  tag: string;
  /** Address that sent the batch. */
  author: string;
  /** Merkle root of the batch. */
  root: string;
  /** Number of tags in the batch. */
  count: number;
}

/**
 * What an author tells the participants about where its step sits in a batch: enough to check
 * the step's leaf against the root on chain, without seeing any other step of the batch.
 */
export interface PinReceipt {
  root: string;
  index: number;
  count: number;
  proof: string[];
}

/** Just what orders pins: (block, log index, index in batch). */
export type PinOrder = Pick<ChainPosition, 'blockNumber' | 'logIndex' | 'index'>;

export function comparePositions(a: PinOrder, b: PinOrder): number {
  return a.blockNumber - b.blockNumber || a.logIndex - b.logIndex || a.index - b.index;
}
