/**
 * `npm run demo`: the healthcare claim from the seeds, three parties on one machine. It starts the
 * local stack and one node per party (a clinic as the provider, two insurers), takes a claim to
 * the end through each party's REST API, with one round of "more information", a human approval
 * picked up from the primary insurer's task list, and a remittance advice that the secondary
 * insurer may not read. It prints a timeline as steps become final on every node: who did what,
 * which block sequenced it, and what each party holds of it. Exits 0 when every node agrees.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../stack/local-stack';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../stack/search-attributes';
import { startPartyProcesses, type PartyProcesses } from '../stack/party-processes';
import { ApiClient } from '../api/client';
import type { StepView } from '../api/views';
import { instanceWorkflowId } from '../../workflows/messages';

const PARTIES = { provider: 'clinic', 'insurer-a': 'northwind', 'insurer-b': 'southgate' } as const;
type Role = keyof typeof PARTIES;
const NAMES = Object.values(PARTIES);
const CONFIRMATIONS = 2;
const BLOCK_TIME_MS = 1000;
const STEP_TIMEOUT_MS = 90_000;

const say = (line = '') => console.log(line);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const short = (hash: string) => `${hash.slice(0, 10)}…`;

interface Demo {
  apis: Record<string, ApiClient>;
  instanceId: string;
}

async function histories(demo: Demo): Promise<Record<string, StepView[]>> {
  const entries = await Promise.all(
    NAMES.map(async (p) => {
      const res = await demo.apis[p]!.get<{ steps: StepView[] }>(`/instances/${demo.instanceId}/history`);
      if (res.status !== 200) throw new Error(`history on ${p}: ${res.status} ${JSON.stringify(res.body)}`);
      return [p, res.body.steps] as const;
    }),
  );
  return Object.fromEntries(entries);
}

/** Waits until the step is decided on every node; returns each node's view of it. */
async function waitFinal(demo: Demo, envelopeHash: string): Promise<Record<string, StepView>> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const all = await histories(demo);
    const views = NAMES.map((p) => all[p]!.find((s) => s.envelopeHash === envelopeHash));
    if (views.every((v) => v && v.status !== 'pending')) return Object.fromEntries(NAMES.map((p, i) => [p, views[i]!]));
    await sleep(250);
  }
  throw new Error(`step ${envelopeHash} not final on every node within ${STEP_TIMEOUT_MS / 1000} s`);
}

/** One timeline line: the step, its author, where the chain put it, and what each party holds. */
function timelineLine(step: string, role: Role, views: Record<string, StepView>): string {
  const v = views[PARTIES[role]]!;
  const c = v.chain!;
  const holds = NAMES.map((p) => `${p}: ${views[p]!.visible ? 'data' : 'hash only'}`).join(', ');
  return `  #${String(v.seq).padEnd(2)} ${step.padEnd(20)} by ${PARTIES[role].padEnd(9)} ${v.status.padEnd(9)} block ${String(c.blockNumber).padEnd(4)} log ${c.logIndex} tx ${short(c.transactionHash)}  [${holds}]`;
}

/** `output` only for a step that declares one (the adjudication's decision). */
async function take(demo: Demo, role: Role, step: string, input: unknown = {}, output?: unknown): Promise<Record<string, StepView>> {
  const party = PARTIES[role];
  const res = await demo.apis[party]!.post(`/instances/${demo.instanceId}/steps`, { step, input, ...(output !== undefined ? { output } : {}) });
  if (res.status !== 202) throw new Error(`${party} could not take ${step}: ${res.status} ${JSON.stringify(res.body)}`);
  const views = await waitFinal(demo, (res.body as { envelopeHash: string }).envelopeHash);
  say(timelineLine(step, role, views));
  return views;
}

