/**
 * Signature recovery in libsecp256k1 must say what ethers says, for good signatures and bad
 * ones alike: a node that believed a signature ethers refuses (or the reverse) would disagree
 * with an arbiter checking the same evidence with standard tools.
 */
import { Signature, Wallet, getBytes, hexlify, randomBytes, toBeHex } from 'ethers';
import { signHash } from '../src/envelope/seal';
import { recoverSigner, recoverWithEthers, recoveryBackend } from '../src/envelope/recover';

/** The secp256k1 group order: an `r` or `s` at or above it is not a signature. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** Both answers, or both refusals: never one of each. */
function outcome(recover: (hash: string, signature: string) => string, hash: string, signature: string): string {
  try {
    return recover(hash, signature);
  } catch {
    return 'refused';
  }
}

function withParts(signature: string, parts: { r?: bigint; s?: bigint; v?: number }): string {
  const sig = Signature.from(signature);
  const r = parts.r === undefined ? sig.r.slice(2) : toBeHex(parts.r, 32).slice(2);
  const s = parts.s === undefined ? sig.s.slice(2) : toBeHex(parts.s, 32).slice(2);
  const v = (parts.v ?? sig.v).toString(16).padStart(2, '0');
  return `0x${r}${s}${v}`;
}

describe('recoverSigner', () => {
  it('runs in libsecp256k1 where the package ships a prebuilt binding (Linux x64, macOS arm64, Windows x64)', () => {
    const prebuilt = ['linux-x64', 'darwin-arm64', 'win32-x64'].includes(`${process.platform}-${process.arch}`);
    expect(recoveryBackend).toBe(prebuilt ? 'libsecp256k1' : 'ethers');
  });

  it('recovers the signer of good signatures, as ethers does', () => {
    for (let i = 0; i < 40; i++) {
      const wallet = Wallet.createRandom();
      const hash = hexlify(randomBytes(32));
      const signature = signHash(wallet, hash);
      expect(recoverSigner(hash, signature)).toBe(wallet.address);
      expect(recoverWithEthers(hash, signature)).toBe(wallet.address);
    }
  });

  it('gives the same answer as ethers for tampered and malformed signatures', () => {
    const wallet = Wallet.createRandom();
    const hash = hexlify(randomBytes(32));
    const good = signHash(wallet, hash);
    const sig = Signature.from(good);
    const otherHash = hexlify(randomBytes(32));
    const flipped = getBytes(good);
    flipped[40] = (flipped[40] ?? 0) ^ 0x01;
    const cases: Record<string, [string, string]> = {
      'another hash': [otherHash, good],
      'a bit flipped in s': [hash, hexlify(flipped)],
      'the other parity': [hash, withParts(good, { v: sig.v === 27 ? 28 : 27 })],
      'v out of range': [hash, withParts(good, { v: 29 })],
      'r = 0': [hash, withParts(good, { r: 0n })],
      'r = N': [hash, withParts(good, { r: N })],
      's = 0': [hash, withParts(good, { s: 0n })],
      'high s (top bit set)': [hash, withParts(good, { s: N - BigInt(sig.s) })],
      'too short': [hash, good.slice(0, 100)],
      'not hex': [hash, '0xzz'],
      empty: [hash, '0x'],
    };
    const answers: string[] = [];
    for (const [name, [h, s]] of Object.entries(cases)) {
      const ours = outcome(recoverSigner, h, s);
      expect({ name, answer: ours }).toEqual({ name, answer: outcome(recoverWithEthers, h, s) });
      expect({ name, signer: ours }).not.toEqual({ name, signer: wallet.address });
      answers.push(ours);
    }
    // Not all refusals: the tampered-but-well-formed cases recover someone else, and must agree on whom.
    expect(answers.filter((a) => a !== 'refused').length).toBeGreaterThanOrEqual(2);
  });
});
