/**
 * Runs baseline (a), the bare Temporal workflow, against the stack's Temporal server with the same
 * workload as Lockstep: per step one Update running one activity, then one signal and one activity
 * on each party's workflow. The worker runs in this process, like a Lockstep node's worker does in
 * its own.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { drive, type DriveResult, type Workload } from '../driver';
import { baselineActivities } from './activities';
import { lineItems } from '../step-data';
import { BASELINE_TASK_QUEUE, decidedSignal, stepUpdate } from './workflows';

export type WorkflowBundle = { code: string };

/** Bundling takes seconds of CPU: started early, beside the stack. */
export function bundleBaseline(): Promise<WorkflowBundle> {
  const silent = () => {};
  return bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    logger: { log: silent, trace: silent, debug: silent, info: silent, warn: silent, error: console.error },
  });
}

export async function runTemporalBaseline(
  address: string,
  namespace: string,
  bundle: WorkflowBundle,
  workload: Workload & { parties: number },
  onStep: (done: number) => void,
): Promise<DriveResult> {
  // The SDK logs every worker state change at INFO; only problems matter here.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const data = lineItems(workload.dataBytes);
  const recorded = new Map<string, () => void>();
  const onRecord = (key: string, k: number) => recorded.get(`${key}/${k}`)?.();
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const run = `b${Date.now().toString(36)}`;
  try {
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace,
      taskQueue: BASELINE_TASK_QUEUE,
      workflowBundle: bundle,
      activities: baselineActivities(onRecord),
    });
    const runner = {
      start: async (instance: number) => {
        const ids = Array.from({ length: workload.parties }, (_, p) => `${run}-${instance}-${p}`);
        await Promise.all(
          ids.map((id) => client.workflow.start('bareSteps', { workflowId: id, taskQueue: BASELINE_TASK_QUEUE, args: [{ key: id, steps: workload.steps }] })),
        );
        return ids;
      },
      step: async (ids: string[], instance: number, k: number) => {
        const requestedAt = Date.now();
        const author = ids[k % ids.length]!;
        await client.workflow.getHandle(author).executeUpdate(stepUpdate, { args: [k, data] });
        const acceptedAt = Date.now();
        const all = Promise.all(ids.map((id) => new Promise<void>((resolve) => recorded.set(`${id}/${k}`, resolve))));
        await Promise.all(ids.map((id) => client.workflow.getHandle(id).signal(decidedSignal, k)));
        await all;
        for (const id of ids) recorded.delete(`${id}/${k}`);
        return { instance, k, requestedAt, acceptedAt, finalAt: Date.now() };
      },
    };
    return await worker.runUntil(drive(workload, runner, onStep));
  } finally {
    await connection.close();
    await nativeConnection.close();
  }
}
