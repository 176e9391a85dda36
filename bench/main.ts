/**
 * `npm run bench [-- --quick] [-- --help]`: starts its own local stack (Temporal dev server on
 * SQLite tuned for speed, FerretDB, anvil with a block time) and one node per party, drives a fixed
 * workload through the REST APIs, and measures, in the same run on the same machine, two
 * baselines: (a) bare Temporal with the same round trips, (b) one plain pin transaction per step.
 * Prints a table and writes bench/results/latest.{json,md}. Tears everything down on the way out,
 * on error and on Ctrl-C.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { startStack, type Stack } from '../src/stack/local-stack';
import { startPartyProcesses, type PartyProcesses } from '../src/stack/party-processes';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../src/stack/search-attributes';
import { devWallet } from '../src/stack/dev-chain';
import { repoRoot } from '../src/paths';
import { spawnTemporalBaseline, type TemporalBaselineProcess } from './baseline/temporal-process';
import { runPinBaseline } from './baseline/pins';
import { BlockClock } from './block-clock';
import { DecisionWatch } from './decisions';
import { writeBenchDefinition } from './definition';
import type { Workload } from './driver';
import { measureGas, saveGas } from './gas';
import { runLockstep } from './lockstep';
import { chainFloorMs, parseOptions, type BenchOptions } from './options';
import { ProcessSampler } from './proc-stats';
import { ProgressBar } from './progress';
import { profileOf, readStepLogs } from './profile';
import { machine, markdown, phaseFigures, targetsOf, type BenchResult } from './report';
import { ratio } from './stats';
import { serialWritesBetween } from './serial-writes';
import { nodeMemoryAtPeak } from './node-memory';

const say = (line: string) => console.error(line);

/** Speed over durability: a benchmark's Temporal state is thrown away after the run. */
const TEMPORAL_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=off'];
const IDLE_WINDOW_MS = 3000;

function workloadOf(o: BenchOptions): Workload {
  return { instances: o.instances, steps: o.steps, concurrency: o.concurrency, deadline: Date.now() + o.durationSeconds * 1000, dataBytes: o.dataBytes };
}

function partyNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `party${i + 1}`);
}

