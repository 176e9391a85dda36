/**
 * Baseline (a): the same number of Temporal round trips per step as Lockstep, without Lockstep.
 * One workflow per party per instance. The author's `step` Update runs one activity (Lockstep's
 * seal) and returns; the step's data (`--data-bytes`) goes in with the Update and on to that
 * activity, as a Lockstep proposal's goes to its publish activity. The driver then signals
 * `decided` to every party's workflow, which runs one activity (Lockstep's recordDecision). No
 * validation, signing, transfer, chain or database.
 */
import { condition, defineSignal, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';
import type { BaselineActivities } from './activities';

export const stepUpdate = defineUpdate<number, [number, unknown]>('step');
export const decidedSignal = defineSignal<[number]>('decided');
export const BASELINE_TASK_QUEUE = 'bench-baseline';

const act = proxyActivities<BaselineActivities>({ startToCloseTimeout: '30 seconds' });

export async function bareSteps(args: { key: string; steps: number }): Promise<void> {
  let decided = 0;
  let active = 0;
  setHandler(stepUpdate, async (k: number, data: unknown) => {
    active++;
    try {
      await act.seal(args.key, k, data);
      return k;
    } finally {
      active--;
    }
  });
  setHandler(decidedSignal, (k: number) => {
    active++;
    void act.record(args.key, k).finally(() => {
      decided++;
      active--;
    });
  });
  await condition(() => decided >= args.steps && active === 0);
}
