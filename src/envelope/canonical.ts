/** Hashing of JSON values: keccak-256 over the RFC 8785 canonical form, so every node agrees. */
import canonicalize from 'canonicalize';
import { keccak256, toUtf8Bytes } from 'ethers';

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('value cannot be canonicalised (undefined or a function)');
  return text;
}

export function hashJson(value: unknown): string {
  return keccak256(toUtf8Bytes(canonicalJson(value)));
}
