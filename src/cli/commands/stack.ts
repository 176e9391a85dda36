/**
 * `lockstep stack up | down`: the local development stack (Temporal dev server, FerretDB or
 * mongod, anvil). `up` runs in the foreground until Ctrl-C; `down` stops a stack started in the
 * same directory from another terminal, or what a crashed one left behind.
 */
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { MiningMode, Stack } from '../../stack/local-stack';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../../stack/search-attributes';
import { runningStackOwner, stopStack } from '../../stack/pid-file';
import { signalIfAlive } from '../../stack/supervised-process';
import { pollUntil } from '../../stack/wait-until';
import { emit, type OutputOptions } from '../output';

interface UpOptions extends OutputOptions {
  dir: string;
  parties: string[];
  blockTime: number;
  confirmations: number;
  manualMining: boolean;
  freePorts: boolean;
  tls: boolean;
  mtls: boolean;
}

/** How long `down` waits for a stack's own orderly shutdown before cleaning up after it. */
const OWNER_STOP_MS = 60_000;

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

function summary(stack: Stack): string {
  const { network } = stack;
  return [
    'Lockstep local stack is running:',
    `  Temporal      ${network.temporal.address}`,
    ...(network.temporal.uiUrl ? [`  Temporal UI   ${network.temporal.uiUrl}`] : []),
    `  MongoDB       ${network.mongodb.uri}`,
    `  Chain RPC     ${network.chain.rpcUrl} (chain id ${network.chain.chainId})`,
    `  Sequencer     ${network.chain.sequencer}`,
    ...(network.devTls ? [`  DX TLS        ${network.devTls.requireClientCert ? 'mutual TLS' : 'TLS'}, CA ${network.devTls.ca}`] : []),
    `  Network file  ${stack.networkPath}`,
    `  Parties       ${Object.keys(network.parties).join(', ')}`,
    '',
    'Press Ctrl-C (or run `lockstep stack down`) to stop.',
  ].join('\n');
}

async function up(opts: UpOptions): Promise<void> {
  // Loaded only here: the stack's Temporal and MongoDB clients make every other command slow to start.
  const { startStack } = await import('../../stack/local-stack');
  const mining: MiningMode = opts.manualMining ? { mode: 'manual' } : { mode: 'interval', blockTimeMs: opts.blockTime };
  const stack = await startStack({
    dir: path.resolve(opts.dir),
    parties: opts.parties,
    ports: opts.freePorts ? 'free' : 'default',
    mining,
    confirmations: opts.confirmations,
    searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
    dxTls: opts.mtls ? 'mutual' : opts.tls ? 'tls' : 'off',
    log: opts.json ? undefined : (line) => process.stdout.write(`[stack] ${line}\n`),
  });
  emit(opts, { networkFile: stack.networkPath, network: { ...stack.network, devKeys: undefined } }, () => summary(stack));

  let shuttingDown = false;
  const shutDown = (signal: NodeJS.Signals): void => {
    // A second Ctrl-C while stopping is ignored: the stop is bounded, and abandoning it would
    // leave servers to the watchdogs.
    if (shuttingDown) return;
    shuttingDown = true;
    if (!opts.json) process.stdout.write(`\n[stack] ${signal}: stopping…\n`);
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

async function down(opts: OutputOptions & { dir: string }): Promise<void> {
  const dir = path.resolve(opts.dir);
  const owner = runningStackOwner(dir);
  if (owner !== null) {
    // The owner stops its servers in order and removes the pid file.
    signalIfAlive(owner, 'SIGTERM');
    await pollUntil(async () => (signalIfAlive(owner, 0) ? Promise.reject(new Error(`process ${owner} still running`)) : true), {
      what: `stack process ${owner}`,
      timeoutMs: OWNER_STOP_MS,
    }).catch(() => undefined);
  }
  await stopStack(dir); // whatever a crashed or stuck owner left behind
  emit(opts, { dir, stopped: owner !== null }, () => (owner !== null ? `stopped the stack in ${dir} (process ${owner})` : `no stack was running in ${dir}; cleaned up any leftovers`));
}

export function stackCommands(program: Command): void {
  const stack = program.command('stack').description('the local development stack: Temporal dev server, FerretDB (or mongod), anvil');
  stack
    .command('up')
    .description('start the stack in the foreground, write <dir>/network.json, run until Ctrl-C')
    .option('--dir <dir>', 'where the network file, data and logs go', '.lockstep')
    .option('--parties <names>', 'comma-separated party names', partyList, ['acme', 'globex', 'initech'])
    .option('--block-time <ms>', 'interval mining block time in milliseconds', positiveInteger, 1000)
    .option('--confirmations <n>', 'blocks a pin must be buried under', nonNegativeInteger, 2)
    .option('--manual-mining', 'mine only on evm_mine (overrides --block-time)', false)
    .option('--free-ports', 'pick free ports instead of the well-known ones (Temporal 7233, anvil 8545, APIs 4001+…)', false)
    .option('--tls', 'make a throwaway CA and per-party certificates; nodes serve data exchange over HTTPS', false)
    .option('--mtls', 'as --tls, and nodes require a client certificate from that CA (mutual TLS)', false)
    .option('--json', 'print the network file as JSON once the stack is up')
    .action(up);
  stack
    .command('down')
    .description('stop the stack running in <dir> (or clean up after one that crashed)')
    .option('--dir <dir>', 'the stack directory', '.lockstep')
    .option('--json', 'print JSON for scripts')
    .action(down);
}
