/** What `lockstep verify` reports: named checks, grouped per bundle and per step. */
export interface Check {
  /** Short name, e.g. "signature", "pin", "rules". */
  name: string;
  ok: boolean;
  message: string;
}

export interface StepVerdict {
  seq: number;
  step: string;
  author: string;
  nonce: number;
  hash: string;
  status: string;
  ok: boolean;
  checks: Check[];
}

export interface EvidenceVerdict {
  ok: boolean;
  /** Checks on the bundle as a whole: format, definition, invitation, parties, chain, completeness. */
  bundle: Check[];
  steps: StepVerdict[];
}

export function pass(name: string, message: string): Check {
  return { name, ok: true, message };
}

export function fail(name: string, message: string): Check {
  return { name, ok: false, message };
}

/** Runs a check that may throw: a thrown error is that check failing, not the verifier crashing. */
export function attempt(name: string, run: () => Check): Check {
  try {
    return run();
  } catch (error) {
    return fail(name, (error as Error).message);
  }
}

export function verdictOf(bundle: Check[], steps: StepVerdict[]): EvidenceVerdict {
  return { ok: bundle.every((c) => c.ok) && steps.every((s) => s.ok), bundle, steps };
}

/** One line per check, steps in the bundle's order; for people reading a dispute. */
export function formatVerdict(v: EvidenceVerdict): string {
  const lines: string[] = [];
  const line = (c: Check) => `    ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.message}`;
  lines.push(`bundle: ${v.bundle.every((c) => c.ok) ? 'ok' : 'FAILED'}`, ...v.bundle.map(line));
  for (const s of v.steps) {
    lines.push(`step #${s.seq} ${s.step} by ${s.author} (nonce ${s.nonce}, ${s.status}, ${s.hash}): ${s.ok ? 'ok' : 'FAILED'}`, ...s.checks.map(line));
  }
  lines.push(v.ok ? 'verdict: the history is genuine' : 'verdict: the evidence does NOT hold');
  return `${lines.join('\n')}\n`;
}
