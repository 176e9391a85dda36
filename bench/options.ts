/** The benchmark's parameters, from the command line (`npm run bench -- --help`). */
import { Command, InvalidArgumentError } from 'commander';

export interface BenchOptions {
  parties: number;
  instances: number;
  steps: number;
  concurrency: number;
  batchSize: number;
  blockTimeMs: number;
  confirmations: number;
  /** Upper bound on each measured phase (Lockstep, each baseline), in seconds. */
  durationSeconds: number;
  /** JSON bytes of business data (line items) in each step's input, beside its counter; 0 for none. */
  dataBytes: number;
  quick: boolean;
  keepLogs: boolean;
}

/** `--quick`: small enough to finish, stack start included, in under two minutes on 2 cores. */
const QUICK = { instances: 30, steps: 3, concurrency: 15, blockTimeMs: 500, confirmations: 1, durationSeconds: 20 };
const FULL = { instances: 300, steps: 6, concurrency: 150, blockTimeMs: 1000, confirmations: 2, durationSeconds: 120 };

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

export function parseOptions(argv: string[]): BenchOptions {
  const program = new Command('bench')
    .description('Throughput, latency and cost of Lockstep on a local stack, against baselines in the same run')
    .option('--quick', 'a short run (under two minutes): fewer instances, 500 ms blocks, 1 confirmation', false)
    .option('--parties <n>', 'parties (one node each)', integer(2, 8), 3)
    .option('--instances <n>', 'instances of the benchmark definition', integer(1, 100_000))
    .option('--steps <n>', 'steps per instance, taken in turn by the parties', integer(1, 1000))
    .option('--concurrency <n>', 'instances in progress at a time', integer(1, 10_000))
    .option('--batch-size <n>', 'LOCKSTEP_BATCH_SIZE: pins per batch transaction', integer(1, 1000), 100)
    .option('--block-time <ms>', 'anvil block time in ms', integer(100, 60_000))
    .option('--confirmations <n>', 'blocks deep before a step is final', integer(1, 64))
    .option('--duration <s>', 'upper bound of each measured phase in seconds', integer(5, 3600))
    .option('--data-bytes <n>', "JSON bytes of business data (an order's line items) in each step's input", integer(0, 64 * 1_048_576), 0)
    .option('--keep-logs', 'keep the stack and node logs', false)
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ quick: boolean; parties: number; instances?: number; steps?: number; concurrency?: number; batchSize: number; blockTime?: number; confirmations?: number; duration?: number; dataBytes: number; keepLogs: boolean }>();
  const base = o.quick ? QUICK : FULL;
  return {
    parties: o.parties,
    instances: o.instances ?? base.instances,
    steps: o.steps ?? base.steps,
    concurrency: o.concurrency ?? base.concurrency,
    batchSize: o.batchSize,
    blockTimeMs: o.blockTime ?? base.blockTimeMs,
    confirmations: o.confirmations ?? base.confirmations,
    durationSeconds: o.duration ?? base.durationSeconds,
    dataBytes: o.dataBytes,
    quick: o.quick,
    keepLogs: o.keepLogs,
  };
}

/** The chain's floor for "final": N blocks, plus half a block for the wait to the next one. */
export function chainFloorMs(o: BenchOptions): number {
  return o.blockTimeMs * o.confirmations + o.blockTimeMs / 2;
}
