/**
 * Drives a fixed workload: `instances` instances, at most `concurrency` of them in progress at a
 * time, each taking `steps` steps one after the other (a step is taken once the previous one is
 * final everywhere). Used for Lockstep and for the bare-Temporal baseline alike, so both face the
 * same load. Stops taking new steps at the deadline; never runs unbounded.
 */
export interface Workload {
  instances: number;
  steps: number;
  concurrency: number;
  /** Absolute time (ms) after which no new step is requested. */
  deadline: number;
  /** JSON bytes of business data each step carries (bench/step-data.ts); 0 for none. */
  dataBytes: number;
}

export interface StepSample {
  instance: number;
  k: number;
  /** Local times (ms): request sent, request answered, final on every participant. */
  requestedAt: number;
  acceptedAt: number;
  finalAt: number;
  envelopeHash?: string;
  status?: string;
}

export interface DriveResult {
  samples: StepSample[];
  errors: string[];
  /** Steps per second over the window from the first request to the last final step. */
  stepsPerSecond: number;
  windowMs: number;
  /** True when the deadline cut the workload short. */
  truncated: boolean;
}

export interface Runner<T> {
  start(instance: number): Promise<T>;
  step(context: T, instance: number, k: number): Promise<StepSample>;
}

export async function drive<T>(workload: Workload, runner: Runner<T>, onStep: (done: number) => void = () => {}): Promise<DriveResult> {
  const samples: StepSample[] = [];
  const errors: string[] = [];
  let next = 0;
  let truncated = false;
  const worker = async (): Promise<void> => {
    while (next < workload.instances) {
      const instance = next++;
      if (Date.now() >= workload.deadline) {
        truncated = true;
        return;
      }
      try {
        const context = await runner.start(instance);
        for (let k = 0; k < workload.steps; k++) {
          if (Date.now() >= workload.deadline) {
            truncated = true;
            return;
          }
          samples.push(await runner.step(context, instance, k));
          onStep(samples.length);
        }
      } catch (error) {
        // One failed instance is reported, not fatal: the figures say how many steps completed.
        if (errors.length < 20) errors.push(`instance ${instance}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(workload.concurrency, workload.instances) }, worker));
  const first = Math.min(...samples.map((s) => s.requestedAt));
  const last = Math.max(...samples.map((s) => s.finalAt));
  const windowMs = samples.length > 0 ? last - first : 0;
  return { samples, errors, windowMs, stepsPerSecond: windowMs > 0 ? (samples.length * 1000) / windowMs : 0, truncated };
}
