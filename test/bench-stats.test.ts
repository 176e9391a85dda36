/** Unit tests of the benchmark's arithmetic (percentiles, the per-hop profile), its definition file and its command line. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialWritesBetween } from '../bench/serial-writes';
import { nodeMemoryAtPeak } from '../bench/node-memory';
import { percentile, ratio, summarise } from '../bench/stats';
import { hopsOf, type StepLog } from '../bench/profile';
import { benchDefinitionYaml, stepAt } from '../bench/definition';
import { parseOptions } from '../bench/options';
import { lineItems } from '../bench/step-data';
import { CommanderError } from 'commander';
import type { StepSample } from '../bench/driver';

describe('percentile (nearest rank)', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

  it('picks the value at rank ceil(p/100 × n)', () => {
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 95)).toBe(95);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile([7, 9, 30], 50)).toBe(9);
    expect(percentile([7, 9, 30], 99)).toBe(30);
  });

  it('is NaN for no values and refuses a p outside 0..100', () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it('summarise sorts, ignores non-finite values and averages', () => {
    const s = summarise([30, Number.NaN, 10, 20]);
    expect(s).toEqual({ count: 3, min: 10, p50: 20, p95: 30, p99: 30, max: 30, mean: 20 });
  });

  it('a ratio to a failed baseline is NaN, not Infinity', () => {
    expect(ratio(10, 0)).toBeNaN();
    expect(ratio(10, 4)).toBe(2.5);
  });
});

describe('hopsOf', () => {
  const sample: StepSample = { instance: 0, k: 0, requestedAt: 1000, acceptedAt: 1100, finalAt: 3000, envelopeHash: '0xe' };
  const log: StepLog = {
    stored: { at: 1080, ms: 30, signMs: 10 },
    batchSent: 1300,
    pinned: { at: 1350, ms: 300, transactionHash: '0xt' },
    accepted: { b: 1500, c: 1600 },
    signalled: { a: 2200, b: 2400, c: 2500 },
    decided: { a: { at: 2300, ms: 50 }, b: { at: 2600, ms: 100 }, c: { at: 2900, ms: 200 } },
  };
  const blocks = { blockOf: (tx: string) => (tx === '0xt' ? 10 : undefined), seenAt: (n: number) => ({ 10: 1500, 11: 2000 })[n] ?? Number.NaN };

  it('splits the critical path at the logged timestamps, following the node that decided last', () => {
    expect(hopsOf(sample, log, blocks, 2)).toEqual({
      api: 50, // the publish activity started at 1080 - 30
      signing: 10,
      'persist-pending': 20,
      batch: 220,
      receipt: 50,
      transfer: 250, // last peer (c) accepted at 1600, receipt at 1350
      inclusion: 200,
      'confirmation-wait': 500, // block 11 seen at 2000
      'listener-signal': 500, // c: signalled at 2500, N deep at 2000, envelope at 1600
      apply: 200, // c: decision started at 2900 - 200, signalled at 2500
      'persist-decision': 200,
      notify: 100,
    });
  });

  it('leaves out what it cannot time', () => {
    expect(hopsOf(sample, { accepted: {}, signalled: {}, decided: {} }, blocks, 1)).toEqual({});
  });
});

describe('benchmark definition', () => {
  it('bench/definitions/bench.yaml is the generated 3-party definition', () => {
    expect(readFileSync(join(__dirname, '..', 'bench', 'definitions', 'bench.yaml'), 'utf8')).toBe(benchDefinitionYaml(3));
  });

  it('turns go round the parties', () => {
    expect([0, 1, 2, 3].map((k) => stepAt(k, 3).role)).toEqual(['p1', 'p2', 'p3', 'p1']);
  });
});

describe('serialWritesBetween', () => {
  it('takes the difference of the running totals around the window', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'bench-serial-')), 'node-a.log');
    const line = (time: number, writes: number, waitMs: number, runMs: number) => JSON.stringify({ level: 20, time, writes, waitMs, runMs, busyMs: runMs, msg: 'serial writes' });
    writeFileSync(file, [line(900, 10, 5, 50), 'not json', line(1000, 20, 10, 100), line(2000, 60, 410, 900), line(3500, 99, 999, 9999)].join('\n'));
    expect(serialWritesBetween({ a: file }, 1000, 3000)).toEqual([{ party: 'a', writes: 40, meanRunMs: 20, meanWaitMs: 10, busy: 0.4 }]);
  });

  it('reads how long the line was busy from busyMs, which writes side by side keep below their summed time', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'bench-serial-')), 'node-a.log');
    const line = (time: number, writes: number, runMs: number, busyMs: number) => JSON.stringify({ level: 20, time, writes, waitMs: 0, runMs, busyMs, msg: 'serial writes' });
    writeFileSync(file, [line(1000, 20, 100, 80), line(2000, 60, 1900, 1080)].join('\n'));
    expect(serialWritesBetween({ a: file }, 1000, 3000)).toEqual([{ party: 'a', writes: 40, meanRunMs: 45, meanWaitMs: 0, busy: 0.5 }]);
  });
});

describe('nodeMemoryAtPeak', () => {
  it('takes each node’s sample with the largest resident size inside the window and splits it up', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
    const line = (time: number, rssMb: number, heapTotalMb: number, heapUsedMb: number, externalMb: number, more: object = {}) =>
      JSON.stringify({ level: 20, time, rssMb, heapTotalMb, heapUsedMb, externalMb, arrayBuffersMb: 1, ...more, msg: 'memory' });
    writeFileSync(
      join(dir, 'a.log'),
      [
        line(900, 400, 300, 250, 20, { gcMs: 10 }),
        'not json',
        line(1000, 210, 120, 90, 10, { threadHeapTotalMb: 30, gcMs: 100 }),
        line(2000, 260, 150, 100, 12, { threadHeapTotalMb: 40, gcMs: 250 }),
        line(3000, 250, 140, 130, 11, { threadHeapTotalMb: 40, gcMs: 400 }),
      ].join('\n'),
    );
    // Only outside the window: left out.
    writeFileSync(join(dir, 'b.log'), line(5000, 300, 200, 100, 10));
    // A node that reports neither the workflow thread's heap nor its pauses.
    writeFileSync(join(dir, 'c.log'), line(1500, 200, 100, 80, 10));
    expect(nodeMemoryAtPeak({ a: join(dir, 'a.log'), b: join(dir, 'b.log'), c: join(dir, 'c.log') }, 1000, 3000)).toEqual([
      { party: 'a', rssMb: 260, heapTotalMb: 150, heapUsedMb: 100, threadHeapTotalMb: 40, externalMb: 12, otherMb: 58, gcPauseMs: 300 },
      { party: 'c', rssMb: 200, heapTotalMb: 100, heapUsedMb: 80, threadHeapTotalMb: 0, externalMb: 10, otherMb: 90, gcPauseMs: 0 },
    ]);
  });
});

describe('parseOptions', () => {
  /** Runs parseOptions with commander's output caught rather than printed. */
  function parsed(argv: string[]): { result?: ReturnType<typeof parseOptions>; error?: unknown; printed: string } {
    let printed = '';
    const capture = (chunk: string | Uint8Array): boolean => ((printed += String(chunk)), true);
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(capture);
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(capture);
    try {
      return { result: parseOptions(argv), printed };
    } catch (error) {
      return { error, printed };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('takes the full workload by default and the quick one with --quick, with single options on top', () => {
    expect(parsed([]).result).toMatchObject({ instances: 300, steps: 6, concurrency: 150, blockTimeMs: 1000, confirmations: 2, durationSeconds: 120, quick: false });
    expect(parsed(['--quick', '--duration', '60']).result).toMatchObject({ instances: 30, steps: 3, concurrency: 15, durationSeconds: 60, quick: true });
    expect(parsed([]).result?.dataBytes).toBe(0);
    expect(parsed(['--data-bytes', '16384']).result?.dataBytes).toBe(16384);
    expect(parsed(['--data-bytes', '-1']).error).toBeInstanceOf(CommanderError);
  });

  it('--help prints the options and ends with exit code 0, as a CommanderError for main to exit with', () => {
    const { error, printed } = parsed(['--help']);
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(0);
    expect(printed).toContain('--block-time <ms>');
  });

  it('refuses a value out of range, naming the option, with exit code 1', () => {
    const { error, printed } = parsed(['--parties', '1']);
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(1);
    expect(printed).toMatch(/--parties <n>.*must be an integer from 2 to 8/);
  });
});

describe('the step data of --data-bytes', () => {
  it('is line items whose JSON reaches the size asked for, overshooting by less than one line; nothing for 0', () => {
    expect(lineItems(0)).toBeUndefined();
    expect(lineItems(1)).toEqual({ lines: [] });
    for (const bytes of [100, 16_384, 500_000]) {
      const data = lineItems(bytes)!;
      const size = JSON.stringify(data).length;
      expect(size).toBeGreaterThanOrEqual(bytes);
      expect(size - bytes).toBeLessThan(JSON.stringify(data.lines[data.lines.length - 1]).length + 1);
      // One line fewer would fall short.
      expect(JSON.stringify({ lines: data.lines.slice(0, -1) }).length).toBeLessThan(bytes);
    }
    expect(lineItems(16_384)).toEqual(lineItems(16_384));
    expect(() => lineItems(1.5)).toThrow(RangeError);
  });
});
