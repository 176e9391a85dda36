/**
 * The party's Temporal workers. Every process of the party runs the instance workflows' tasks
 * (pure, deterministic, no store writes); the leading process alone also runs the activities,
 * which write the party's database (see leadership.ts). They are two workers on the one task
 * queue: the SDK allows one worker per kind of task and queue in a process, and the workflow
 * worker (with its cache of running workflows) then stays as leadership comes and goes.
 *
 * Recording a decision also runs as a local activity, inside the workflow task, in whichever
 * process holds it: no round trip through Temporal's queues. `runLocally` lets it run only while
 * this process leads, and stepping down waits for those under way, as for the activity worker's;
 * elsewhere it fails with NOT_LEADING and the workflow queues the same activity for the leader.
 */
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { NOT_LEADING } from '../../workflows/messages';

export type WorkerKind = 'workflows' | 'activities';

interface Running {
  worker: Worker;
  run: Promise<void>;
}

export class PartyWorkers {
  private workflows?: Running;
  private activities?: Running;
  private leading = false;
  /** Local activities under way in this process. */
  private readonly localWork = new Set<Promise<unknown>>();
  /** Changes run one after another, in the order asked for. */
  private changing: Promise<void> = Promise.resolve();

  constructor(
    /** Makes a worker on the party's task queue for one kind of task. */
    private readonly create: (kind: WorkerKind) => Promise<Worker>,
    private readonly log: Logger,
  ) {}

  /** Workflow tasks, from now until stop. */
  start(): Promise<void> {
    return this.change(async () => {
      this.workflows ??= await this.launch('workflows');
    });
  }

  /** Activities too: this process leads. */
  lead(): Promise<void> {
    return this.change(async () => {
      this.activities ??= await this.launch('activities');
      this.leading = true;
    });
  }

  /** No activities: another process leads. Resolves once the activities under way (local ones too) have ended. */
  follow(): Promise<void> {
    return this.change(async () => {
      this.leading = false;
      const old = this.activities;
      this.activities = undefined;
      await Promise.all([this.retire(old), this.localDone()]);
    });
  }

  /** Runs a local activity's work if this process leads; otherwise fails it with NOT_LEADING (not retried). */
  async runLocally<T>(work: () => Promise<T>): Promise<T> {
    if (!this.leading) {
      throw ApplicationFailure.create({
        message: 'this process does not lead its party; the leader runs the activity',
        type: NOT_LEADING,
        nonRetryable: true,
        // Expected on every replica that holds a workflow task: logged at debug level, not as a warning.
        category: ApplicationFailureCategory.BENIGN,
      });
    }
    const running = work();
    this.localWork.add(running);
    try {
      return await running;
    } finally {
      this.localWork.delete(running);
    }
  }

  stop(): Promise<void> {
    return this.change(async () => {
      this.leading = false;
      const [activities, workflows] = [this.activities, this.workflows];
      this.activities = this.workflows = undefined;
      await Promise.all([this.retire(activities), this.retire(workflows), this.localDone()]);
    });
  }

  private change(work: () => Promise<void>): Promise<void> {
    const next = this.changing.then(work);
    this.changing = next.catch(() => undefined);
    return next;
  }

  private async launch(kind: WorkerKind): Promise<Running> {
    const worker = await this.create(kind);
    const run = worker.run().catch((err: unknown) => this.log.warn({ err, kind }, 'worker stopped with an error'));
    return { worker, run };
  }

  private async localDone(): Promise<void> {
    await Promise.allSettled([...this.localWork]);
  }

  /** Shuts a worker down; resolves once the tasks under way have ended. */
  private async retire(running: Running | undefined): Promise<void> {
    if (!running) return;
    // Only a running worker can be shut down; one that stopped with an error is done already.
    if (running.worker.getState() === 'RUNNING') running.worker.shutdown();
    await running.run;
  }
}
