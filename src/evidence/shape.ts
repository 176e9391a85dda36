/**
 * The bundle's shape, checked first: a malformed bundle (a step without its pin reference, a
 * hash that is not 32 bytes) is reported field by field, per step, instead of crashing a check.
 */
import Ajv2020 from 'ajv/dist/2020';
import { evidenceBundleSchema } from '../model/evidence';
import type { FieldError } from '../model/errors';
import { fieldErrors } from '../process/step-data';
import { fail, pass, verdictOf, type EvidenceVerdict, type StepVerdict } from './verdict';

const validate = new Ajv2020({ allErrors: true, strict: false }).compile(evidenceBundleSchema);

export function shapeProblems(value: unknown): FieldError[] {
  return validate(value) ? [] : fieldErrors(validate.errors, '');
}

const STEP_PATH = /^\/steps\/(\d+)(\/.*)?$/;

/** The verdict on a malformed bundle: each problem under the step it belongs to, the rest on the bundle. */
export function malformedVerdict(value: unknown, problems: FieldError[]): EvidenceVerdict {
  const byStep = new Map<number, FieldError[]>();
  const rest: FieldError[] = [];
  for (const p of problems) {
    const m = STEP_PATH.exec(p.field);
    if (m) byStep.set(Number(m[1]), [...(byStep.get(Number(m[1])) ?? []), p]);
    else rest.push(p);
  }
  const describe = (ps: FieldError[]) => ps.map((p) => `${p.field || '/'} ${p.message}`).join('; ');
  const rawSteps: unknown[] = Array.isArray((value as { steps?: unknown } | null)?.steps) ? (value as { steps: unknown[] }).steps : [];
  const steps: StepVerdict[] = rawSteps.map((item, i) => {
    const raw = item as { seq?: number; envelope?: { step?: string; author?: string; nonce?: number }; hash?: string; status?: string } | null;
    const ps = byStep.get(i);
    return {
      seq: Number(raw?.seq),
      step: String(raw?.envelope?.step),
      author: String(raw?.envelope?.author),
      nonce: Number(raw?.envelope?.nonce),
      hash: String(raw?.hash),
      status: String(raw?.status),
      ok: !ps,
      checks: [ps ? fail('shape', describe(ps)) : pass('shape', 'well formed; not checked further, as the bundle is malformed')],
    };
  });
  const bundle = [fail('shape', rest.length > 0 ? describe(rest) : `malformed step(s): ${[...byStep.keys()].join(', ')}; nothing else was checked`)];
  return verdictOf(bundle, steps);
}
