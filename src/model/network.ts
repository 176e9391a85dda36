/**
 * The network file: the public facts every node of a network shares (who the parties are,
 * where to reach them, which chain and contract sequence their pins). The local stack writes
 * one; production deployments write their own. Private keys are not part of it, except the
 * dev keys the local stack generates for its own throwaway chain.
 */
export interface PartyEndpoint {
  name: string;
  /** EIP-55 chain address that signs this party's envelopes and pin transactions. */
  address: string;
  /** Temporal namespace of this party's node. */
  namespace: string;
  /** MongoDB database of this party's node. */
  database: string;
  /** Base URL of the party's REST API, e.g. http://127.0.0.1:4001 */
  apiUrl: string;
  /** Base URL of the party's data-exchange endpoint, e.g. http://127.0.0.1:5001 (https:// when it serves TLS) */
  dxUrl: string;
}

export interface NetworkFile {
  chain: {
    rpcUrl: string;
    /**
     * The same chain node's WebSocket JSON-RPC endpoint, if it has one: nodes subscribe to new
     * heads there and read a block as soon as it exists (they poll `rpcUrl` regardless).
     */
    wsUrl?: string;
    chainId: number;
    /** Address of the deployed Sequencer contract. */
    sequencer: string;
    /** Block in which the Sequencer was deployed: listeners start there. */
    deployBlock: number;
    /** Blocks a pin must be buried under before its step is final. */
    confirmations: number;
  };
  temporal: { address: string; uiUrl?: string };
  mongodb: { uri: string };
  parties: Record<string, PartyEndpoint>;
  /** Private keys for the parties, written only by the local stack for its dev chain. */
  devKeys?: Record<string, string>;
  /**
   * One API key per party, written only by the local stack (random per stack): a node with no
   * API keys configured accepts its party's key, for any role, so the demo and tests work.
   */
  devApiKeys?: Record<string, string>;
  /**
   * Written only by a local stack started with TLS: the files of its throwaway CA and of each
   * party's certificate, which a node uses when LOCKSTEP_DX_TLS_* are not set.
   */
  devTls?: { ca: string; requireClientCert: boolean; parties: Record<string, { cert: string; key: string }> };
}
