/** The batch Merkle tree: every leaf proves at its index, and only there. */
import { keccak256, toUtf8Bytes } from 'ethers';
import { merkleProof, merkleRoot, verifyMerkleProof } from '../src/chain/merkle';

const leaves = (n: number) => Array.from({ length: n }, (_, i) => keccak256(toUtf8Bytes(`leaf ${i}`)));

test.each([1, 2, 3, 5, 8, 13, 100])('each of %i leaves proves at its own index and nowhere else', (n) => {
  const all = leaves(n);
  const root = merkleRoot(all);
  all.forEach((leaf, i) => {
    const proof = merkleProof(all, i);
    expect(verifyMerkleProof(leaf, i, n, proof, root)).toBe(true);
    if (n > 1) expect(verifyMerkleProof(leaf, (i + 1) % n, n, proof, root)).toBe(false);
    expect(verifyMerkleProof(keccak256(toUtf8Bytes('forged')), i, n, proof, root)).toBe(false);
  });
});

test('a proof does not verify against another root or count', () => {
  const all = leaves(6);
  const proof = merkleProof(all, 2);
  expect(verifyMerkleProof(all[2]!, 2, 6, proof, merkleRoot(leaves(7)))).toBe(false);
  expect(verifyMerkleProof(all[2]!, 2, 9, proof, merkleRoot(all))).toBe(false);
  expect(verifyMerkleProof(all[2]!, 6, 6, proof, merkleRoot(all))).toBe(false);
});

test('an inner node cannot pass for a leaf', () => {
  const all = leaves(4);
  const root = merkleRoot(all);
  // The two level-1 nodes as "leaves" of a 2-leaf tree would give the same root without domain separation.
  const p = merkleProof(all, 0);
  expect(verifyMerkleProof(p[1]!, 1, 2, [], root)).toBe(false);
});
