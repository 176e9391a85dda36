/**
 * `lockstep verify`: checks an evidence bundle without trusting its exporter. Everything the
 * bundle claims is recomputed (hashes, signatures, tags, Merkle leaves) or read again from the
 * arbiter's own chain endpoint (pins, their order, depth and time), and the history is replayed
 * through the definition's rules. Only the participants' addresses and the Sequencer's address
 * come from the bundle, unless the arbiter passes facts it trusts more (a network file).
 */
import { getAddress } from 'ethers';
import type { EvidenceBundle } from '../model/evidence';
import { comparePositions } from '../model/pin';
import { bundleIntegrity, stepIntegrity, type TrustedAddresses } from './integrity';
import { bundleChain, orderCheck, readChain, stepOnChain } from './chain-checks';
import { replayRules } from './replay';
import { malformedVerdict, shapeProblems } from './shape';
import { fail, pass, verdictOf, type Check, type EvidenceVerdict, type StepVerdict } from './verdict';

export interface TrustedFacts {
  parties?: TrustedAddresses;
  sequencer?: string;
  deployBlock?: number;
}

export interface VerifyOptions {
  rpcUrl: string;
  trusted?: TrustedFacts;
}

/** `value` is whatever the file held: its shape is checked before any of it is believed. */
export async function verifyEvidence(value: unknown, opts: VerifyOptions): Promise<EvidenceVerdict> {
  const problems = shapeProblems(value);
  if (problems.length > 0) return malformedVerdict(value, problems);
  const bundle = value as EvidenceBundle;
  const bundleChecks = bundleIntegrity(bundle, opts.trusted?.parties);
  const sequencer = opts.trusted?.sequencer ?? bundle.chain.sequencer;
  if (opts.trusted?.sequencer) bundleChecks.push(sequencerCheck(bundle.chain.sequencer, opts.trusted.sequencer));
  const chain = await readChain(opts.rpcUrl, sequencer, opts.trusted?.deployBlock ?? bundle.chain.deployBlock, bundle);
  bundleChecks.push(...bundleChain(bundle, chain));

  const onChain = bundle.steps.map((s) => stepOnChain(bundle, s, chain));
  const checks: Check[][] = bundle.steps.map((s, i) => [...stepIntegrity(bundle, s), ...onChain[i]!.checks, orderCheck(bundle.steps, i)]);
  // The rules are replayed in chain order (the order check says whether the bundle agreed), with
  // chain time as read from the chain, never from the bundle.
  const inChainOrder = bundle.steps.map((step, i) => ({ step, i, timestamp: onChain[i]!.observed?.timestamp })).sort((a, b) => comparePositions(a.step.pin, b.step.pin));
  replayRules(bundle, inChainOrder).forEach((rule, k) => checks[inChainOrder[k]!.i]!.push(rule));

  const steps: StepVerdict[] = bundle.steps.map((s, i) => ({
    seq: s.seq,
    step: s.envelope.step,
    author: s.envelope.author,
    nonce: s.envelope.nonce,
    hash: s.hash,
    status: s.status,
    ok: checks[i]!.every((c) => c.ok),
    checks: checks[i]!,
  }));
  return verdictOf(bundleChecks, steps);
}

function sequencerCheck(claimed: string, trusted: string): Check {
  return getAddress(claimed) === getAddress(trusted)
    ? pass('sequencer', `the bundle names the trusted Sequencer ${trusted}`)
    : fail('sequencer', `the bundle names Sequencer ${claimed}, the trusted network file ${trusted}`);
}
