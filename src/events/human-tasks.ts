/**
 * Human-task events: after each change to an instance, a step marked `human` that this party may
 * now take is announced as `task.opened`; once it is final (or the instance ends) as
 * `task.completed`. Keys make each announcement happen once, however often this runs.
 */
import type { DefinitionRegistry } from '../definitions/registry';
import type { Store } from '../store/store';
import { stateFromConfirmed, stepsFor } from '../process/tasks';

export async function syncHumanTasks(store: Store, definitions: DefinitionRegistry, party: string, instanceId: string): Promise<void> {
  // The agreed part (from memory) says whether this party has human tasks at all; most processes
  // have none, and then this runs after every decision for nothing but that answer.
  const agreed = await store.agreedInstance(instanceId);
  if (!agreed) return;
  const { definition } = definitions.byAgreedHash(agreed.header.definitionHash, `instance ${instanceId}`);
  if (!definition.steps.some((s) => s.human && agreed.header.roles[s.actor] === party)) return;
  const doc = await store.instance(instanceId);
  if (!doc) return;
  const confirmedSteps = await store.confirmedSteps(instanceId);
  const confirmed = confirmedSteps.map((c) => c.step);
  const open = stepsFor(definition, doc.header, stateFromConfirmed(definition, confirmedSteps, doc.status === 'ended'), party).filter((s) => s.human);
  for (const step of open) {
    await store.events.emit({ type: 'task.opened', key: `task.opened:${instanceId}:${step.id}`, instanceId, step: step.id, data: { title: step.title, actor: step.actor, human: step.human } });
  }
  for (const step of definition.steps.filter((s) => s.human && doc.header.roles[s.actor] === party)) {
    const closed = confirmed.includes(step.id) || doc.status === 'ended';
    if (!closed || open.some((o) => o.id === step.id)) continue;
    // Only a task that was opened can be completed.
    if (await store.events.has(`task.opened:${instanceId}:${step.id}`)) {
      await store.events.emit({ type: 'task.completed', key: `task.completed:${instanceId}:${step.id}`, instanceId, step: step.id, data: { by: confirmed.includes(step.id) ? 'step confirmed' : 'instance ended' } });
    }
  }
}
