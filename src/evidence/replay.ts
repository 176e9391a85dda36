/**
 * Replays the bundle's history through the process rules every node applies (`judge`, then
 * `applyStep`), in chain order, with chain time from the arbiter's own chain reads. A confirmed
 * step must pass the rules at its place; a rejected one must fail them for the reason recorded.
 */
import { ruleData } from '../model/envelope';
import { hashJson } from '../envelope/canonical';
import { LockstepError } from '../model/errors';
import type { EvidenceBundle, EvidenceStep } from '../model/evidence';
import { initialState, type ProcessState } from '../process/state';
import { applyStep, judge } from '../process/rules';
import { validateStepData, type StepPayload } from '../process/step-data';
import type { Definition, StepDefinition } from '../model/definition';
import { fail, pass, type Check } from './verdict';

export interface ReplayedStep {
  step: EvidenceStep;
  /** Block timestamp of the step's pin as read from the chain; absent when the pin was not found. */
  timestamp?: number;
}

/** One `rules` check per step, in the given (chain) order. */
export function replayRules(bundle: EvidenceBundle, history: ReplayedStep[]): Check[] {
  const definition = bundle.definition.document;
  // Keyed by what the definition really hashes to: a swapped definition never reuses a cached schema.
  const definitionKey = hashJson(definition);
  let state: ProcessState = initialState(definition);
  return history.map(({ step: s, timestamp }) => {
    const data = s.data ? ruleData(s.data) : undefined;
    const proposal = { step: s.envelope.step, author: s.envelope.author, ...data };
    let refusal: LockstepError | undefined;
    try {
      const rule = judge(definition, bundle.instance.header, state, proposal, timestamp, false, (d) => {
        if (data) validateInBundle(definitionKey, definition, d, data);
      });
      state = applyStep(state, rule, { envelopeHash: s.hash, author: s.envelope.author, timestamp, ...data }, definition);
    } catch (error) {
      if (!(error instanceof LockstepError)) throw error;
      refusal = error;
      state = { ...state, seq: state.seq + 1 };
    }
    return verdict(s, refusal);
  });
}

/**
 * A bundle's definition is whatever the file holds: a schema in it that cannot be compiled refuses
 * the step, naming the schema, rather than ending the verification (the integrity checks report
 * the definition itself).
 */
function validateInBundle(definitionKey: string, definition: Definition, step: StepDefinition, data: StepPayload): void {
  try {
    validateStepData(definitionKey, definition, step, data);
  } catch (error) {
    if (error instanceof LockstepError) throw error;
    const message = `the definition's schema for step "${step.id}" cannot be used: ${(error as Error).message}`;
    throw new LockstepError('validation_failed', message, [{ field: '/definition', message }]);
  }
}

function verdict(s: EvidenceStep, refusal: LockstepError | undefined): Check {
  if (s.status === 'confirmed') {
    return refusal ? fail('rules', `confirmed, but the definition forbids it here: ${refusal.message}`) : pass('rules', 'allowed by the definition at this point of the history');
  }
  if (!refusal) return fail('rules', `recorded as rejected (${s.rejection?.code ?? 'no reason'}), but the definition allows it at this point`);
  if (s.rejection && s.rejection.code !== refusal.code) {
    return fail('rules', `recorded as rejected for ${s.rejection.code}, but the rules refuse it for ${refusal.code}: ${refusal.message}`);
  }
  return pass('rules', `rejected, as the rules require: ${refusal.message}`);
}
