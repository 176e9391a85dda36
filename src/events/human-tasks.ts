/**
 * Human-task events: after each change to an instance, a step marked `human` that this party may
 * now take is announced as `task.opened`; once it is taken, the instance ends, or another step
 * takes the state it waited on, as `task.completed` (`by` says which). A step in a loop opens
 * again as a new spell, with its own events (`occurrence` 2, 3, ...). Keys make each
 * announcement happen once, however often this runs.
 */
import type { DefinitionRegistry } from '../definitions/registry';
import type { Store } from '../store/store';
import { taskOccurrences, type TaskOccurrence } from '../process/tasks';

export async function syncHumanTasks(store: Store, definitions: DefinitionRegistry, party: string, instanceId: string): Promise<void> {
  // The agreed part (from memory) says whether this party has human tasks at all; most processes
  // have none, and then this runs after every decision for nothing but that answer.
  const agreed = await store.agreedInstance(instanceId);
  if (!agreed) return;
  const { definition } = definitions.byAgreedHash(agreed.header.definitionHash, `instance ${instanceId}`);
  if (!definition.steps.some((s) => s.human && agreed.header.roles[s.actor] === party)) return;
  const doc = await store.instance(instanceId);
  if (!doc) return;
  const spells = taskOccurrences(definition, doc.header, await store.confirmedSteps(instanceId, doc, { withData: false }), doc.status === 'ended', party);
  // This runs after every decision, so each step's last two spells hold whatever changed since
  // the last run: one that closed, and one that opened with it (a step in a loop, taken again).
  const last = new Map(spells.map((s) => [s.step, s.occurrence]));
  const recent = spells.filter((s) => s.occurrence >= last.get(s.step)! - 1);
  for (const spell of recent) {
    const step = definition.steps.find((s) => s.id === spell.step)!;
    const opened = taskEventKey('task.opened', instanceId, spell);
    if (!spell.closedBy) {
      await store.events.emit({ type: 'task.opened', key: opened, instanceId, step: step.id, data: { title: step.title, actor: step.actor, human: step.human, occurrence: spell.occurrence } });
    } else if (await store.events.has(opened)) {
      // Only a task that was announced open is announced closed.
      await store.events.emit({ type: 'task.completed', key: taskEventKey('task.completed', instanceId, spell), instanceId, step: step.id, data: { by: spell.closedBy, occurrence: spell.occurrence } });
    }
  }
}

/** One key per spell; the first spell's has no number, as before loops had spells of their own. */
function taskEventKey(type: 'task.opened' | 'task.completed', instanceId: string, spell: TaskOccurrence): string {
  return `${type}:${instanceId}:${spell.step}${spell.occurrence > 1 ? `:${spell.occurrence}` : ''}`;
}
