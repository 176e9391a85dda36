/**
 * Baseline (a) in its own process, so that its worker, its Temporal runtime and the bundler's
 * memory neither load nor count against the driver during the Lockstep phase. It bundles its
 * workflow at once (while the parent starts the stack), then reads its job as one JSON line on
 * stdin, prints a progress bar on stderr and the result as JSON on stdout (on a line marked with RESULT_PREFIX).
 */
import { ProgressBar } from '../progress';
import type { Workload } from '../driver';
import { bundleBaseline, runTemporalBaseline } from './temporal';
import { RESULT_PREFIX } from './temporal-process';

export interface TemporalJob {
  address: string;
  namespace: string;
  workload: Workload & { parties: number };
}

function readLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end >= 0) resolve(text.slice(0, end));
    });
    process.stdin.once('end', () => reject(new Error('no job on stdin')));
  });
}

async function main(): Promise<void> {
  const bundle = await bundleBaseline();
  const job = JSON.parse(await readLine()) as TemporalJob;
  process.stdin.destroy();
  const bar = new ProgressBar('bare Temporal', job.workload.instances * job.workload.steps);
  const result = await runTemporalBaseline(job.address, job.namespace, bundle, job.workload, (d) => bar.update(d));
  bar.done(result.samples.length);
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
