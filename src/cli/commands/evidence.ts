/**
 * `lockstep export` writes an instance's evidence bundle from a party's node; `lockstep verify`
 * lets anyone (an arbiter) check one against the chain, trusting nothing the exporter says.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readNetworkFile } from '../../network-file';
import type { EvidenceBundle } from '../../model/evidence';
import { verifyEvidence, type TrustedFacts } from '../../evidence/verify';
import { formatVerdict } from '../../evidence/verdict';
import { call, nodeClient, nodeOptions, type NodeTargetOptions } from '../node-target';
import { CliError, emit, type OutputOptions } from '../output';

function readBundle(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CliError(`cannot read the bundle ${file}: ${(error as Error).message}`);
  }
}

/** What the arbiter trusts more than the bundle: the parties' addresses and the Sequencer, from a network file. */
function trustedFacts(networkFile: string | undefined): TrustedFacts | undefined {
  if (!networkFile) return undefined;
  const network = readNetworkFile(resolve(networkFile));
  return {
    parties: Object.fromEntries(Object.entries(network.parties).map(([name, p]) => [name, p.address])),
    sequencer: network.chain.sequencer,
    deployBlock: network.chain.deployBlock,
  };
}

export function evidenceCommands(program: Command): void {
  nodeOptions(
    program
      .command('export')
      .argument('<instance>', 'instance id')
      .option('--out <file>', 'where to write the bundle (default: <instance>.evidence.json)')
      .description(
        'write an evidence bundle: the definition, every decided step envelope with its signature, the data this party may read ' +
          '(hashes only for the rest), Merkle receipts and pin references (chain id, contract, block, transaction, log index). ' +
          "It contains the instance's pin secret, which links this instance's pins on chain: share it only with whoever must judge the instance.",
      ),
  ).action(async (id: string, opts: NodeTargetOptions & { out?: string }) => {
    const bundle = await call<EvidenceBundle>(nodeClient(opts), 'exporting evidence', (c) => c.get(`/instances/${encodeURIComponent(id)}/evidence`));
    const out = resolve(opts.out ?? `${id}.evidence.json`);
    writeFileSync(out, `${JSON.stringify(bundle, null, 2)}\n`);
    const readable = bundle.steps.filter((s) => s.data !== undefined).length;
    emit(opts, { file: out, instanceId: id, steps: bundle.steps.length, readable }, () => `wrote ${out}: ${bundle.steps.length} decided steps (${readable} with data, ${bundle.steps.length - readable} as hashes only)`);
  });

  program
    .command('verify')
    .argument('<bundle>', 'an evidence bundle written by lockstep export')
    .requiredOption('--rpc <url>', 'an EVM JSON-RPC endpoint you trust, on the chain the bundle names (env ETH_RPC_URL)', process.env.ETH_RPC_URL)
    .option('--network <file>', "a network file you trust: its parties' addresses and Sequencer are used instead of the bundle's")
    .option('--json', 'print the verdict as JSON')
    .description(
      'check an evidence bundle without trusting its exporter: every signature and hash, each pin present on chain where claimed, ' +
        "first, final and in order, none missing, and the history replayed through the definition's rules. Prints a verdict per step; exits 1 on any failure.",
    )
    .action(async (file: string, opts: OutputOptions & { rpc: string; network?: string }) => {
      const verdict = await verifyEvidence(readBundle(file), { rpcUrl: opts.rpc, trusted: trustedFacts(opts.network) });
      emit(opts, verdict, () => formatVerdict(verdict));
      process.exitCode = verdict.ok ? 0 : 1;
    });
}
