/**
 * `npm run stack`: runs a local stack in ./.lockstep until Ctrl-C.
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { startStack, type MiningMode, type Stack } from './local-stack';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from './search-attributes';

interface CliOptions {
  parties: string[];
  blockTime: number;
  confirmations: number;
  manualMining: boolean;
}

function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function positiveInteger(value: string): number {
  const n = nonNegativeInteger(value);
  if (n === 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function partyList(value: string): string[] {
  return value
    .split(',')
    .map((party) => party.trim())
    .filter(Boolean);
}

function parseArgs(argv: string[]): CliOptions {
  const program = new Command()
    .name('npm run stack --')
    .description('Start Temporal, MongoDB and anvil for local development, until Ctrl-C')
    .option('--parties <names>', 'comma-separated party names', partyList, ['acme', 'globex', 'initech'])
    .option('--block-time <ms>', 'interval mining block time in milliseconds', positiveInteger, 1000)
    .option('--confirmations <n>', 'blocks a pin must be buried under', nonNegativeInteger, 2)
    .option('--manual-mining', 'mine only on evm_mine (overrides --block-time)', false)
    .parse(argv);
  return program.opts<CliOptions>();
}

function printSummary(stack: Stack): void {
  const { network } = stack;
  const lines = [
    '',
    'Lockstep local stack is running:',
    `  Temporal      ${network.temporal.address}`,
    ...(network.temporal.uiUrl ? [`  Temporal UI   ${network.temporal.uiUrl}`] : []),
    `  MongoDB       ${network.mongodb.uri}`,
    `  Chain RPC     ${network.chain.rpcUrl} (chain id ${network.chain.chainId})`,
    `  Sequencer     ${network.chain.sequencer}`,
    `  Network file  ${stack.networkPath}`,
    `  Parties       ${Object.keys(network.parties).join(', ')}`,
    '',
    'Press Ctrl-C to stop.',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const cli = parseArgs(process.argv);
  const mining: MiningMode = cli.manualMining ? { mode: 'manual' } : { mode: 'interval', blockTimeMs: cli.blockTime };
  const stack = await startStack({
    dir: path.resolve('.lockstep'),
    parties: cli.parties,
    ports: 'default',
    mining,
    confirmations: cli.confirmations,
    searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
    log: (line) => process.stdout.write(`[stack] ${line}\n`),
  });
  printSummary(stack);

  let shuttingDown = false;
  const shutDown = (signal: NodeJS.Signals): void => {
    // A second Ctrl-C while stopping is ignored: the stop is bounded, and abandoning it would
    // leave servers to the watchdogs.
    if (shuttingDown) return;
    shuttingDown = true;
    process.stdout.write(`\n[stack] ${signal}: stopping…\n`);
    stack.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`[stack] error while stopping: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutDown);
  process.on('SIGTERM', shutDown);
}

main().catch((err: unknown) => {
  process.stderr.write(`[stack] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
