/**
 * A definition as a Mermaid flowchart, so an author can look at the process instead of reading
 * it: one lane (subgraph) per role holding the steps it takes, states as rounded nodes between
 * them (a state with several outgoing steps is a choice, a step into several states a fork, a
 * step from several states a join, an edge back to an earlier state a loop), end states as
 * double circles. Pure: the CLI prints it, the REST API may serve it.
 */
import type { Definition, StepDefinition } from '../model/definition';
import { durationSeconds } from '../process/duration';

const nodeId = (kind: string, id: string): string => `${kind}_${id.replace(/[^A-Za-z0-9]/g, '_')}`;
const label = (text: string): string => `"${text.replace(/"/g, '#quot;')}"`;

function stepLabel(step: StepDefinition): string {
  const notes: string[] = [];
  if (step.human) notes.push(`human task: ${step.human.form}`);
  if (step.guard) notes.push(`guard${step.guard.message ? `: ${step.guard.message}` : ''}`);
  if (step.deadline) notes.push(`within ${durationSeconds(step.deadline.within) ?? step.deadline.within}s of ${step.deadline.anchor}`);
  if (step.notBefore) notes.push(`not before ${durationSeconds(step.notBefore.after) ?? step.notBefore.after}s after ${step.notBefore.anchor}`);
  if (step.visibility) notes.push(`visible to ${step.visibility.join(', ')}`);
  return label([step.title, ...notes.map((n) => `<small>${n}</small>`)].join('<br/>'));
}

export function definitionGraph(def: Definition): string {
  const lines = ['flowchart LR', `  %% ${def.id} v${def.version}: ${def.title}`];
  for (const [role, info] of Object.entries(def.roles)) {
    lines.push(`  subgraph ${nodeId('role', role)}[${label(info.title ? `${info.title} (${role})` : role)}]`);
    for (const step of def.steps.filter((s) => s.actor === role)) lines.push(`    ${nodeId('step', step.id)}[${stepLabel(step)}]`);
    lines.push('  end');
  }
  const states = def.states ?? {};
  for (const [id, state] of Object.entries(states)) {
    const name = state.title ?? id;
    if (!state.end) lines.push(`  ${nodeId('state', id)}([${label(name)}])`);
    else lines.push(`  ${nodeId('state', id)}(((${label(state.end === name ? name : `${name}: ${state.end}`)})))`);
  }
  const starts = def.steps.filter((s) => (s.after ?? []).length === 0 && (s.from ?? []).length === 0);
  const initial = Object.entries(states).filter(([, s]) => s.initial);
  if (starts.length > 0 || initial.length > 0) lines.push('  start((start))');
  for (const [id] of initial) lines.push(`  start --> ${nodeId('state', id)}`);
  for (const step of starts) lines.push(`  start --> ${nodeId('step', step.id)}`);
  const outcomes = new Set<string>();
  for (const step of def.steps) {
    const node = nodeId('step', step.id);
    for (const dep of step.after ?? []) lines.push(`  ${nodeId('step', dep)} -.->|after| ${node}`);
    for (const s of step.from ?? []) lines.push(`  ${nodeId('state', s)} --> ${node}`);
    for (const s of step.to ?? []) lines.push(`  ${node} --> ${nodeId('state', s)}`);
    if (step.ends) {
      outcomes.add(step.ends);
      lines.push(`  ${node} --> ${nodeId('outcome', step.ends)}`);
    }
  }
  for (const outcome of outcomes) lines.push(`  ${nodeId('outcome', outcome)}(((${label(outcome)})))`);
  return `${lines.join('\n')}\n`;
}
