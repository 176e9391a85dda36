/**
 * Private pins. For each step, an author's n-th step in an instance has a context
 * keccak256(instanceSecret ‖ author ‖ n) that only the instance's participants can compute. On
 * chain goes just its first 8 bytes (the tag): participants precompute the tags they expect and
 * so recognise a step (and notice a missing one) before its data arrives; to anyone else, tags of
 * one instance look unrelated. The envelope hash is committed through the batch's Merkle root.
 */
import { concat, dataSlice, keccak256, toBeHex, toUtf8Bytes } from 'ethers';
import { leafOf } from './merkle';

export const TAG_BYTES = 8;

export function contextOf(instanceSecret: string, author: string, seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new Error(`step numbers start at 1, got ${seq}`);
  return keccak256(concat([instanceSecret, toUtf8Bytes(author), toBeHex(seq, 8)]));
}

export function tagOf(context: string): string {
  return dataSlice(context, 0, TAG_BYTES);
}

export function stepLeaf(instanceSecret: string, author: string, seq: number, envelopeHash: string): string {
  return leafOf(contextOf(instanceSecret, author, seq), envelopeHash);
}
