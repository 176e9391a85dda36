/**
 * Who signed a hash: the address recovered from an EIP-191 personal-message signature over the
 * 32 hash bytes (what signHash in seal.ts makes). Every envelope and invitation a node receives,
 * and every signature of an evidence bundle, is checked through here.
 *
 * Recovery runs in bitcoin-core's libsecp256k1 (the `secp256k1` package's prebuilt binding) when
 * it loads: about 0.06 ms a signature against 1.8 ms for ethers' recovery in JavaScript, which
 * also left about a megabyte of short-lived objects per signature to the collector (the largest
 * allocator on a node's main thread under load, docs/performance.md). Where no prebuilt binding
 * fits the platform, ethers recovers, as before. Parsing is ethers' in both (a malformed
 * signature, an `s` with its top bit set, a bad `v` are refused alike), and both give the same
 * address for the same input.
 */
import { Signature, concat, dataSlice, getAddress, getBytes, hashMessage, keccak256, verifyMessage } from 'ethers';

/** The one call used from libsecp256k1: the signer's uncompressed (65-byte) public key. */
interface NativeRecovery {
  ecdsaRecover(signature: Uint8Array, recoveryId: number, digest: Uint8Array, compressed: false): Uint8Array;
}

/**
 * `secp256k1/bindings` loads the native addon only and throws where there is none; the package's
 * main entry would fall back to `elliptic` in JavaScript instead, slower than ethers.
 */
function loadNative(): NativeRecovery | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional native module: absent on some platforms
    return require('secp256k1/bindings') as NativeRecovery;
  } catch {
    return undefined;
  }
}

export function recoverWithEthers(hash: string, signature: string): string {
  return verifyMessage(getBytes(hash), signature);
}

function recoverWith(native: NativeRecovery, hash: string, signature: string): string {
  const sig = Signature.from(signature);
  const publicKey = native.ecdsaRecover(getBytes(concat([sig.r, sig.s])), sig.yParity, getBytes(hashMessage(getBytes(hash))), false);
  return getAddress(dataSlice(keccak256(publicKey.subarray(1)), 12));
}

const native = loadNative();

/** Which implementation recovers signatures in this process. */
export const recoveryBackend: 'libsecp256k1' | 'ethers' = native ? 'libsecp256k1' : 'ethers';

/** The checksummed address that signed `hash` (0x-prefixed, 32 bytes); throws on a malformed signature. */
export const recoverSigner: (hash: string, signature: string) => string = native
  ? (hash, signature) => recoverWith(native, hash, signature)
  : recoverWithEthers;
