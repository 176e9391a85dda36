/**
 * The batch Merkle tree: one leaf per step, in tag order. Leaves and inner nodes are hashed with
 * different prefixes, so a leaf can never pass for a node. A node without a sibling is carried
 * up unchanged. A proof binds the leaf to its index, so one batch position has exactly one step.
 */
import { concat, keccak256 } from 'ethers';

const LEAF = '0x00';
const NODE = '0x01';

/** keccak256(0x00 ‖ context ‖ envelopeHash): only participants (who know the context) can compute it. */
export function leafOf(context: string, envelopeHash: string): string {
  return keccak256(concat([LEAF, context, envelopeHash]));
}

function parent(left: string, right: string): string {
  return keccak256(concat([NODE, left, right]));
}

function levels(leaves: string[]): string[][] {
  if (leaves.length === 0) throw new Error('a Merkle tree needs at least one leaf');
  const all = [leaves];
  let level = leaves;
  while (level.length > 1) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? parent(level[i]!, level[i + 1]!) : level[i]!);
    all.push(next);
    level = next;
  }
  return all;
}

export function merkleRoot(leaves: string[]): string {
  const all = levels(leaves);
  return all[all.length - 1]![0]!;
}

/** Sibling hashes from the leaf up; levels where the node had no sibling contribute nothing. */
export function merkleProof(leaves: string[], index: number): string[] {
  const proof: string[] = [];
  let i = index;
  for (const level of levels(leaves).slice(0, -1)) {
    const sibling = i % 2 === 0 ? i + 1 : i - 1;
    if (sibling < level.length) proof.push(level[sibling]!);
    i = Math.floor(i / 2);
  }
  return proof;
}

export function verifyMerkleProof(leaf: string, index: number, count: number, proof: string[], root: string): boolean {
  if (!Number.isInteger(index) || index < 0 || index >= count) return false;
  let hash = leaf;
  let i = index;
  let width = count;
  let used = 0;
  while (width > 1) {
    const sibling = i % 2 === 0 ? i + 1 : i - 1;
    if (sibling < width) {
      const next = proof[used++];
      if (next === undefined) return false;
      hash = i % 2 === 0 ? parent(hash, next) : parent(next, hash);
    }
    i = Math.floor(i / 2);
    width = Math.ceil(width / 2);
  }
  return used === proof.length && hash.toLowerCase() === root.toLowerCase();
}