async function run(stack: Stack, demo: Demo): Promise<void> {
  const ui = stack.network.temporal.uiUrl;
  const started = await demo.apis.clinic!.post('/instances', { definition: 'healthcare-claim', roles: PARTIES });
  if (started.status !== 201) throw new Error(`could not start a claim: ${JSON.stringify(started.body)}`);
  demo.instanceId = (started.body as { instance: { id: string } }).instance.id;
  say(`\nClaim ${demo.instanceId}: clinic is the provider, northwind the primary insurer, southgate the secondary.`);
  if (ui) say(`Watch it in the Temporal UI: ${ui}/namespaces/northwind/workflows/${instanceWorkflowId(demo.instanceId)}`);
  say(`Each step is pending until its pin is ${CONFIRMATIONS} blocks deep; a line is printed once it is final on all three nodes.\n`);

  await take(demo, 'provider', 'submit-claim', { claimRef: 'CLM-20261', patientRef: 'P-88213', procedureCode: '99213', serviceDate: '2026-11-02', amount: 480 });
  await take(demo, 'insurer-a', 'request-information', { question: 'Please send the operative report.' });
  await take(demo, 'provider', 'provide-information', { answer: 'Operative report OR-5521 attached.' });

  // A person at the primary insurer picks the approval up from the party's task list.
  const tasks = await demo.apis.northwind!.get<{ tasks: { instanceId: string; step: string; human: { form: string; instructions?: string } | null }[] }>('/tasks?kind=human');
  const approval = tasks.body.tasks.find((t) => t.instanceId === demo.instanceId && t.step === 'approve-primary');
  if (!approval?.human) throw new Error(`no human approval task open at northwind: ${JSON.stringify(tasks.body)}`);
  say(`  ⚑ human task open at northwind: "${approval.human.form}" — ${approval.human.instructions ?? ''}`);
  const greedy = await demo.apis.northwind!.post(`/instances/${demo.instanceId}/steps`, { step: 'approve-primary', input: {}, output: { coveredAmount: 500 } });
  say(`  ✘ approving 500.00 of a 480.00 claim is refused before anything is sent: ${greedy.status} ${(greedy.body as { detail: string }).detail}`);
  await take(demo, 'insurer-a', 'approve-primary', { reviewNote: 'Operative report confirms the procedure.' }, { coveredAmount: 400 });

  const remittance = await take(demo, 'insurer-a', 'send-remittance', { paymentRef: 'EFT-7781', paidAmount: 400, member: { memberId: 'M-30041', plan: 'gold' } });
  await take(demo, 'insurer-b', 'settle-secondary', { paidAmount: 80 });
  await take(demo, 'provider', 'close-claim');

  const onB = remittance.southgate!;
  const onProvider = remittance.clinic!;
  say('\nWhat southgate (insurer B) knows of the private remittance advice:');
  say(`  data: ${onB.visible ? 'HELD (should not be)' : 'none'}; envelope ${short(onB.envelopeHash)} signed by ${onB.author}, verified on receipt`);
  say(`  sequenced at block ${onB.chain!.blockNumber}, log ${onB.chain!.logIndex}, position ${onB.chain!.index} in its batch: the same place clinic records (${onProvider.chain!.blockNumber}/${onProvider.chain!.logIndex}/${onProvider.chain!.index})`);
  if (onB.visible || onB.input !== null) throw new Error('insurer B holds the remittance data');

  const all = await histories(demo);
  const fingerprint = (h: StepView[]) => JSON.stringify(h.map((s) => [s.seq, s.envelopeHash, s.status, s.chain?.blockNumber, s.chain?.logIndex, s.chain?.index]));
  const same = NAMES.every((p) => fingerprint(all[p]!) === fingerprint(all.clinic!));
  const outcome = (await demo.apis.southgate!.get<{ instance: { outcome: string | null } }>(`/instances/${demo.instanceId}`)).body.instance.outcome;
  say(`\nOutcome: ${outcome}. Histories on ${NAMES.join(', ')}: ${same ? 'identical' : 'DIFFERENT'} (${all.clinic!.length} steps, same order, envelope hashes and chain positions).`);
  if (!same) throw new Error('the nodes disagree on the history');
  if (outcome !== 'settled') throw new Error(`expected the claim to be settled, got ${outcome}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-demo-'));
  let stack: Stack | undefined;
  let nodes: PartyProcesses | undefined;
  const teardown = async (keepLogs = false) => {
    await nodes?.stop();
    await stack?.stop();
    if (!keepLogs) rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void teardown().then(() => process.exit(130)));
  try {
    say('Starting the local stack (Temporal dev server, FerretDB, anvil) …');
    stack = await startStack({
      dir,
      parties: NAMES,
      ports: 'free',
      mining: { mode: 'interval', blockTimeMs: BLOCK_TIME_MS },
      confirmations: CONFIRMATIONS,
      searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
      log: (line) => say(`  ${line}`),
    });
    say(`Temporal Web UI: ${stack.network.temporal.uiUrl ?? '(headless)'} (one namespace per party: ${NAMES.join(', ')})`);
    say(`Sequencer contract ${stack.network.chain.sequencer} on ${stack.network.chain.rpcUrl}, a block every ${BLOCK_TIME_MS / 1000} s`);
    say('Starting one Lockstep node per party …');
    nodes = await startPartyProcesses(stack.network, stack.networkPath, NAMES, dir);
    const network = stack.network;
    const apis = Object.fromEntries(NAMES.map((p) => [p, new ApiClient(network.parties[p]!.apiUrl, network.devApiKeys?.[p])]));
    await run(stack, { apis, instanceId: '' });
    say('Tearing down …');
    await teardown();
    say('Done.');
  } catch (error) {
    console.error(`demo failed: ${(error as Error).message}`);
    await teardown(true);
    console.error(`logs of the stack and the nodes are kept in ${dir}`);
    process.exitCode = 1;
  }
}

void main();
