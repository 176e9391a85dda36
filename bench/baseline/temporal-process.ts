/** Starts baseline (a) in a child process (bench/baseline/temporal-main.ts) and collects its result. */
import { spawn } from 'node:child_process';
import type { DriveResult } from '../driver';
import type { TemporalJob } from './temporal-main';

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
      return JSON.parse(out) as DriveResult;
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}
