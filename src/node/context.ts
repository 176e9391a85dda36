/** Everything a party node's activities, API and data-exchange endpoint share. One per process. */
import type { Wallet } from 'ethers';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { NetworkFile } from '../model/network';
import type { DefinitionRegistry } from '../definitions/registry';
import type { Store } from '../store/store';
import type { SequencerClient } from '../chain/sequencer';
import type { Batcher } from '../chain/batcher';
import type { NodeConfig } from '../config';
import type { DxClient } from '../exchange/client';

export interface NodeContext {
  party: string;
  config: NodeConfig;
  network: NetworkFile;
  wallet: Wallet;
  store: Store;
  definitions: DefinitionRegistry;
  sequencer: SequencerClient;
  batcher: Batcher;
  temporal: Client;
  /** Sends invitations and envelopes to peers (over TLS when configured). */
  dx: DxClient;
  log: Logger;
}
