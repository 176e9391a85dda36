/**
 * Hashing of JSON values: keccak-256 over the RFC 8785 canonical form, so every node agrees.
 * Pure (no Node built-ins), so the instance workflow computes a proposal's envelope hash itself.
 */
import canonicalize from 'canonicalize';
import { keccak_256 } from '@noble/hashes/sha3';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('value cannot be canonicalised (undefined or a function)');
  return text;
}

/** 0x-prefixed, lower-case hex: as ethers writes a keccak256. */
export function hashJson(value: unknown): string {
  return `0x${bytesToHex(keccak_256(utf8ToBytes(canonicalJson(value))))}`;
}
