/**
 * How a process runs its Temporal workers as it starts and stops leading (unit test with
 * stand-in workers; the real ones run in test/replicas.test.ts): the workflow worker throughout,
 * the activity worker only while leading; stepping down resolves once the activities under way
 * have ended (local activities in workflow tasks too), so none runs here after it.
 */
import pino from 'pino';
import type { Worker } from '@temporalio/worker';
import { PartyWorkers, type WorkerKind } from '../src/node/workers';
import { NOT_LEADING } from '../workflows/messages';

function standIns() {
  const journal: string[] = [];
  let made = 0;
  const create = (kind: WorkerKind): Promise<Worker> => {
    const name = `${kind}#${++made}`;
    let state = 'RUNNING';
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    journal.push(`create ${name}`);
    return Promise.resolve({
      run: () => done,
      getState: () => state,
      shutdown: () => {
        journal.push(`shutdown ${name}`);
        state = 'STOPPED';
        // A task under way finishes a moment later.
        setTimeout(() => {
          journal.push(`stopped ${name}`);
          finish();
        }, 20);
      },
    } as unknown as Worker);
  };
  return { journal, workers: new PartyWorkers(create, pino({ level: 'silent' })) };
}

test('workflows throughout; activities only while leading, and stepping down waits for them', async () => {
  const { journal, workers } = standIns();
  await workers.start();
  await workers.lead();
  expect(journal).toEqual(['create workflows#1', 'create activities#2']);
  journal.length = 0;
  await workers.follow();
  expect(journal).toEqual(['shutdown activities#2', 'stopped activities#2']);
  journal.length = 0;
  await workers.lead();
  await workers.stop();
  expect(journal.slice(0, 1)).toEqual(['create activities#3']);
  expect(journal.slice(1).sort()).toEqual(['shutdown activities#3', 'shutdown workflows#1', 'stopped activities#3', 'stopped workflows#1'].sort());
});

test('changes asked for at once run in order; asking for the current role changes nothing', async () => {
  const { journal, workers } = standIns();
  await Promise.all([workers.start(), workers.lead(), workers.lead(), workers.follow(), workers.follow(), workers.lead()]);
  expect(journal).toEqual(['create workflows#1', 'create activities#2', 'shutdown activities#2', 'stopped activities#2', 'create activities#3']);
  await workers.stop();
});

test('local activities run only while leading, and stepping down waits for those under way', async () => {
  const { journal, workers } = standIns();
  await workers.start();
  await expect(workers.runLocally(() => Promise.resolve('ran'))).rejects.toMatchObject({ type: NOT_LEADING, nonRetryable: true });
  await workers.lead();
  await expect(workers.runLocally(() => Promise.resolve('ran'))).resolves.toBe('ran');
  let finish!: () => void;
  const underWay = workers.runLocally(
    () =>
      new Promise<void>((r) => {
        finish = () => {
          journal.push('local work done');
          r();
        };
      }),
  );
  journal.length = 0;
  const stepDown = workers.follow().then(() => journal.push('stepped down'));
  await new Promise((r) => setTimeout(r, 50));
  // The activity worker has stopped, but this process is still finishing its local work.
  expect(journal).toEqual(['shutdown activities#2', 'stopped activities#2']);
  finish();
  await Promise.all([underWay, stepDown]);
  expect(journal.slice(2)).toEqual(['local work done', 'stepped down']);
  await expect(workers.runLocally(() => Promise.resolve('ran'))).rejects.toMatchObject({ type: NOT_LEADING });
  await workers.stop();
});
