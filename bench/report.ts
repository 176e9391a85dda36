/** The benchmark's figures as one JSON object and as Markdown tables (printed and saved). */
import { cpus, loadavg, totalmem } from 'node:os';
import type { GasFigure } from './gas';
import type { DriveResult } from './driver';
import type { BenchOptions } from './options';
import type { ProcessFigure } from './proc-stats';
import { HOPS, type Profile } from './profile';
import { summarise, type Summary } from './stats';
import type { SerialWriteFigure } from './serial-writes';
import type { NodeMemoryFigure } from './node-memory';

export interface PhaseFigures {
  steps: number;
  stepsPerSecond: number;
  windowMs: number;
  /** Request sent to final on every participant. */
  latency: Summary;
  /** Request sent to answered (Lockstep: 202 Accepted). */
  answer: Summary;
  truncated: boolean;
  errors: string[];
}

export interface Target {
  what: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface BenchResult {
  measuredAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; loadAverageAtStart: number[] };
  options: BenchOptions;
  /** LOCKSTEP_* variables of the driver's environment, which the nodes inherit. */
  nodeEnv: Record<string, string>;
  chainFloorMs: number;
  lockstep: PhaseFigures & { rejected: number };
  baselines: { temporal: PhaseFigures; pins: PhaseFigures };
  ratios: { throughputToTemporal: number; throughputToPins: number; p50ToPins: number; p99ToPins: number };
  gas: { hardfork: string; figures: GasFigure[] };
  processes: ProcessFigure[];
  serialWrites: SerialWriteFigure[];
  /** Absent in results written before it was measured. */
  nodeMemory?: NodeMemoryFigure[];
  profile: Profile;
  targets: Target[];
}

export function machine(): BenchResult['machine'] {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function phaseFigures(result: DriveResult): PhaseFigures {
  return {
    steps: result.samples.length,
    stepsPerSecond: result.stepsPerSecond,
    windowMs: result.windowMs,
    latency: summarise(result.samples.map((s) => s.finalAt - s.requestedAt)),
    answer: summarise(result.samples.map((s) => s.acceptedAt - s.requestedAt)),
    truncated: result.truncated,
    errors: result.errors,
  };
}

const n0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const n1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '–');
const n2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '–');

