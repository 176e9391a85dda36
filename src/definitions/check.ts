/**
 * The rules a definition must obey that its JSON Schema cannot express: references between
 * roles, steps and states; schemas that compile; guards over known, shared data; deadlines with
 * known anchors; every step reachable; no cycle without a way out; at least one end.
 */
import type { Definition, StepDefinition } from '../model/definition';
import { compileStepSchema } from '../process/step-data';
import type { DataPart } from '../process/step-schema';
import { durationSeconds } from '../process/duration';
import { guardProblems, type Problem } from './guards';

export type { Problem } from './guards';

function roleProblems(def: Definition, step: StepDefinition, at: string): Problem[] {
  const problems: Problem[] = [];
  const roles = Object.keys(def.roles);
  if (!def.roles[step.actor]) problems.push({ path: `${at}/actor`, message: `unknown role "${step.actor}"; roles: ${roles.join(', ')}` });
  (step.visibility ?? []).forEach((role, j) => {
    if (!def.roles[role]) problems.push({ path: `${at}/visibility/${j}`, message: `visibility names unknown role "${role}"; roles: ${roles.join(', ')}` });
  });
  if (step.visibility && !step.visibility.includes(step.actor)) {
    problems.push({ path: `${at}/visibility`, message: `visibility must include the actor "${step.actor}", who writes the data` });
  }
  if (step.human) {
    if (!def.roles[step.human.assignee]) problems.push({ path: `${at}/human/assignee`, message: `human task assigned to unknown role "${step.human.assignee}"` });
    else if (step.human.assignee !== step.actor) {
      problems.push({ path: `${at}/human/assignee`, message: `human task assigned to "${step.human.assignee}", but only the actor "${step.actor}" can take step "${step.id}"` });
    }
  }
  return problems;
}

function schemaProblem(def: Definition, step: StepDefinition, part: DataPart, at: string): Problem | undefined {
  if (step[part] === undefined) return undefined;
  try {
    compileStepSchema(def, step, part);
    return undefined;
  } catch (error) {
    const e = error as Error & { missingRef?: string };
    if (e.missingRef !== undefined || /can't resolve reference/.test(e.message)) {
      const shared = Object.keys(def.$defs ?? {});
      return { path: `${at}/${part}`, message: `bad $ref: ${e.message}; shared $defs: ${shared.join(', ') || 'none'}` };
    }
    return { path: `${at}/${part}`, message: `invalid JSON Schema: ${e.message}` };
  }
}

function timingProblems(def: Definition, step: StepDefinition, at: string, stepIds: Set<string>): Problem[] {
  const problems: Problem[] = [];
  const windows = [
    ['deadline', step.deadline?.anchor, step.deadline?.within],
    ['notBefore', step.notBefore?.anchor, step.notBefore?.after],
  ] as const;
  for (const [field, anchor, duration] of windows) {
    if (anchor === undefined) continue;
    if (anchor === step.id) problems.push({ path: `${at}/${field}/anchor`, message: `${field} of step "${step.id}" is anchored on the step itself; anchor it on an earlier step` });
    else if (!stepIds.has(anchor)) problems.push({ path: `${at}/${field}/anchor`, message: `${field} anchored on unknown step "${anchor}"` });
    if (duration !== undefined && durationSeconds(duration) === undefined) {
      problems.push({ path: `${at}/${field}`, message: `bad duration ${JSON.stringify(duration)}: use whole seconds or a number with s, m, h or d` });
    }
  }
  return problems;
}

function stateProblems(def: Definition, step: StepDefinition, at: string): Problem[] {
  const problems: Problem[] = [];
  const states = def.states ?? {};
  for (const field of ['from', 'to'] as const) {
    (step[field] ?? []).forEach((id, j) => {
      if (!def.states) problems.push({ path: `${at}/${field}/${j}`, message: `step "${step.id}" uses state "${id}", but the definition declares no "states"` });
      else if (!states[id]) problems.push({ path: `${at}/${field}/${j}`, message: `unknown state "${id}"; states: ${Object.keys(states).join(', ')}` });
      else if (field === 'from' && states[id].end) {
        problems.push({ path: `${at}/from/${j}`, message: `step "${step.id}" starts from end state "${id}", where the instance has already ended` });
      }
    });
  }
  if ((step.from ?? []).length > 0 && (step.to ?? []).length === 0 && !step.ends) {
    problems.push({ path: at, message: `step "${step.id}" consumes state(s) ${step.from!.join(', ')} and leads nowhere: give it "to" or "ends"` });
  }
  return problems;
}

function afterProblems(def: Definition, step: StepDefinition, at: string, stepIds: Set<string>): Problem[] {
  return (step.after ?? []).flatMap((dep, j) => {
    if (dep === step.id) return [{ path: `${at}/after/${j}`, message: `step "${step.id}" cannot come after itself` }];
    if (!stepIds.has(dep)) return [{ path: `${at}/after/${j}`, message: `after names unknown step "${dep}"` }];
    return [];
  });
}

function findAfterCycle(def: Definition): string[] | undefined {
  const after = new Map(def.steps.map((s) => [s.id, s.after ?? []]));
  const state = new Map<string, 'visiting' | 'done'>();
  const trail: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...trail.slice(trail.indexOf(id)), id];
    state.set(id, 'visiting');
    trail.push(id);
    for (const dep of after.get(id) ?? []) {
      if (!after.has(dep) || dep === id) continue;
      const found = visit(dep);
      if (found) return found;
    }
    trail.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of after.keys()) {
    const found = visit(id);
    if (found) return found;
  }
  return undefined;
}

