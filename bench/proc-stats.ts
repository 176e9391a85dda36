/**
 * CPU and memory of the stack's processes, read from /proc (Linux only): CPU time from
 * /proc/<pid>/stat (utime + stime), resident memory from /proc/<pid>/status (VmRSS), summed over
 * each process and its descendants (a server runs under a watchdog shell, the temporal CLI and
 * anvil may fork).
 */
import { readFileSync } from 'node:fs';

/** Kernel clock ticks per second (USER_HZ): 100 on every mainstream Linux build. */
const TICKS_PER_SECOND = 100;

export interface ProcessFigure {
  name: string;
  /** Average CPU over the window, in % of one core. */
  cpuPercent: number;
  cpuSeconds: number;
  peakRssMb: number;
  meanRssMb: number;
  /** CPU in a quiet window before the workload, in % of one core (set by the caller). */
  idleCpuPercent?: number;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function childrenOf(pid: number): number[] {
  const tasks = readOrNull(`/proc/${pid}/task/${pid}/children`);
  return tasks ? tasks.trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

function treeOf(pid: number): number[] {
  const all: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && all.length < 1000) {
    const next = queue.shift()!;
    all.push(next);
    queue.push(...childrenOf(next));
  }
  return all;
}

/** utime + stime in seconds; the command name in field 2 may hold spaces, so parse after its ')'. */
function cpuSecondsOf(pid: number): number {
  const stat = readOrNull(`/proc/${pid}/stat`);
  if (!stat) return 0;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

function rssMbOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readOrNull(`/proc/${pid}/status`) ?? '');
  return match ? Number(match[1]) / 1024 : 0;
}

/** A process to watch; `tree: false` counts the process alone (the driver, whose children are watched by name). */
export interface TrackedProcess {
  name: string;
  pid: number;
  tree?: boolean;
}

interface Tracked {
  name: string;
  pid: number;
  pids: () => number[];
  startCpu: number;
  lastCpu: number;
  peakRss: number;
  rssSum: number;
  samples: number;
}

export class ProcessSampler {
  private readonly tracked: Tracked[];
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(processes: TrackedProcess[]) {
    this.tracked = processes.map(({ name, pid, tree }) => {
      const pids = tree === false ? () => [pid] : () => treeOf(pid);
      const cpu = this.cpuOf(pids);
      return { name, pid, pids, startCpu: cpu, lastCpu: cpu, peakRss: 0, rssSum: 0, samples: 0 };
    });
  }

  private cpuOf(pids: () => number[]): number {
    return pids().reduce((sum, p) => sum + cpuSecondsOf(p), 0);
  }

  sample(): void {
    for (const t of this.tracked) {
      const rss = t.pids().reduce((sum, p) => sum + rssMbOf(p), 0);
      // A process that exited reads as 0: keep what was seen last.
      const cpu = this.cpuOf(t.pids);
      if (cpu > 0) t.lastCpu = cpu;
      if (rss > 0) {
        t.peakRss = Math.max(t.peakRss, rss);
        t.rssSum += rss;
        t.samples++;
      }
    }
  }

  start(intervalMs = 1000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): ProcessFigure[] {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    const seconds = (Date.now() - this.startedAt) / 1000;
    return this.tracked.map((t) => {
      const cpuSeconds = t.lastCpu - t.startCpu;
      return {
        name: t.name,
        cpuSeconds,
        cpuPercent: seconds > 0 ? (100 * cpuSeconds) / seconds : 0,
        peakRssMb: t.peakRss,
        meanRssMb: t.samples > 0 ? t.rssSum / t.samples : 0,
      };
    });
  }
}
