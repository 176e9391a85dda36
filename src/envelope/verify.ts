/**
 * Checks on what a peer sends: hashes recomputed, signatures recovered and matched against the
 * address the network file gives for the claimed party. A node never trusts a peer's word.
 */
import type { SignedEnvelope } from '../model/envelope';
import type { Invitation } from '../model/instance';
import type { NetworkFile } from '../model/network';
import { LockstepError } from '../model/errors';
import { hashJson } from './canonical';
import { recoverSigner } from './recover';

function signerOf(hash: string, signature: string): string {
  try {
    return recoverSigner(hash, signature);
  } catch {
    throw new LockstepError('bad_signature', 'signature is malformed', [{ field: '/signature', message: 'not a valid signature' }]);
  }
}

function expectSigner(network: NetworkFile, party: string, hash: string, signature: string, field: string): void {
  const known = network.parties[party];
  if (!known) {
    throw new LockstepError('forbidden', `unknown party "${party}"`, [{ field, message: 'not a party of this network' }]);
  }
  const signer = signerOf(hash, signature);
  if (signer.toLowerCase() !== known.address.toLowerCase()) {
    throw new LockstepError('bad_signature', `signature is not ${party}'s: signed by ${signer}, expected ${known.address}`, [
      { field: '/signature', message: 'signer does not match the claimed party' },
    ]);
  }
}

export function verifyEnvelope(network: NetworkFile, signed: SignedEnvelope): void {
  const hash = hashJson(signed.envelope);
  if (hash !== signed.hash) {
    throw new LockstepError('bad_request', `envelope hash mismatch: computed ${hash}, claimed ${signed.hash}`, [
      { field: '/hash', message: 'does not match the envelope' },
    ]);
  }
  expectSigner(network, signed.envelope.author, hash, signed.signature, '/envelope/author');
  if (signed.data !== undefined) {
    const inputHash = hashJson(signed.data);
    if (inputHash !== signed.envelope.inputHash) {
      throw new LockstepError('bad_request', `step data does not match the envelope: hash ${inputHash}, envelope says ${signed.envelope.inputHash}`, [
        { field: '/data', message: 'hash mismatch' },
      ]);
    }
  }
}

export function verifyInvitation(network: NetworkFile, invitation: Invitation): void {
  expectSigner(network, invitation.header.createdBy, hashJson(invitation.header), invitation.signature, '/header/createdBy');
}
