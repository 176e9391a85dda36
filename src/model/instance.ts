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
