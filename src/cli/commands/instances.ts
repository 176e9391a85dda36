/** `lockstep instances start | list | show`, `lockstep steps take`, `lockstep tasks`: an app's everyday calls, over the REST API. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { StepView } from '../../api/views';
import { call, nodeClient, nodeOptions, type NodeTargetOptions } from '../node-target';
import { CliError, emit, table } from '../output';

interface Instance {
  id: string;
  definitionId: string;
  roles: Record<string, string>;
  createdBy: string;
  createdAt: string;
  status: string;
  outcome: string | null;
}

interface Task {
  instanceId: string;
  definition: string;
  step: string;
  title: string;
  actor: string;
  human: { assignee?: string } | null;
}

function roleBinding(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const [role, party] = value.split('=');
  if (!role || !party) throw new CliError(`--role takes ROLE=PARTY, got "${value}"`);
  return { ...previous, [role]: party };
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${where} is not valid JSON: ${(error as Error).message}`);
  }
}

function stepLine(s: StepView): string[] {
  const chain = s.chain ? `block ${s.chain.blockNumber} (${s.chain.confirmations} conf.)` : 'not sequenced yet';
  const why = s.rejection ? ` — ${s.rejection.code}: ${s.rejection.message}` : '';
  return [s.seq === null ? '-' : `#${s.seq}`, s.step, s.author, `${s.status}${why}`, chain, s.envelopeHash];
}

function instanceLine(i: Instance): string[] {
  return [i.id, i.definitionId, i.outcome ? `${i.status} (${i.outcome})` : i.status, Object.entries(i.roles).map(([r, p]) => `${r}=${p}`).join(','), i.createdAt];
}

export function instanceCommands(program: Command): void {
  const instances = program.command('instances').description("start, list and show process instances on a party's node");

  nodeOptions(
    instances
      .command('start')
      .argument('<definition>', 'definition id, e.g. purchase-order')
      .requiredOption('--role <role=party>', 'bind a role to a party (repeat for each role)', roleBinding)
      .option('--idempotency-key <key>', 'makes a retried start safe')
      .description('start an instance of a definition, with each role bound to a party'),
  ).action(async (definition: string, opts: NodeTargetOptions & { role: Record<string, string>; idempotencyKey?: string }) => {
    const client = nodeClient(opts);
    const headers = opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : undefined;
    const body = await call<{ instance: Instance }>(client, 'starting the instance', (c) => c.post('/instances', { definition, roles: opts.role }, { headers }));
    emit(opts, body.instance, () => `started ${body.instance.id} (${definition}; ${Object.entries(body.instance.roles).map(([r, p]) => `${r}=${p}`).join(', ')})`);
  });

  nodeOptions(
    instances
      .command('list')
      .option('--definition <id>', 'only instances of this definition')
      .option('--status <status>', 'active or ended')
      .option('--limit <n>', 'at most this many (newest first)', '50')
      .description('list instances this party takes part in, newest first'),
  ).action(async (opts: NodeTargetOptions & { definition?: string; status?: string; limit: string }) => {
    const query = new URLSearchParams({ limit: opts.limit, ...(opts.definition ? { definition: opts.definition } : {}), ...(opts.status ? { status: opts.status } : {}) });
    const body = await call<{ instances: Instance[] }>(nodeClient(opts), 'listing instances', (c) => c.get(`/instances?${query.toString()}`));
    emit(opts, body.instances, () => (body.instances.length === 0 ? 'no instances' : table([['ID', 'DEFINITION', 'STATUS', 'ROLES', 'CREATED'], ...body.instances.map(instanceLine)])));
  });

  nodeOptions(instances.command('show').argument('<instance>', 'instance id').description('show an instance and its history: decided steps in chain order, then pending ones')).action(
    async (id: string, opts: NodeTargetOptions) => {
      const client = nodeClient(opts);
      const { instance, waitingForData } = await call<{ instance: Instance; waitingForData: unknown[] }>(client, 'reading the instance', (c) => c.get(`/instances/${encodeURIComponent(id)}`));
      const { steps } = await call<{ steps: StepView[] }>(client, 'reading its steps', (c) => c.get(`/instances/${encodeURIComponent(id)}/steps`));
      emit(opts, { instance, steps, waitingForData }, () =>
        [
          `${instance.id}: ${instance.definitionId}, ${instance.outcome ? `ended (${instance.outcome})` : instance.status}`,
          `roles: ${Object.entries(instance.roles).map(([r, p]) => `${r}=${p}`).join(', ')}; started by ${instance.createdBy} at ${instance.createdAt}`,
          steps.length === 0 ? 'no steps yet' : table([['SEQ', 'STEP', 'AUTHOR', 'STATUS', 'CHAIN', 'ENVELOPE'], ...steps.map(stepLine)]),
          ...(waitingForData.length > 0 ? [`waiting for the data of ${waitingForData.length} sequenced step(s)`] : []),
        ].join('\n'),
      );
    },
  );

  const steps = program.command('steps').description('take steps of an instance');
  nodeOptions(
    steps
      .command('take')
      .argument('<instance>', 'instance id')
      .argument('<step>', 'step id, e.g. order')
      .option('--input <json>', "the step's input as JSON", '{}')
      .option('--input-file <file>', "read the step's input from a JSON file")
      .option('--output <json>', "the step's output as JSON, for steps that declare an output schema")
      .option('--output-file <file>', "read the step's output from a JSON file")
      .option('--wait', 'wait until the step is decided on chain (confirmed or rejected)')
      .option('--timeout <seconds>', 'longest wait with --wait', '30')
      .option('--idempotency-key <key>', 'makes a retried request safe')
      .description('propose a step; it is final once its pin is confirmed on chain'),
  ).action(async (id: string, step: string, opts: NodeTargetOptions & { input: string; inputFile?: string; output?: string; outputFile?: string; wait?: boolean; timeout: string; idempotencyKey?: string }) => {
    const input = opts.inputFile ? parseJson(readFileSync(opts.inputFile, 'utf8'), opts.inputFile) : parseJson(opts.input, '--input');
    const output = opts.outputFile ? parseJson(readFileSync(opts.outputFile, 'utf8'), opts.outputFile) : opts.output !== undefined ? parseJson(opts.output, '--output') : undefined;
    const query = opts.wait ? `?wait=confirmed&timeout=${encodeURIComponent(opts.timeout)}` : '';
    const headers = opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : undefined;
    const body = await call<{ step?: StepView; envelopeHash?: string; status?: string }>(nodeClient(opts), `taking step "${step}"`, (c) =>
      c.post(`/instances/${encodeURIComponent(id)}/steps${query}`, { step, input, ...(output !== undefined ? { output } : {}) }, { headers }),
    );
    emit(opts, body, () => {
      if (body.step) return `${step}: ${body.step.status}${body.step.rejection ? ` (${body.step.rejection.code}: ${body.step.rejection.message})` : ''}, envelope ${body.step.envelopeHash}`;
      return `${step}: pending until its pin is confirmed, envelope ${body.envelopeHash}`;
    });
    if (body.step?.status === 'rejected') process.exitCode = 1;
  });

  nodeOptions(
    program
      .command('tasks')
      .option('--human', 'only human tasks')
      .option('--definition <id>', 'only instances of this definition')
      .option('--instance <id>', 'only this instance')
      .option('--limit <n>', 'at most this many (oldest instance first)', '100')
      .description('steps this party may take now, across its active instances'),
  ).action(async (opts: NodeTargetOptions & { human?: boolean; definition?: string; instance?: string; limit: string }) => {
    const limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit must be a whole number of 1 or more, got "${opts.limit}"`);
    const client = nodeClient(opts);
    const tasks: Task[] = [];
    let cursor: string | null = null;
    // Page by page (the API's pages hold at most 500) until the limit or the last page.
    do {
      const query = new URLSearchParams({ kind: opts.human ? 'human' : 'all', limit: String(Math.min(limit - tasks.length, 500)), ...(opts.definition ? { definition: opts.definition } : {}), ...(opts.instance ? { instance: opts.instance } : {}), ...(cursor ? { cursor } : {}) });
      const body: { tasks: Task[]; next: string | null } = await call(client, 'listing tasks', (c) => c.get(`/tasks?${query.toString()}`));
      tasks.push(...body.tasks);
      cursor = body.next;
    } while (cursor && tasks.length < limit);
    emit(opts, tasks, () =>
      [
        tasks.length === 0 ? 'no tasks' : table([['INSTANCE', 'DEFINITION', 'STEP', 'ROLE', 'KIND'], ...tasks.map((t) => [t.instanceId, t.definition, t.step, t.actor, t.human ? `human (${t.human.assignee ?? 'anyone'})` : 'system'])]),
        ...(cursor ? [`more tasks than --limit ${limit}`] : []),
      ].join('\n'),
    );
  });
}
