/**
 * Keys and secrets never reach a log. A two-party network (data exchange over TLS, debug logging)
 * runs a full step with a webhook subscribed, and is provoked on its error paths (a webhook that
 * fails, a peer's API key presented to the wrong node, a refused delivery); then every node's log
 * and every log of the stack's servers is searched for each party's chain key (with and without
 * 0x), API key and TLS key, each instance's pin secret, and the webhook signing secrets.
 */
import { createServer, type Server } from 'node:http';
import https from 'node:https';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import type { StepView } from '../src/api/views';

const CONFIRMATIONS = 1;
const PARTIES = ['alpha', 'beta'];
let net: TestNetwork;
let receiver: Server;
let hooksReceived = 0;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(PARTIES, CONFIRMATIONS, { dxTls: 'tls', env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'definitions'), LOCKSTEP_LOG_LEVEL: 'debug', LOCKSTEP_WEBHOOK_BACKOFF_MS: '50' } });
  receiver = createServer((req, res) => {
    hooksReceived += 1;
    req.resume();
    res.end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
}, 240_000);

afterAll(async () => {
  await new Promise((resolve) => receiver?.close(resolve));
  await net?.stop();
});

/** Every log file: the nodes' own, and whatever the stack's servers write under logs/. */
function logFiles(): string[] {
  const files = Object.values(net.nodes.logs);
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else files.push(file);
    }
  };
  walk(join(net.dir, 'logs'));
  return files;
}

/** Posts JSON to a party's data-exchange endpoint over TLS, trusting the stack's CA; resolves with the status. */
function postDx(party: string, route: string, body: unknown): Promise<number> {
  const { network } = net.stack;
  return new Promise((resolve, reject) => {
    const req = https.request(`${network.parties[party]!.dxUrl}${route}`, { method: 'POST', ca: readFileSync(network.devTls!.ca), headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** The base64 body of a PEM key, without its armour lines: what a leak would contain. */
function pemBody(file: string): string {
  return readFileSync(file, 'utf8').split('\n').filter((line) => line && !line.startsWith('-----')).join('');
}

test('a full step with webhooks and refusals at debug level logs no key or secret', async () => {
  const { network } = net.stack;
  const port = (receiver.address() as { port: number }).port;
  const chosenSecret = `whsec-${'c'.repeat(10)}-${Date.now()}`;
  const hooks = [
    await net.api('alpha').post('/webhooks', { url: `http://127.0.0.1:${port}/hook`, secret: chosenSecret }),
    await net.api('beta').post('/webhooks', { url: `http://127.0.0.1:${port}/hook` }),
    // A subscriber that is not there: its deliveries fail and are retried, which the node logs.
    await net.api('alpha').post('/webhooks', { url: 'http://127.0.0.1:9/gone', secret: `${chosenSecret}-gone` }),
  ];
  expect(hooks.map((h) => h.status)).toEqual([201, 201, 201]);
  const webhookSecrets = hooks.map((h) => h.body.secret as string);

  const started = await net.api('alpha').post('/instances', { definition: 'race', roles: { host: 'alpha', left: 'beta', right: 'beta' } });
  const instanceId = started.body.instance.id as string;
  await eventually('the instance on beta', async () => ((await net.api('beta').get(`/instances/${instanceId}`)).status === 200 ? true : undefined), 60_000);
  expect((await net.api('alpha').post(`/instances/${instanceId}/steps`, { step: 'open', input: {} })).status).toBe(202);
  await net.pendingTransactions(1);
  await net.mine(CONFIRMATIONS + 1);
  await eventually('open final on beta', async () => {
    const steps = (await net.api('beta').get<{ steps: StepView[] }>(`/instances/${instanceId}/history`)).body.steps;
    return steps.some((s) => s.step === 'open' && s.status === 'confirmed') ? true : undefined;
  }, 60_000);
  await eventually('webhook deliveries', () => Promise.resolve(hooksReceived >= 2 ? true : undefined), 30_000);

  // Error paths: beta's API key at alpha's node, a delivery refused by beta's endpoint.
  const wrongNode = await fetch(`${network.parties.alpha!.apiUrl}/api/v1/instances`, { headers: { authorization: `Bearer ${network.devApiKeys!.beta!}` } });
  expect(wrongNode.status).toBe(401);

  const mongo = await MongoClient.connect(network.mongodb.uri);
  let pinSecrets: string[];
  let invitation: { header: unknown; secret: string; invitationSignature: string };
  try {
    pinSecrets = (await Promise.all(PARTIES.map((p) => mongo.db(network.parties[p]!.database).collection<{ secret: string }>('instances').find({}).toArray()))).flat().map((d) => d.secret);
    invitation = (await mongo.db(network.parties.alpha!.database).collection<typeof invitation>('instances').findOne({}))!;
  } finally {
    await mongo.close();
  }
  expect(pinSecrets.length).toBe(2);
  // The genuine invitation, secret and all, with a signature that is not alpha's: refused, logged, recorded.
  const badSignature = `0x${'11'.repeat(65)}`;
  expect(await postDx('beta', '/dx/v1/invitations', { header: invitation.header, secret: invitation.secret, signature: badSignature })).toBe(401);

  // Stopped first, so every line the nodes meant to write is on disk.
  await net.nodes.stop();
  const secrets: Array<[string, string]> = [];
  for (const party of PARTIES) {
    const key = network.devKeys![party]!;
    secrets.push([`${party} chain key`, key], [`${party} chain key without 0x`, key.replace(/^0x/, '')], [`${party} API key`, network.devApiKeys![party]!]);
    secrets.push([`${party} TLS key`, pemBody(network.devTls!.parties[party]!.key)]);
  }
  pinSecrets.forEach((s, i) => secrets.push([`pin secret ${i}`, s], [`pin secret ${i} without 0x`, s.replace(/^0x/, '')]));
  webhookSecrets.forEach((s, i) => secrets.push([`webhook secret ${i}`, s]));

  const files = logFiles();
  const nodeLog = files.filter((f) => f.endsWith('.log')).map((f) => readFileSync(f, 'utf8')).join('\n');
  // The logs are really there, at debug level, and cover the step and the failing webhook.
  expect(nodeLog).toMatch(/"level":20/);
  expect(nodeLog).toMatch(/"msg":"envelope accepted"/);
  expect(nodeLog).toMatch(/"msg":"webhook delivery failed"/);
  expect(nodeLog).toMatch(/"msg":"data exchange refused a request"/);
  // The search reads what it should: an id that is no secret is found the same way.
  expect(nodeLog.toLowerCase()).toContain(instanceId.toLowerCase());
  const leaks: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8').toLowerCase();
    for (const [what, secret] of secrets) if (text.includes(secret.toLowerCase())) leaks.push(`${what} in ${file}`);
  }
  console.log(`secrets: ${secrets.length} searched in ${files.length} log files, ${leaks.length} found`);
  expect(leaks).toEqual([]);
}, 180_000);
