/**
 * `npm run demo`: starts the local stack, two party nodes (acme buys, globex sells), runs a
 * purchase order to the end through the REST API, prints each step with its chain reference as
 * it becomes final on both nodes, then tears everything down.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../stack/local-stack';
import { LOCKSTEP_SEARCH_ATTRIBUTES } from '../stack/search-attributes';
import { startPartyProcesses, type PartyProcesses } from '../stack/party-processes';
import { ApiClient } from '../api/client';
import type { StepView } from '../api/views';

const PARTIES = ['acme', 'globex'];
const CONFIRMATIONS = 2;
const BLOCK_TIME_MS = 1000;
const STEP_TIMEOUT_MS = 60_000;


const say = (line: string) => console.log(line);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFinal(apis: Record<string, ApiClient>, instanceId: string, envelopeHash: string): Promise<StepView> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let last: StepView | undefined;
  while (Date.now() < deadline) {
    const views = await Promise.all(
      PARTIES.map(async (p) => (await apis[p]!.get<{ steps: StepView[] }>(`/instances/${instanceId}/history`)).body.steps.find((s) => s.envelopeHash === envelopeHash)),
    );
    if (views.every((v) => v && v.status !== 'pending')) return views[0]!;
    last = views[0] ?? last;
    await sleep(200);
  }
  throw new Error(`step ${envelopeHash} not final on every node within ${STEP_TIMEOUT_MS / 1000} s (last seen: ${JSON.stringify(last)})`);
}

async function take(apis: Record<string, ApiClient>, party: string, instanceId: string, step: string, input: unknown): Promise<void> {
  const res = await apis[party]!.post(`/instances/${instanceId}/steps`, { step, input });
  if (res.status !== 202) throw new Error(`${party} could not take ${step}: ${res.status} ${JSON.stringify(res.body)}`);
  const hash = (res.body as { envelopeHash: string }).envelopeHash;
  say(`  … ${party} proposes "${step}" (envelope ${hash.slice(0, 10)}…), pending until its pin is ${CONFIRMATIONS} blocks deep`);
  const final = await waitFinal(apis, instanceId, hash);
  const c = final.chain!;
  say(`  ✔ #${final.seq} ${step.padEnd(7)} by ${party.padEnd(7)} ${final.status} on ${PARTIES.join(' and ')} — block ${c.blockNumber}, log ${c.logIndex}, tx ${c.transactionHash.slice(0, 12)}…`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-demo-'));
  let stack: Stack | undefined;
  let nodes: PartyProcesses | undefined;
  const teardown = async () => {
    await nodes?.stop();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void teardown().then(() => process.exit(130)));
  try {
    say('Starting the local stack (Temporal dev server, FerretDB, anvil) …');
    stack = await startStack({
      dir,
      parties: PARTIES,
      ports: 'free',
      mining: { mode: 'interval', blockTimeMs: BLOCK_TIME_MS },
      confirmations: CONFIRMATIONS,
      searchAttributes: { ...LOCKSTEP_SEARCH_ATTRIBUTES },
      log: (line) => say(`  ${line}`),
    });
    say(`Temporal Web UI: ${stack.network.temporal.uiUrl ?? '(headless)'} (namespaces: ${PARTIES.join(', ')})`);
    say(`Sequencer contract ${stack.network.chain.sequencer} on ${stack.network.chain.rpcUrl}`);
    say('Starting one Lockstep node per party …');
    nodes = await startPartyProcesses(stack.network, stack.networkPath, PARTIES, dir);
    const apis = Object.fromEntries(PARTIES.map((p) => [p, new ApiClient(stack!.network.parties[p]!.apiUrl, stack!.network.devApiKeys?.[p])]));

    const started = await apis.acme!.post('/instances', { definition: 'purchase-order', roles: { buyer: 'acme', seller: 'globex' } });
    if (started.status !== 201) throw new Error(`could not start an instance: ${JSON.stringify(started.body)}`);
    const instanceId = (started.body as { instance: { id: string } }).instance.id;
    say(`\nPurchase order ${instanceId}: acme is the buyer, globex the seller.`);

    await take(apis, 'acme', instanceId, 'order', { sku: 'BOLT-M8', quantity: 500, unitPrice: 0.12 });
    const refused = await apis.globex!.post(`/instances/${instanceId}/steps`, { step: 'pay', input: { amount: 60, reference: 'x' } });
    say(`  ✘ globex tries "pay" (the buyer's step): ${refused.status} — ${(refused.body as { detail: string }).detail}`);
    await take(apis, 'globex', instanceId, 'accept', { deliveryDate: '2026-12-01' });
    await take(apis, 'globex', instanceId, 'ship', { carrier: 'DHL', trackingId: 'JD0146' });
    await take(apis, 'acme', instanceId, 'pay', { amount: 60, reference: 'INV-7781' });

    const histories = await Promise.all(PARTIES.map(async (p) => (await apis[p]!.get<{ steps: StepView[] }>(`/instances/${instanceId}/history`)).body.steps));
    const fingerprint = (h: StepView[]) => JSON.stringify(h.map((s) => [s.seq, s.envelopeHash, s.chain?.blockNumber, s.chain?.logIndex]));
    const same = histories.every((h) => fingerprint(h) === fingerprint(histories[0]!));
    say(`\nHistories on ${PARTIES.join(' and ')}: ${same ? 'identical' : 'DIFFERENT'} (${histories[0]!.length} steps, same order, envelope hashes and chain positions).`);
    if (!same) throw new Error('the nodes disagree on the history');
    say('Tearing down …');
    await teardown();
    say('Done.');
  } catch (error) {
    console.error(`demo failed: ${(error as Error).message}`);
    await teardown();
    process.exitCode = 1;
  }
}

void main();
