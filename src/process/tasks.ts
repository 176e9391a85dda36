/**
 * Which steps a party may take now in an instance, derived from the decided history (the same
 * rules the workflow applies), so the API can list them without asking every workflow.
 */
import type { Definition, StepDefinition } from '../model/definition';
import type { InstanceHeader } from '../model/instance';
import { nextSteps } from './rules';
import type { ProcessState } from './state';

export function stateFromConfirmed(confirmed: string[], ended: boolean): ProcessState {
  const done: ProcessState['done'] = {};
  confirmed.forEach((step, seq) => (done[step] = { envelopeHash: '', seq, author: '' }));
  return { done, seq: confirmed.length, ...(ended ? { ended: { outcome: 'ended', envelopeHash: '' } } : {}) };
}

/** Steps whose actor role `party` plays and whose predecessors are final. */
export function stepsFor(definition: Definition, header: InstanceHeader, state: ProcessState, party: string): StepDefinition[] {
  return nextSteps(definition, header, state).filter((s) => header.roles[s.actor] === party);
}
