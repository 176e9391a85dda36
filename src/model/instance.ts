/** A process instance: one run of a definition with its roles bound to parties. */
export interface InstanceHeader {
  id: string;
  definitionId: string;
  definitionHash: string;
  /** role name -> party name */
  roles: Record<string, string>;
  /** Party that started the instance. */
  createdBy: string;
  createdAt: string;
}

/** The invitation a starting party sends privately to every other participant. */
export interface Invitation {
  header: InstanceHeader;
  /** 0x-prefixed 32-byte per-instance secret that masks this instance's pins on chain. */
  secret: string;
  /** Creator's EIP-191 signature over keccak256(canonical(header)). */
  signature: string;
  /**
   * A block no pin of the instance can precede: the creator's chain view when it created the
   * instance. A participant that stores the invitation reads the chain again from there for the
   * instance's tags (src/chain/listener.ts `lookBack`). Not signed: a creator who misstates it
   * only keeps its own instance's steps from some participants. Absent from older nodes'
   * invitations: then the Sequencer's deploy block.
   */
  sinceBlock?: number;
}

export type InstanceStatus = 'active' | 'ended';

export function participantsOf(header: InstanceHeader): string[] {
  return [...new Set(Object.values(header.roles))].sort();
}

export function rolesOf(header: InstanceHeader, party: string): string[] {
  return Object.entries(header.roles)
    .filter(([, p]) => p === party)
    .map(([role]) => role)
    .sort();
}
