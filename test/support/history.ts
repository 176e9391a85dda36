/**
 * A node's history of an instance as the REST API shows it, and a fingerprint of it for "every
 * node holds the same history" checks: order, verdicts, chain positions and the named winner.
 */
import { keccak256, toUtf8Bytes } from 'ethers';
import type { ApiClient } from '../../src/api/client';
import type { StepView } from '../../src/api/views';

/** The instance's history on one node; throws, naming the node, unless the API answers 200. */
export async function historyOn(api: ApiClient, party: string, instanceId: string): Promise<StepView[]> {
  const res = await api.get<{ steps: StepView[] }>(`/instances/${instanceId}/history`);
  if (res.status !== 200) throw new Error(`history of ${instanceId} on ${party}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.steps;
}

/** Equal for two nodes exactly when they decided the same steps, the same way, in the same chain order. */
export const historyFingerprint = (h: StepView[]): string =>
  keccak256(
    toUtf8Bytes(
      JSON.stringify(
        h.map((s) => [s.seq, s.step, s.author, s.status, s.envelopeHash, s.chain?.blockNumber, s.chain?.logIndex, s.chain?.index, s.rejection?.code ?? null, s.rejection?.winner ?? null]),
      ),
    ),
  );
