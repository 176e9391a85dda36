/**
 * How busy each node's write line was during the Lockstep phase, from the node's "serial writes"
 * debug lines (running totals, FerretDB only): writes, time spent writing and waiting in line, and
 * how long the line had any write under way. A line busy close to 100% of the time, with writes
 * waiting long in it, is the node's throughput ceiling.
 */
import { linesWithMessage } from './node-log';

export interface SerialWriteFigure {
  party: string;
  writes: number;
  meanRunMs: number;
  meanWaitMs: number;
  /** Share of the window the line had a write under way (0..1). */
  busy: number;
}

interface Totals {
  time: number;
  writes: number;
  waitMs: number;
  runMs: number;
  busyMs: number;
}

/** Differences between the last totals before `from` and the last before `to`; empty without the lines. */
export function serialWritesBetween(logs: Record<string, string>, from: number, to: number): SerialWriteFigure[] {
  const figures: SerialWriteFigure[] = [];
  for (const [party, file] of Object.entries(logs)) {
    const totals = linesWithMessage<Totals>(file, 'serial writes');
    const before = totals.filter((t) => t.time <= from).pop() ?? { time: from, writes: 0, waitMs: 0, runMs: 0, busyMs: 0 };
    const end = totals.filter((t) => t.time <= to).pop();
    if (!end) continue;
    const writes = end.writes - before.writes;
    figures.push({
      party,
      writes,
      meanRunMs: writes > 0 ? (end.runMs - before.runMs) / writes : Number.NaN,
      meanWaitMs: writes > 0 ? (end.waitMs - before.waitMs) / writes : Number.NaN,
      busy: to > from ? (end.busyMs - before.busyMs) / (to - from) : Number.NaN,
    });
  }
  return figures;
}
