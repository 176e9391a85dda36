/**
 * Human tasks as the Temporal Web UI shows them: which human steps this party's people may take
 * now, the search attributes that let a person list "open tasks for my role", and the Markdown
 * the UI renders as the workflow's summary and details. Pure functions of the workflow's state,
 * so they run inside the (deterministic) workflow and in the node alike.
 */
import type { Definition, StepDefinition } from '../src/model/definition';
import type { InstanceHeader } from '../src/model/instance';
import { rolesOf } from '../src/model/instance';
import { nextSteps } from '../src/process/rules';
import { stepsFor } from '../src/process/tasks';
import type { ProcessState } from '../src/process/state';
import { schemaOf } from '../src/process/step-schema';
import { completeTaskUpdate, type InstanceLinks, type PendingStep } from './messages';

export interface TaskAttributes {
  /** Roles whose people have an open task in the instance: `LockstepTaskRoles = "approver"` lists them. */
  LockstepTaskRoles: string[];
}

export function hasHumanSteps(definition: Definition): boolean {
  return definition.steps.some((s) => s.human);
}

/**
 * Human steps `party` may take now: enabled by the decided state, its role is the actor, and it
 * has not already proposed the step (a proposal waiting for the chain is no longer open).
 */
export function openHumanTasks(definition: Definition, header: InstanceHeader, state: ProcessState, party: string, pending: Iterable<PendingStep>): StepDefinition[] {
  const proposed = new Set([...pending].filter((p) => p.author === party).map((p) => p.step));
  return stepsFor(definition, header, state, party).filter((s) => s.human && !proposed.has(s.id));
}

export function taskAttributes(open: StepDefinition[]): TaskAttributes {
  return { LockstepTaskRoles: [...new Set(open.map((s) => s.human!.assignee))].sort() };
}

function instanceUrl(links: InstanceLinks | undefined, header: InstanceHeader): string | undefined {
  return links ? `${links.apiUrl}/api/v1/instances/${header.id}` : undefined;
}

function linkLine(links: InstanceLinks | undefined, header: InstanceHeader): string {
  const url = instanceUrl(links, header);
  if (!url) return `Instance \`${header.id}\``;
  // The REST API needs an API key: these are links to the data, not a way around access control.
  return `Instance [\`${header.id}\`](${url}) · [steps and their data](${url}/steps) · [open tasks](${links!.apiUrl}/api/v1/tasks?kind=human) (REST API of this node; send your API key)`;
}

/** One line naming the instance and its parties: the workflow's summary in the UI's lists. */
export function instanceSummary(definition: Definition, header: InstanceHeader): string {
  const roles = Object.entries(header.roles).map(([role, party]) => `${role}: ${party}`).join(', ');
  return `${definition.title} (${definition.id}) — ${roles}`;
}

/** Fixed at start: what the process is and where its data is. */
export function instanceStaticDetails(definition: Definition, header: InstanceHeader, party: string, links: InstanceLinks | undefined): string {
  const roles = Object.entries(header.roles).map(([role, p]) => `- **${definition.roles[role]?.title ?? role}** (\`${role}\`): ${p}`);
  const human = definition.steps.filter((s) => s.human && header.roles[s.actor] === party);
  return [
    `**${definition.title}** \`${definition.id}\` v${definition.version}, as seen by **${party}**`,
    ...(definition.description ? ['', definition.description] : []),
    '',
    ...roles,
    '',
    linkLine(links, header),
    ...(human.length > 0
      ? ['', `Human tasks for ${party}: ${human.map((s) => `${s.title} (\`${s.id}\`, ${s.human!.assignee})`).join('; ')}. The current details show the open one.`]
      : []),
  ].join('\n');
}

function taskSection(definition: Definition, header: InstanceHeader, step: StepDefinition): string[] {
  const human = step.human!;
  const schema = schemaOf(definition, step, 'input');
  const output = schemaOf(definition, step, 'output');
  return [
    `### Open task for ${human.assignee} (${header.roles[step.actor]}): ${step.title}`,
    '',
    ...(human.instructions ? [human.instructions, ''] : []),
    ...(step.description ? [step.description, ''] : []),
    `Form \`${human.form}\`. Input, validated against this JSON Schema:`,
    '',
    '```json',
    JSON.stringify(schema, null, 2),
    '```',
    '',
    ...(output ? ['Output (the decision), validated against this JSON Schema:', '', '```json', JSON.stringify(output, null, 2), '```', ''] : []),
    `**Complete it here:** Send an Update \`${completeTaskUpdate.name}\` with one JSON object:`,
    '',
    '```json',
    JSON.stringify({ step: step.id, input: {}, ...(output ? { output: {} } : {}) }),
    '```',
    '',
    `putting your input in \`input\`${output ? ' and your decision in `output`' : ''}. What the schemas or the process rules refuse is answered with the reason, and the task stays open.`,
  ];
}

/** The workflow's current details: open tasks with instructions, or what the instance waits for. */
export function instanceCurrentDetails(
  definition: Definition,
  header: InstanceHeader,
  state: ProcessState,
  party: string,
  pending: PendingStep[],
  links: InstanceLinks | undefined,
): string {
  const lines: string[] = [];
  if (state.ended) {
    lines.push(`**Ended: ${state.ended.outcome}** after ${state.seq} decided step(s).`);
  } else {
    const open = openHumanTasks(definition, header, state, party, pending);
    for (const step of open) lines.push(...taskSection(definition, header, step), '');
    const submitted = new Set(pending.filter((p) => p.author === party).map((p) => p.step));
    const others = nextSteps(definition, header, state).filter((s) => !open.includes(s) && !submitted.has(s.id));
    if (open.length === 0) lines.push(`**No open task for ${party}** (roles: ${rolesOf(header, party).join(', ') || 'none'}).`);
    if (others.length > 0) lines.push(`Other steps that may come next: ${others.map((s) => `${s.title} (\`${s.id}\`, ${s.actor}: ${header.roles[s.actor]})`).join('; ')}.`);
  }
  const waiting = pending.filter((p) => p.author === party);
  if (waiting.length > 0) {
    // Shown until the step is decided on chain; it may still lose to a rival sequenced first.
    lines.push('', `Submitted, waiting for confirmation on chain: ${waiting.map((p) => `\`${p.step}\` (envelope \`${p.envelopeHash.slice(0, 10)}…\`)`).join(', ')}.`);
  }
  const done = Object.entries(state.done).sort(([, a], [, b]) => a.seq - b.seq);
  if (done.length > 0) lines.push('', `Confirmed so far: ${done.map(([id, d]) => `\`${id}\` by ${d.author}`).join(', ')}.`);
  lines.push('', linkLine(links, header));
  return lines.join('\n');
}
