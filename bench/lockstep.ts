/**
 * The Lockstep workload: each instance of the benchmark definition binds its roles to the parties
 * round-robin (so instances start on, and steps come from, every node), and takes its steps
 * through the REST API of the party whose turn it is. A step is final once every participant's
 * node has reported it decided.
 */
import { ApiClient } from '../src/api/client';
import type { NetworkFile } from '../src/model/network';
import { BENCH_DEFINITION_ID, roleOf, stepAt } from './definition';
import type { DecisionWatch } from './decisions';
import { drive, type DriveResult, type StepSample, type Workload } from './driver';
import { lineItems } from './step-data';

const STEP_TIMEOUT_MS = 60_000;
const BUSY_RETRIES = 20;

interface InstanceContext {
  id: string;
  /** Party playing each role, by role index. */
  players: string[];
}

export async function runLockstep(network: NetworkFile, parties: string[], watch: DecisionWatch, workload: Workload, onStep: (done: number) => void): Promise<DriveResult> {
  const data = lineItems(workload.dataBytes);
  const apis = Object.fromEntries(parties.map((p) => [p, new ApiClient(network.parties[p]!.apiUrl, network.devApiKeys?.[p])]));
  const runner = {
    start: async (instance: number): Promise<InstanceContext> => {
      const players = parties.map((_, j) => parties[(instance + j) % parties.length]!);
      const roles = Object.fromEntries(players.map((party, j) => [roleOf(j), party]));
      const res = await apis[players[0]!]!.post<{ instance: { id: string } }>('/instances', { definition: BENCH_DEFINITION_ID, roles });
      if (res.status !== 201) throw new Error(`start on ${players[0]}: ${res.status} ${JSON.stringify(res.body)}`);
      return { id: res.body.instance.id, players };
    },
    step: async (context: InstanceContext, instance: number, k: number): Promise<StepSample> => {
      const { step, roleIndex } = stepAt(k, parties.length);
      const party = context.players[roleIndex]!;
      for (let attempt = 0; ; attempt++) {
        const requestedAt = Date.now();
        const res = await apis[party]!.post<{ envelopeHash?: string; detail?: string }>(`/instances/${context.id}/steps`, { step, input: { k, ...data } });
        const acceptedAt = Date.now();
        // 404 or 409 just after a start or a decision: the invitation or the previous step has not
        // reached this node's workflow yet. Anything else is a failure.
        if ((res.status === 404 || res.status === 409) && attempt < BUSY_RETRIES) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        if (res.status !== 202 || !res.body.envelopeHash) throw new Error(`${party} could not take ${step}: ${res.status} ${JSON.stringify(res.body)}`);
        const envelopeHash = res.body.envelopeHash;
        const finalAt = await watch.finalOnAll(envelopeHash, STEP_TIMEOUT_MS);
        return { instance, k, requestedAt, acceptedAt, finalAt, envelopeHash, status: watch.get(envelopeHash)?.status };
      }
    },
  };
  return drive(workload, runner, onStep);
}
