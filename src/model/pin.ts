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

/** A pin as observed in a `BatchPinned` event. */
export interface ObservedPin extends ChainPosition {
  pin: string;
  author: string;
  batchHash: string;
}

export function comparePositions(a: ChainPosition, b: ChainPosition): number {
  return a.blockNumber - b.blockNumber || a.logIndex - b.logIndex || a.index - b.index;
}
