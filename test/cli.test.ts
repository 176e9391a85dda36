/** The command line as a user runs it: help on every command, the author tools (`definitions validate | hash | graph`), `stack down`. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDefinitionFile } from '../src/definitions/load';
import { definitionGraph } from '../src/definitions/graph';

const root = join(__dirname, '..');
const definitions = join(root, 'definitions');

function lockstep(...args: string[]) {
  const run = spawnSync(process.execPath, [join(root, 'bin', 'lockstep'), ...args], { encoding: 'utf8', cwd: root });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('validate passes every bundled definition, and exits 0', () => {
  const run = lockstep('definitions', 'validate');
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  for (const id of ['purchase-order', 'healthcare-claim', 'letter-of-credit', 'competitive-tender']) expect(run.stdout).toContain(`(${id} v1, 0x`);
});

test('validate reports every problem with file:line:column and the path, and exits 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-cli-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, ['id: bad', 'version: "1"', 'title: Bad', 'roles:', '  buyer: {}', 'steps:', '  - id: order', '    title: Order', '    actor: banker', '    visibility: [buyer, auditor]', '    ends: done', ''].join('\n'));
  const run = lockstep('definitions', 'validate', bad, join(definitions, 'purchase-order.yaml'));
  expect(run.code).toBe(1);
  expect(run.stderr).toContain('bad.yaml:9:12: /steps/0/actor: unknown role "banker"');
  expect(run.stderr).toContain('bad.yaml:10:25: /steps/0/visibility/1: visibility names unknown role "auditor"');
  expect(run.stdout).toContain('purchase-order.yaml: ok');
});

test('hash prints the agreed hash', () => {
  const file = join(definitions, 'letter-of-credit.yaml');
  const run = lockstep('definitions', 'hash', file);
  expect(run.code).toBe(0);
  expect(run.stdout.trim()).toBe(loadDefinitionFile(file).hash);
});

test('graph prints a Mermaid flowchart: role lanes, steps, a choice, a fork and join, a loop, end states', () => {
  const run = lockstep('definitions', 'graph', join(definitions, 'healthcare-claim.yaml'));
  expect(run.code).toBe(0);
  const graph = run.stdout;
  expect(graph.startsWith('flowchart LR\n')).toBe(true);
  expect(graph).toContain('subgraph role_insurer_a["Primary insurer (insurer-a)"]');
  expect(graph).toMatch(/step_approve_primary\["Approve primary coverage<br\/><small>human task: Approve primary coverage<\/small>/);
  // A choice: one state, several steps out of it.
  expect(graph).toContain('state_submitted --> step_approve_primary');
  expect(graph).toContain('state_submitted --> step_deny_claim');
  // A fork and a join.
  expect(graph).toContain('step_approve_primary --> state_remittance_due');
  expect(graph).toContain('step_approve_primary --> state_secondary_due');
  expect(graph).toContain('state_remitted --> step_close_claim');
  expect(graph).toContain('state_secondary_settled --> step_close_claim');
  // The loop back to "submitted", and the end states.
  expect(graph).toContain('step_provide_information --> state_submitted');
  expect(graph).toContain('state_denied((("denied")))');
  expect(graph).toBe(definitionGraph(loadDefinitionFile(join(definitions, 'healthcare-claim.yaml')).definition));
});

test('graph draws a partial order of steps with "after" edges and an outcome', () => {
  const graph = definitionGraph(loadDefinitionFile(join(definitions, 'purchase-order.yaml')).definition);
  expect(graph).toContain('start --> step_order');
  expect(graph).toContain('step_order -.->|after| step_accept');
  expect(graph).toContain('step_pay --> outcome_completed');
  expect(graph).toContain('outcome_completed((("completed")))');
});

const COMMANDS = [
  [], ['stack'], ['stack', 'up'], ['stack', 'down'], ['node'], ['definitions'], ['definitions', 'validate'], ['definitions', 'hash'], ['definitions', 'graph'],
  ['instances'], ['instances', 'start'], ['instances', 'list'], ['instances', 'show'], ['steps'], ['steps', 'take'], ['tasks'], ['export'], ['verify'],
];

test.each(COMMANDS.map((path) => [path.join(' '), path] as const))('lockstep %s --help describes the command', (_name, path) => {
  const run = lockstep(...path, '--help');
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(`Usage: lockstep ${path.join(' ')}`.trimEnd());
});

test('commands that call a node say how to name one, and exit 1', () => {
  const run = spawnSync(process.execPath, [join(root, 'bin', 'lockstep'), 'instances', 'list'], { encoding: 'utf8', cwd: mkdtempSync(join(tmpdir(), 'lockstep-cli-')), env: { PATH: process.env.PATH } });
  expect(run.status).toBe(1);
  expect(run.stderr).toContain('which node? pass --url and --api-key, or --party NAME');
});

test('definitions hash --json gives the id, version and hash', () => {
  const file = join(definitions, 'purchase-order.yaml');
  const run = lockstep('definitions', 'hash', file, '--json');
  expect(JSON.parse(run.stdout)).toEqual({ file, id: 'purchase-order', version: '1', hash: loadDefinitionFile(file).hash });
});

test('stack down in a folder without a stack says so and exits 0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-cli-'));
  const run = lockstep('stack', 'down', '--dir', dir);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(`no stack was running in ${dir}`);
});