async function run(o: BenchOptions, dir: string, running: { stack?: Stack; nodes?: PartyProcesses; clock?: BlockClock; watch?: DecisionWatch; baseline?: TemporalBaselineProcess }): Promise<BenchResult> {
  const measuredAt = new Date().toISOString();
  const host = machine();
  const parties = partyNames(o.parties);
  const total = o.instances * o.steps;
  const definitions = writeBenchDefinition(dir, o.parties);
  say(`Starting the local stack in ${dir} …`);
  const baseline = (running.baseline = spawnTemporalBaseline());
  const stack = (running.stack = await startStack({
    dir,
    parties,
    ports: 'free',
    mining: { mode: 'interval', blockTimeMs: o.blockTimeMs },
    confirmations: o.confirmations,
    searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
    temporalSqlitePragmas: TEMPORAL_SQLITE_PRAGMAS,
  }));
  const network = stack.network;

  say('Baseline (a): bare Temporal workflows …');
  const temporal = await baseline.run({ address: network.temporal.address, namespace: parties[0]!, workload: { ...workloadOf(o), parties: o.parties } });

  say(`Starting ${o.parties} Lockstep nodes …`);
  const nodes = (running.nodes = await startPartyProcesses(network, stack.networkPath, parties, dir, {
    LOCKSTEP_DEFINITIONS: definitions,
    LOCKSTEP_BATCH_SIZE: String(o.batchSize),
    LOCKSTEP_LOG_LEVEL: 'debug',
  }));
  const clock = (running.clock = new BlockClock(network.chain.rpcUrl));
  clock.start();
  const watch = (running.watch = new DecisionWatch(parties));
  await watch.connect(Object.fromEntries(parties.map((p) => [p, { apiUrl: network.parties[p]!.apiUrl, apiKey: network.devApiKeys?.[p] }])));
  const tracked = [
    ...Object.entries(nodes.pids()).map(([party, pid]) => ({ name: `node ${party}`, pid })),
    ...stack.processes(),
    { name: 'bench driver (this process)', pid: process.pid, tree: false },
  ];
  // What the stack burns doing nothing (pollers: listener, batcher, signaller, event sockets).
  const idleSampler = new ProcessSampler(tracked);
  idleSampler.start();
  await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
  const idle = idleSampler.stop();
  const sampler = new ProcessSampler(tracked);
  sampler.start();
  const phaseStart = Date.now();
  let bar = new ProgressBar('Lockstep', total);
  const lockstep = await runLockstep(network, parties, watch, workloadOf(o), (d) => bar.update(d));
  bar.done(lockstep.samples.length);
  const phaseEnd = Date.now();
  const processes = sampler.stop().map((p, i) => ({ ...p, idleCpuPercent: idle[i]!.cpuPercent }));
  watch.close();
  await new Promise((r) => setTimeout(r, 1500));
  await nodes.stop();
  // The nodes log their totals every second: wait for the last line before reading.
  const serialWrites = serialWritesBetween(nodes.logs, phaseStart, phaseEnd + 1500);
  const nodeMemory = nodeMemoryAtPeak(nodes.logs, phaseStart, phaseEnd + 1500);
  const profile = profileOf(lockstep.samples, readStepLogs(nodes.logs), clock, o.confirmations);

  say('Baseline (b): one plain pin transaction per step …');
  bar = new ProgressBar('plain pins', total);
  const pins = await runPinBaseline(
    { rpcUrl: network.chain.rpcUrl, chainId: network.chain.chainId, sequencer: network.chain.sequencer, privateKey: devWallet(0).privateKey, confirmations: o.confirmations },
    clock,
    workloadOf(o),
    (d) => bar.update(d),
  );
  bar.done(pins.samples.length);
  await clock.stop();
  await stack.stop();
  running.stack = undefined;

  say('Gas per step at batch sizes 1, 10, 100 …');
  const gas = await measureGas();
  saveGas(gas.hardfork, gas.figures);

  const lockstepFigures = { ...phaseFigures(lockstep), rejected: lockstep.samples.filter((s) => s.status === 'rejected').length };
  const temporalFigures = phaseFigures(temporal);
  const pinFigures = phaseFigures(pins);
  const partial: Omit<BenchResult, 'targets'> = {
    measuredAt,
    machine: host,
    options: o,
    nodeEnv: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('LOCKSTEP_') && e[1] !== undefined)),
    chainFloorMs: chainFloorMs(o),
    lockstep: lockstepFigures,
    baselines: { temporal: temporalFigures, pins: pinFigures },
    ratios: {
      throughputToTemporal: ratio(lockstepFigures.stepsPerSecond, temporalFigures.stepsPerSecond),
      throughputToPins: ratio(lockstepFigures.stepsPerSecond, pinFigures.stepsPerSecond),
      p50ToPins: ratio(lockstepFigures.latency.p50, pinFigures.latency.p50),
      p99ToPins: ratio(lockstepFigures.latency.p99, pinFigures.latency.p99),
    },
    gas,
    processes,
    serialWrites,
    nodeMemory,
    profile,
  };
  return { ...partial, targets: targetsOf(partial) };
}

async function main(): Promise<void> {
  let o: BenchOptions;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (error) {
    // --help, or an option commander refused: it has said so already, without a stack trace.
    if (!(error instanceof CommanderError)) throw error;
    process.exitCode = error.exitCode;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-bench-'));
  const running: Parameters<typeof run>[2] = {};
  let stopping: Promise<void> | undefined;
  const teardown = () =>
    (stopping ??= (async () => {
      running.baseline?.kill();
      running.watch?.close();
      await running.clock?.stop();
      await running.nodes?.stop();
      await running.stack?.stop();
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`\n${signal}: tearing down …`);
      void teardown().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  // Three phases bounded by --duration, plus starting and stopping: a hung phase cannot run forever.
  const guard = setTimeout(() => {
    say('benchmark overran its time bound: tearing down');
    void teardown().finally(() => process.exit(1));
  }, (3 * o.durationSeconds + 240) * 1000);
  guard.unref();
  try {
    const result = await run(o, dir, running);
    const md = markdown(result);
    console.log(`\n${md}`);
    const out = join(repoRoot(), 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(out, 'latest.md'), md);
    say(`Written: bench/results/latest.json, bench/results/latest.md`);
    if (!o.keepLogs) rmSync(dir, { recursive: true, force: true });
    else say(`Logs kept in ${dir}`);
  } catch (error) {
    if (stopping) return; // interrupted: the signal handler tears down and exits
    console.error(`benchmark failed: ${(error as Error).stack ?? String(error)}`);
    await teardown();
    console.error(`logs of the stack and the nodes are kept in ${dir}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(guard);
  }
}

if (require.main === module) void main();