function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [header, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function markdown(r: BenchResult): string {
  const o = r.options;
  const phase = (name: string, p: PhaseFigures) => [name, n0(p.steps), n1(p.stepsPerSecond), n0(p.latency.p50), n0(p.latency.p95), n0(p.latency.p99), n0(p.answer.p50)];
  return [
    `Run ${r.measuredAt}: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node.js ${r.machine.node}, load average at start ${r.machine.loadAverageAtStart.join(' ')}.`,
    ...(Object.keys(r.nodeEnv).length > 0 ? [`Node settings from the environment: ${Object.entries(r.nodeEnv).map(([k, v]) => `${k}=${v}`).join(', ')}.`] : []),
    `Workload: ${o.parties} parties, ${o.instances} instances × ${o.steps} steps, ${o.concurrency} at a time${o.dataBytes > 0 ? `, each step with ${n0(o.dataBytes)} bytes of data` : ''}; batch size ${o.batchSize}, ${o.blockTimeMs} ms blocks, ${o.confirmations} confirmation(s), each phase bounded to ${o.durationSeconds} s. Chain floor (block time × confirmations + half a block): ${n0(r.chainFloorMs)} ms.`,
    '',
    table(
      ['run', 'final steps', 'steps/s', 'p50 ms', 'p95 ms', 'p99 ms', 'REST answer p50 ms'],
      [phase('Lockstep (final on every participant)', r.lockstep), phase('baseline (a): bare Temporal Update + signals + activities', r.baselines.temporal), phase('baseline (b): one plain pin transaction per step', r.baselines.pins)],
    ),
    '',
    `Ratios: Lockstep throughput ${n2(r.ratios.throughputToTemporal)} × bare Temporal, ${n2(r.ratios.throughputToPins)} × plain pins; Lockstep latency p50 ${n2(r.ratios.p50ToPins)} ×, p99 ${n2(r.ratios.p99ToPins)} × plain pins.` +
      (r.lockstep.rejected > 0 ? ` ${r.lockstep.rejected} step(s) rejected.` : '') +
      (r.lockstep.truncated ? ' The Lockstep phase hit its duration bound.' : ''),
    ...(r.lockstep.errors.length > 0 ? ['', `Errors (first ${r.lockstep.errors.length}): ${r.lockstep.errors.join('; ')}`] : []),
    '',
    table(['batch size', 'gas used', 'gas per step', 'vs one pin per step'], r.gas.figures.map((g) => [String(g.batchSize), n0(g.gasUsed), n0(g.gasPerStep), n2(g.gasPerStep / r.gas.figures[0]!.gasPerStep)])),
    '',
    table(
      ['process (during the Lockstep phase)', 'CPU % of one core', 'idle CPU % (before the workload)', 'CPU s', 'peak RSS MB', 'mean RSS MB'],
      r.processes.map((p) => [p.name, n0(p.cpuPercent), n0(p.idleCpuPercent ?? Number.NaN), n1(p.cpuSeconds), n0(p.peakRssMb), n0(p.meanRssMb)]),
    ),
    '',
    `CPU per final step, all processes of the stack (driver excluded): ${n0(cpuMsPerStep(r))} CPU-ms.`,
    '',
    table(
      ['node: write line (FerretDB) in the Lockstep phase', 'writes', 'writes per final step', 'mean write ms', 'mean wait in line ms', 'line busy'],
      r.serialWrites.map((w) => [w.party, n0(w.writes), n1(w.writes / Math.max(1, r.lockstep.steps)), n1(w.meanRunMs), n1(w.meanWaitMs), `${n0(w.busy * 100)}%`]),
    ),
    '',
    table(
      ['node memory at its peak in the Lockstep phase', 'RSS MB', 'V8 heap MB (in use)', 'workflow thread heap MB', 'external MB', 'other MB (code, stacks, native)', 'main-thread GC pauses s (phase)'],
      (r.nodeMemory ?? []).map((m) => [m.party, n0(m.rssMb), `${n0(m.heapTotalMb)} (${n0(m.heapUsedMb)})`, n0(m.threadHeapTotalMb), n0(m.externalMb), n0(m.otherMb), n1(m.gcPauseMs / 1000)]),
    ),
    '',
    table(
      ['hop', 'p50 ms', 'p95 ms', 'p99 ms', 'steps', 'what'],
      HOPS.map(([hop, what]) => [hop, n0(r.profile[hop].p50), n0(r.profile[hop].p95), n0(r.profile[hop].p99), String(r.profile[hop].count), what]),
    ),
    '',
    table(['target', 'goal', 'measured', 'met'], r.targets.map((t) => [t.what, t.goal, t.measured, t.met ? 'yes' : '**no**'])),
    '',
  ].join('\n');
}

/** CPU time the stack (nodes and servers, not the driver) spent per final step in the Lockstep phase. */
export function cpuMsPerStep(r: Pick<BenchResult, 'processes' | 'lockstep'>): number {
  const cpu = r.processes.filter((p) => !p.name.startsWith('bench driver')).reduce((sum, p) => sum + p.cpuSeconds, 0);
  return r.lockstep.steps > 0 ? (cpu * 1000) / r.lockstep.steps : Number.NaN;
}

export function targetsOf(r: Omit<BenchResult, 'targets'>): Target[] {
  const nodes = r.processes.filter((p) => p.name.startsWith('node '));
  const gas100 = r.gas.figures.find((g) => g.batchSize === 100);
  const worstNode = Math.max(...nodes.map((p) => p.peakRssMb));
  return [
    { what: 'throughput', goal: '≥ 100 final steps/s', measured: `${n1(r.lockstep.stepsPerSecond)}/s`, met: r.lockstep.stepsPerSecond >= 100 },
    { what: 'p50 REST → final on all', goal: `≤ floor + 250 = ${n0(r.chainFloorMs + 250)} ms`, measured: `${n0(r.lockstep.latency.p50)} ms`, met: r.lockstep.latency.p50 <= r.chainFloorMs + 250 },
    { what: 'p99 REST → final on all', goal: `≤ floor + 1000 = ${n0(r.chainFloorMs + 1000)} ms`, measured: `${n0(r.lockstep.latency.p99)} ms`, met: r.lockstep.latency.p99 <= r.chainFloorMs + 1000 },
    { what: 'gas per step at batch 100', goal: '≤ 600', measured: gas100 ? n0(gas100.gasPerStep) : '–', met: gas100 !== undefined && gas100.gasPerStep <= 600 },
    { what: 'throughput vs bare Temporal', goal: '≥ 0.5 ×', measured: `${n2(r.ratios.throughputToTemporal)} ×`, met: r.ratios.throughputToTemporal >= 0.5 },
    { what: 'node memory', goal: '< 300 MB RSS each', measured: `${n0(worstNode)} MB (largest)`, met: nodes.length > 0 && worstNode < 300 },
  ];
}
