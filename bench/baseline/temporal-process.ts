/** Starts baseline (a) in a child process (bench/baseline/temporal-main.ts) and collects its result. */
import { spawn } from 'node:child_process';
import type { DriveResult } from '../driver';
import type { TemporalJob } from './temporal-main';

/** Marks the child's result line on stdout, which the Temporal core may write its own logs to. */
export const RESULT_PREFIX = 'lockstep-baseline-result ';

export interface TemporalBaselineProcess {
  pid: number | undefined;
  /** Hands over the job; resolves with the result once the child has run it. */
  run(job: TemporalJob): Promise<DriveResult>;
  kill(): void;
}

export function spawnTemporalBaseline(): TemporalBaselineProcess {
  const child = spawn(process.execPath, [require.resolve('./temporal-main')], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    pid: child.pid,
    run: async (job) => {
      child.stdin.end(`${JSON.stringify(job)}\n`);
      const code = await exited;
      if (code !== 0) throw new Error(`the bare-Temporal baseline exited with code ${code}`);
      // The Temporal core may log to stdout too (a warning while the server is busy): only the marked line is the result.
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (!line) throw new Error(`the bare-Temporal baseline printed no result (its output: ${out.slice(0, 300)})`);
      return JSON.parse(line.slice(RESULT_PREFIX.length)) as DriveResult;
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}
