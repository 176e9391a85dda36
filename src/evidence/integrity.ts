/**
 * The checks that need no chain: every hash recomputed, every signature recovered and matched
 * against the participant's address, the definition and the invitation bound to each other.
 */
import { getAddress } from 'ethers';
import { hashJson } from '../envelope/canonical';
import { recoverSigner } from '../envelope/recover';
import type { EvidenceBundle, EvidenceStep } from '../model/evidence';
import { EVIDENCE_FORMAT } from '../model/evidence';
import { participantsOf } from '../model/instance';
import { checkDefinition } from '../definitions/load';
import { attempt, fail, pass, type Check } from './verdict';

/** Addresses an arbiter trusts more than the bundle (e.g. from the network file), by party. */
export type TrustedAddresses = Record<string, string>;

export function bundleIntegrity(bundle: EvidenceBundle, trusted?: TrustedAddresses): Check[] {
  const checks: Check[] = [];
  const { header } = bundle.instance;
  checks.push(bundle.format === EVIDENCE_FORMAT ? pass('format', EVIDENCE_FORMAT) : fail('format', `unknown format ${String(bundle.format)}`));
  checks.push(
    attempt('definition', () => {
      const computed = hashJson(bundle.definition.document);
      if (computed !== bundle.definition.hash) return fail('definition', `the definition hashes to ${computed}, the bundle claims ${bundle.definition.hash}`);
      if (computed !== header.definitionHash) return fail('definition', `the instance was started with definition ${header.definitionHash}, the bundle carries ${computed}`);
      const problems = checkDefinition(bundle.definition.document, 'bundle').problems;
      if (problems.length > 0) return fail('definition', `not a valid definition: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
      return pass('definition', `${bundle.definition.document.id} v${bundle.definition.document.version}, hash ${computed}, the one the instance was started with`);
    }),
  );
  checks.push(
    attempt('parties', () => {
      const missing = participantsOf(header).filter((p) => !bundle.parties[p]?.address);
      if (missing.length > 0) return fail('parties', `no address for ${missing.join(', ')}`);
      const differing = Object.entries(trusted ?? {}).filter(([p, a]) => bundle.parties[p] && getAddress(a) !== getAddress(bundle.parties[p].address));
      if (differing.length > 0) return fail('parties', `addresses differ from the trusted ones for ${differing.map(([p]) => p).join(', ')}`);
      const source = trusted ? 'checked against the trusted network file' : 'as given by the bundle: check them against a source you trust (--network)';
      return pass('parties', `${participantsOf(header).map((p) => `${p}=${bundle.parties[p]!.address}`).join(', ')} (${source})`);
    }),
  );
  checks.push(
    attempt('invitation', () => {
      const creator = bundle.parties[header.createdBy]?.address;
      const by = recoverSigner(hashJson(header), bundle.instance.signature);
      if (!creator || getAddress(creator) !== by) return fail('invitation', `the instance header is signed by ${by}, not by its creator ${header.createdBy} (${creator ?? 'no address'})`);
      return pass('invitation', `instance ${header.id} started by ${header.createdBy}, roles ${Object.entries(header.roles).map(([r, p]) => `${r}=${p}`).join(', ')}`);
    }),
  );
  return checks;
}

export function stepIntegrity(bundle: EvidenceBundle, s: EvidenceStep): Check[] {
  const e = s.envelope;
  const { header } = bundle.instance;
  const computed = hashJson(e);
  return [
    computed === s.hash ? pass('envelope', `hash ${computed}`) : fail('envelope', `the envelope hashes to ${computed}, the bundle claims ${s.hash}`),
    attempt('signature', () => {
      const expected = bundle.parties[e.author]?.address;
      const by = recoverSigner(computed, s.signature);
      return expected && getAddress(expected) === by ? pass('signature', `signed by ${e.author} (${by})`) : fail('signature', `signed by ${by}, not by ${e.author} (${expected ?? 'no address'})`);
    }),
    e.instanceId === header.id && e.definitionHash === header.definitionHash
      ? pass('instance', 'envelope names this instance and its definition')
      : fail('instance', `envelope names instance ${e.instanceId} and definition ${e.definitionHash}, not ${header.id} and ${header.definitionHash}`),
    s.data === undefined
      ? pass('data', `not readable by ${bundle.exportedBy}; committed as ${e.inputHash}`)
      : attempt('data', () => {
          const dataHash = hashJson(s.data);
          return dataHash === e.inputHash ? pass('data', `matches the data hash in the signed envelope, ${dataHash}`) : fail('data', `the data hashes to ${dataHash}, the signed envelope says ${e.inputHash}`);
        }),
  ];
}
