/**
 * A randomised run on the real stack: three parties drive many instances of the `race`
 * definition (open, two notes, two claims that exclude each other) while faults are injected —
 * a node killed with SIGKILL, a peer's data exchange cut, the chain RPC cut, the Temporal dev
 * server and the database restarted. Everything the run does (which instances, which steps in
 * which order, pauses, which fault when and for how long) comes from one seed; timing between
 * processes still varies, which is the point of running it more than once.
 *
 * Apps behave as real integrations should: every request carries an Idempotency-Key and is
 * retried, with the same key, until the node gives a final answer.
 *
 * At the end every node must hold the same history for every instance, every accepted step must
 * be there exactly once, and each instance must end as the rules say: both notes and `open`
 * confirmed, exactly one claim confirmed (the first sequenced), a competing claim rejected as a
 * conflict naming the winner.
 */
import { historyFingerprint } from './history';
import type { StepView } from '../../src/api/views';
import type { ApiResponse } from '../../src/api/client';
import type { TestNetwork } from './network';
import { SeededRandom } from './seeded-random';

export const FAULT_KINDS = ['node-kill', 'peer-dx-down', 'chain-rpc-down', 'temporal-restart', 'database-restart'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const PARTIES = ['alpha', 'beta', 'gamma'] as const;
const ROLES = { host: 'alpha', left: 'beta', right: 'gamma' };
/** Who proposes which step of `race`. */
const AUTHOR: Record<string, string> = { open: 'alpha', 'note-host': 'alpha', 'note-left': 'beta', 'claim-left': 'beta', 'claim-right': 'gamma' };

export interface FaultRunOptions {
  seed: number;
  instances: number;
  /** Faults in the run: every kind once, in an order from the seed, then random kinds up to this count. */
  faults: number;
  /** Longest a request may take to get a final answer, retries included. */
  requestDeadlineMs: number;
  /** Longest the run waits for every instance to be decided on every node once all is proposed. */
  settleDeadlineMs: number;
  log: (line: string) => void;
}

export interface InjectedFault {
  kind: FaultKind;
  target?: string;
  downMs: number;
}

export interface FaultRunResult {
  seed: number;
  faults: InjectedFault[];
  instances: string[];
  /** Steps a node accepted (202) in all. */
  proposed: number;
  /** Accepted steps missing from some node's history. */
  lost: number;
  /** Steps present more than once in a node's history, or steps nobody proposed. */
  duplicated: number;
  /** Instances whose histories differ between nodes. */
  divergent: number;
  /** Instances that did not end as the rules say, with the reason. */
  wrongOutcomes: string[];
  /** Requests retried because a node was down, busy or restarting. */
  retries: number;
  summary: string;
}

interface Planned {
  id: string;
  /** Steps accepted by a node, by name, with their envelope hash. */
  accepted: Map<string, string>;
  contested: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


export async function runWithFaults(net: TestNetwork, opts: FaultRunOptions): Promise<FaultRunResult> {
  const rng = new SeededRandom(opts.seed);
  // Separate streams, so the fault plan does not shift when the instance plan draws differently.
  const faultRng = new SeededRandom(rng.int(0, 0xffffffff));
  let retries = 0;
  let stopping = false;
  const startedAt = Date.now();

  /** A request as a careful app makes it: retried with the same key until a final answer. */
  async function call(party: string, method: 'GET' | 'POST', path: string, body?: unknown, key?: string): Promise<ApiResponse> {
    const deadline = Date.now() + opts.requestDeadlineMs;
    let last = '';
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await net.api(party).request(method, path, body, key ? { headers: { 'Idempotency-Key': key } } : {});
        const inProgress = res.status === 409 && /in progress/.test(String(res.body?.detail ?? ''));
        if (res.status < 500 && !inProgress) return res;
        last = `${res.status} ${JSON.stringify(res.body).slice(0, 200)}`;
      } catch (error) {
        last = (error as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`${party} ${method} ${path}: no final answer after ${opts.requestDeadlineMs} ms (last: ${last})`);
      retries++;
      await sleep(Math.min(250 * attempt, 2_000));
    }
  }

  /** Why the last history read of each party failed: a stalled run's message must tell "unreadable" from "undecided". */
  const unreadable = new Map<string, string>();
  async function history(party: string, id: string): Promise<StepView[] | undefined> {
    try {
      const res = await net.api(party).get<{ steps: StepView[] }>(`/instances/${id}/history`);
      if (res.status === 200) return res.body.steps;
      unreadable.set(party, `${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
    } catch (error) {
      unreadable.set(party, (error as Error).message);
    }
    return undefined;
  }

  /** Polls `done` until it returns true; a string it returns says what is still missing. */
  async function until(what: string, deadlineMs: number, done: () => Promise<true | string>): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const state = await done();
      if (state === true) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what} (${state})`);
      await sleep(300);
    }
  }

  const decided = (h: StepView[] | undefined, step: string) => h?.some((s) => s.step === step && s.status !== 'pending') ?? false;

  // Both of the API's "instance has ended" refusals (docs/api.md, Errors): while the node still finishes the instance, and after.
  const ended = (res: { status: number; body: { errors?: { field: string; message: string }[] } }): boolean =>
    res.status === 409 &&
    (res.body.errors ?? []).some((e) => (e.field === '/instanceId' && e.message === 'ended') || (e.field === '/step' && e.message === 'no step may follow the end of an instance'));

  /**
   * Proposes a step; it must be accepted. The one exception is a contested claim: when its rival
   * is final on the claimant's node before this one gets through (sent later, or retried past a
   * fault), the instance has ended and the node refuses it at once, which is the race decided.
   * Returns whether it was so refused; the caller checks that the rival was accepted.
   */
  async function propose(plan: Planned, step: string, contested = false): Promise<'accepted' | 'ended'> {
    const author = AUTHOR[step]!;
    const res = await call(author, 'POST', `/instances/${plan.id}/steps`, { step, input: step.startsWith('note') ? { text: `${step} of ${plan.id}` } : {} }, `${plan.id}/${step}`);
    if (contested && ended(res)) {
      opts.log(`${plan.id}: ${step} refused, the instance had ended already`);
      return 'ended';
    }
    if (res.status !== 202) throw new Error(`${author} ${step} in ${plan.id}: ${res.status} ${JSON.stringify(res.body)}`);
    plan.accepted.set(step, res.body.envelopeHash as string);
    return 'accepted';
  }

  async function driveInstance(n: number, r: SeededRandom): Promise<Planned> {
    await sleep(r.int(0, 400) * n);
    const res = await call('alpha', 'POST', '/instances', { definition: 'race', roles: ROLES }, `fault-run-${opts.seed}-${n}`);
    if (res.status !== 201) throw new Error(`instance ${n}: ${res.status} ${JSON.stringify(res.body)}`);
    const plan: Planned = { id: res.body.instance.id as string, accepted: new Map(), contested: r.chance(0.6) };
    await until(`${plan.id} known to every participant`, opts.requestDeadlineMs, async () => {
      for (const p of PARTIES) if ((await history(p, plan.id)) === undefined) return `not on ${p}`;
      return true;
    });
    const notes = r.shuffle(['note-host', 'note-left']);
    const openFirst = r.chance(0.5);
    if (openFirst) await propose(plan, 'open');
    await Promise.all(
      notes.map(async (step, i) => {
        await sleep(r.int(0, 300) * i);
        await propose(plan, step);
      }),
    );
    if (!openFirst) await propose(plan, 'open');
    // The claims come once `open` and both notes are final where the claimants are: a claim ends
    // the instance, and a note after the end would (rightly) be rejected.
    await until(`${plan.id}'s first steps final for the claimants`, opts.settleDeadlineMs, async () => {
      for (const p of ['beta', 'gamma']) {
        const h = await history(p, plan.id);
        if (!h) return `history unreadable on ${p}: ${unreadable.get(p)}`;
        const undecided = ['open', 'note-host', 'note-left'].filter((s) => !decided(h, s));
        if (undecided.length > 0) return `${undecided.join(', ')} not decided on ${p}`;
      }
      return true;
    });
    const claims = plan.contested ? r.shuffle(['claim-left', 'claim-right']) : [r.pick(['claim-left', 'claim-right'])];
    const gap = r.int(0, 500);
    const answers = await Promise.all(
      claims.map(async (step, i) => {
        await sleep(gap * i);
        return propose(plan, step, claims.length > 1);
      }),
    );
    // A claim refused as "ended" is the race decided only if the other claim was accepted.
    if (answers.includes('ended') && !answers.includes('accepted')) throw new Error(`${plan.id}: both claims refused as "instance has ended"; neither was accepted`);
    return plan;
  }

  async function inject(fault: InjectedFault): Promise<void> {
    opts.log(`${((Date.now() - startedAt) / 1000).toFixed(1)} s fault: ${fault.kind}${fault.target ? ` (${fault.target})` : ''} for ${fault.downMs} ms`);
    switch (fault.kind) {
      case 'node-kill':
        await net.nodes.kill(fault.target!, 'SIGKILL');
        await sleep(fault.downMs);
        await net.nodes.start(fault.target!);
        return;
      case 'peer-dx-down':
        net.proxy(fault.target!).cut();
        await sleep(fault.downMs);
        net.proxy(fault.target!).restore();
        return;
      case 'chain-rpc-down':
        net.chainProxy().cut();
        await sleep(fault.downMs);
        net.chainProxy().restore();
        return;
      case 'temporal-restart':
        await net.stack.stopServer('temporal');
        await sleep(fault.downMs);
        await net.stack.startServer('temporal');
        return;
      case 'database-restart':
        await net.stack.stopServer('mongo', 'SIGKILL');
        await sleep(fault.downMs);
        await net.stack.startServer('mongo');
        return;
    }
  }

  const plannedFaults: InjectedFault[] = faultRng.shuffle(FAULT_KINDS).map((kind) => ({ kind, downMs: 0 }));
  while (plannedFaults.length < opts.faults) plannedFaults.push({ kind: faultRng.pick(FAULT_KINDS), downMs: 0 });
  const faults = plannedFaults.slice(0, Math.max(opts.faults, 0)).map((f) => ({
    ...f,
    downMs: faultRng.int(1_000, 5_000),
    ...(f.kind === 'node-kill' || f.kind === 'peer-dx-down' ? { target: faultRng.pick(PARTIES) } : {}),
  }));
  const gaps = faults.map(() => faultRng.int(1_000, 4_000));
  opts.log(`seed ${opts.seed}: ${opts.instances} instances, faults ${faults.map((f) => f.kind + (f.target ? `(${f.target})` : '')).join(', ')}`);

  // Blocks keep coming whatever the nodes go through, as on a real chain.
  const miner = net.mineInBackground(300);
  const injector = (async () => {
    for (const [i, fault] of faults.entries()) {
      await sleep(gaps[i]!);
      if (stopping) return;
      await inject(fault);
    }
  })();

  let plans: Planned[] = [];
  try {
    const instanceRngs = Array.from({ length: opts.instances }, () => new SeededRandom(rng.int(0, 0xffffffff)));
    plans = await Promise.all(instanceRngs.map((r, n) => driveInstance(n, r)));
    await injector;
    opts.log('all steps proposed and every fault over; waiting for every node to decide everything');
    await until('every instance decided on every node', opts.settleDeadlineMs, async () => {
      for (const plan of plans) {
        for (const p of PARTIES) {
          const h = await history(p, plan.id);
          if (!h || h.length < plan.accepted.size || h.some((s) => s.status === 'pending')) {
            return `${plan.id} on ${p}: ${h ? h.map((s) => `${s.step}:${s.status}`).join(' ') : 'unknown'} (accepted: ${[...plan.accepted.keys()].join(' ')})`;
          }
        }
      }
      return true;
    });
  } finally {
    stopping = true;
    await injector.catch(() => undefined);
    await miner.stop();
  }

  let lost = 0;
  let duplicated = 0;
  let divergent = 0;
  const wrongOutcomes: string[] = [];
  for (const plan of plans) {
    const histories = await Promise.all(PARTIES.map(async (p) => (await history(p, plan.id)) ?? []));
    if (new Set(histories.map(historyFingerprint)).size !== 1) divergent++;
    for (const h of histories) {
      const hashes = h.map((s) => s.envelopeHash);
      for (const hash of plan.accepted.values()) if (!hashes.includes(hash)) lost++;
      duplicated += hashes.length - new Set(hashes).size;
      duplicated += h.filter((s) => ![...plan.accepted.values()].includes(s.envelopeHash)).length;
    }
    const h = histories[0]!;
    const status = (step: string) => h.find((s) => s.step === step)?.status;
    for (const step of ['open', 'note-host', 'note-left']) if (status(step) !== 'confirmed') wrongOutcomes.push(`${plan.id}: ${step} is ${status(step)}`);
    const claims = h.filter((s) => s.step.startsWith('claim-'));
    const winners = claims.filter((s) => s.status === 'confirmed');
    if (winners.length !== 1) wrongOutcomes.push(`${plan.id}: ${winners.length} winning claims`);
    for (const loser of claims.filter((s) => s.status !== 'confirmed')) {
      if (loser.status !== 'rejected' || loser.rejection?.code !== 'conflict' || loser.rejection.winner !== winners[0]?.envelopeHash) {
        wrongOutcomes.push(`${plan.id}: losing claim ${loser.step} is ${loser.status} (${JSON.stringify(loser.rejection)})`);
      }
    }
  }
  const proposed = plans.reduce((n, p) => n + p.accepted.size, 0);
  const summary =
    `fault run (seed ${opts.seed}): ${faults.length} faults injected (${faults.map((f) => f.kind).join(', ')}), ` +
    `${plans.length} instances, ${proposed} steps accepted, ${retries} requests retried; ` +
    `steps lost ${lost}, applied twice ${duplicated}, divergent histories ${divergent}, wrong outcomes ${wrongOutcomes.length}`;
  return { seed: opts.seed, faults, instances: plans.map((p) => p.id), proposed, lost, duplicated, divergent, wrongOutcomes, retries, summary };
}
