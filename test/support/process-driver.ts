/**
 * Drives process instances over the parties' REST APIs on a test network, for end-to-end suites
 * that run several instances at once: a miner that seals a block every few hundred milliseconds
 * (pausable, so tests can put rival pins in one block), and helpers that take a step and wait
 * until every participant has decided it.
 */
import type { TestNetwork } from './network';
import { eventually } from './eventually';

export interface StepView {
  seq: number | null;
  step: string;
  author: string;
  status: 'pending' | 'confirmed' | 'rejected';
  envelopeHash: string;
  chain: { blockNumber: number; blockHash: string; logIndex: number; index: number; transactionHash: string; timestamp: number } | null;
  input: unknown;
  visible: boolean;
  signature: string;
  rejection: { code: string; message: string; winner?: string } | null;
}

export class Miner {
  private running = true;
  private paused = false;
  private readonly loop: Promise<void>;

  constructor(private readonly net: TestNetwork, everyMs = 250) {
    this.loop = (async () => {
      while (this.running) {
        if (!this.paused) await this.net.mine(1);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

export class ProcessDriver {
  constructor(private readonly net: TestNetwork) {}

  async start(by: string, definition: string, roles: Record<string, string>): Promise<Instance> {
    const res = await this.net.api(by).post('/instances', { definition, roles });
    if (res.status !== 201) throw new Error(`start ${definition}: ${res.status} ${JSON.stringify(res.body)}`);
    const id = res.body.instance.id as string;
    const parties = [...new Set(Object.values(roles))];
    for (const p of parties) {
      await eventually(`instance ${id} known on ${p}`, async () => ((await this.net.api(p).get(`/instances/${id}`)).status === 200 ? true : undefined));
    }
    return new Instance(this.net, id, roles, parties);
  }
}

export class Instance {
  constructor(
    private readonly net: TestNetwork,
    readonly id: string,
    readonly roles: Record<string, string>,
    readonly parties: string[],
  ) {}

  async history(party: string): Promise<StepView[]> {
    const res = await this.net.api(party).get<{ steps: StepView[] }>(`/instances/${this.id}/history`);
    if (res.status !== 200) throw new Error(`history on ${party}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.steps;
  }

  /** Proposes a step as the party playing `role`; returns the raw response (202 or a problem). `output` only for steps that declare one. */
  async propose(role: string, step: string, input: unknown = {}, output?: unknown) {
    return this.net.api(this.roles[role]!).post(`/instances/${this.id}/steps`, { step, input, ...(output !== undefined ? { output } : {}) });
  }

  /** Waits until every participant has decided the step; returns each party's view of it. */
  async decided(envelopeHash: string): Promise<Record<string, StepView>> {
    const views: Record<string, StepView> = {};
    for (const p of this.parties) {
      views[p] = await eventually(`${envelopeHash} decided on ${p}`, async () => {
        const s = (await this.history(p)).find((h) => h.envelopeHash === envelopeHash);
        return s && s.status !== 'pending' ? s : undefined;
      }, 60_000);
    }
    return views;
  }

  /** Takes a step that must be accepted, and waits until it is confirmed on every node. */
  async take(role: string, step: string, input: unknown = {}, output?: unknown): Promise<string> {
    const res = await this.propose(role, step, input, output);
    if (res.status !== 202) throw new Error(`${step} by ${role}: ${res.status} ${JSON.stringify(res.body)}`);
    const hash = res.body.envelopeHash as string;
    const views = await this.decided(hash);
    for (const [p, v] of Object.entries(views)) {
      if (v.status !== 'confirmed') throw new Error(`${step} ${v.status} on ${p}: ${JSON.stringify(v.rejection)}`);
    }
    return hash;
  }

  /** The outcome every participant recorded, once all agree the instance has ended. */
  async outcome(): Promise<string> {
    const outcomes = new Set<string>();
    for (const p of this.parties) {
      const ended = await eventually(`instance ${this.id} ended on ${p}`, async () => {
        const res = await this.net.api(p).get(`/instances/${this.id}`);
        return res.body.instance.status === 'ended' ? (res.body.instance.outcome as string) : undefined;
      }, 60_000);
      outcomes.add(ended);
    }
    if (outcomes.size !== 1) throw new Error(`nodes disagree on the outcome: ${[...outcomes].join(', ')}`);
    return [...outcomes][0]!;
  }

  /** Every participant's decided history, reduced to what must be identical on all nodes. */
  async sharedHistories(): Promise<Record<string, unknown[]>> {
    const all: Record<string, unknown[]> = {};
    for (const p of this.parties) {
      all[p] = (await this.history(p)).map((s) => ({
        seq: s.seq,
        step: s.step,
        author: s.author,
        status: s.status,
        envelopeHash: s.envelopeHash,
        block: s.chain?.blockNumber,
        logIndex: s.chain?.logIndex,
        index: s.chain?.index,
        rejection: s.rejection?.code ?? null,
        winner: s.rejection?.winner ?? null,
      }));
    }
    return all;
  }
}