/** Over-approximates what can happen from the initial states: a step is reachable when all it waits for is. */
function reachability(def: Definition): { steps: Set<string>; states: Set<string> } {
  const states = new Set(Object.entries(def.states ?? {}).filter(([, s]) => s.initial).map(([id]) => id));
  const steps = new Set<string>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const step of def.steps) {
      if (steps.has(step.id)) continue;
      if ((step.after ?? []).every((d) => steps.has(d)) && (step.from ?? []).every((s) => states.has(s))) {
        steps.add(step.id);
        (step.to ?? []).forEach((s) => states.add(s));
        changed = true;
      }
    }
  }
  return { steps, states };
}

/** States from which some end can still be reached (a step that ends, or an end state). */
function statesWithExit(def: Definition): Set<string> {
  const good = new Set(Object.entries(def.states ?? {}).filter(([, s]) => s.end).map(([id]) => id));
  for (let changed = true; changed; ) {
    changed = false;
    for (const step of def.steps) {
      const leads = Boolean(step.ends) || (step.to ?? []).some((s) => good.has(s));
      if (!leads) continue;
      for (const s of step.from ?? []) {
        if (!good.has(s)) {
          good.add(s);
          changed = true;
        }
      }
    }
  }
  return good;
}

/** A loop through `state` back to itself, if the steps allow one. */
function loopThrough(def: Definition, state: string): string[] | undefined {
  const previous = new Map<string, string>();
  const queue = [state];
  while (queue.length > 0) {
    const current = queue.shift()!;
    for (const step of def.steps.filter((s) => (s.from ?? []).includes(current))) {
      for (const next of step.to ?? []) {
        if (next === state) {
          const path = [state];
          for (let at: string | undefined = current; at !== undefined && at !== state; at = previous.get(at)) path.splice(1, 0, at);
          return [...path, state];
        }
        if (!previous.has(next)) {
          previous.set(next, current);
          queue.push(next);
        }
      }
    }
  }
  return undefined;
}

function flowProblems(def: Definition): Problem[] {
  const problems: Problem[] = [];
  const states = def.states ?? {};
  if (def.states && !Object.values(states).some((s) => s.initial)) {
    problems.push({ path: '/states', message: 'no state is initial: mark the state an instance starts in with "initial: true"' });
  }
  const hasEnd = def.steps.some((s) => s.ends) || Object.values(states).some((s) => s.end);
  if (!hasEnd) problems.push({ path: '/steps', message: 'no step ends the instance: set "ends" on a step, or declare a state with "end"' });
  const cycle = findAfterCycle(def);
  if (cycle) problems.push({ path: '/steps', message: `steps wait for each other in a cycle: ${cycle.join(' -> ')}` });
  const reachable = reachability(def);
  def.steps.forEach((step, i) => {
    if (reachable.steps.has(step.id)) return;
    const waits = [...(step.after ?? []).filter((d) => !reachable.steps.has(d)).map((d) => `step "${d}"`), ...(step.from ?? []).filter((s) => !reachable.states.has(s)).map((s) => `state "${s}"`)];
    problems.push({ path: `/steps/${i}`, message: `unreachable step "${step.id}": it waits for ${waits.join(' and ')}, which no path from the start reaches` });
  });
  for (const id of Object.keys(states)) {
    if (!reachable.states.has(id)) problems.push({ path: `/states/${id}`, message: `unreachable state "${id}": no step leads to it from an initial state` });
  }
  if (hasEnd) {
    const exits = statesWithExit(def);
    for (const id of Object.keys(states)) {
      if (!reachable.states.has(id) || exits.has(id)) continue;
      const loop = loopThrough(def, id);
      problems.push({
        path: `/states/${id}`,
        message: loop ? `cycle without exit: ${loop.join(' -> ')} never reaches an end state` : `dead end: no step leads from state "${id}" to an end state`,
      });
    }
  }
  return problems;
}

export function semanticProblems(def: Definition): Problem[] {
  const problems: Problem[] = [];
  const stepIds = new Set<string>();
  def.steps.forEach((step, i) => {
    if (stepIds.has(step.id)) problems.push({ path: `/steps/${i}/id`, message: `duplicate step id "${step.id}"` });
    stepIds.add(step.id);
  });
  def.steps.forEach((step, i) => {
    const at = `/steps/${i}`;
    problems.push(...roleProblems(def, step, at), ...afterProblems(def, step, at, stepIds), ...stateProblems(def, step, at));
    problems.push(...timingProblems(def, step, at, stepIds), ...guardProblems(def, step, at));
    for (const part of ['input', 'output'] as const) {
      const schema = schemaProblem(def, step, part, at);
      if (schema) problems.push(schema);
    }
  });
  for (const [id, state] of Object.entries(def.states ?? {})) {
    if (state.end && state.initial) problems.push({ path: `/states/${id}`, message: `state "${id}" is both initial and an end: the instance would end before it starts` });
  }
  if (problems.some((p) => /unknown (role|state)|after names unknown|duplicate/.test(p.message))) return problems;
  return [...problems, ...flowProblems(def)];
}
