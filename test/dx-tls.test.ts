/**
 * Data exchange over mutual TLS, on the real stack: the local stack makes a throwaway CA and a
 * certificate per party, and nodes serve and deliver over HTTPS, each presenting its own
 * certificate. A step completes between two nodes that way; a client without a certificate, or
 * with one from another CA, is refused in the handshake; plain HTTP gets nowhere; and a client
 * certificate cannot be used to claim to be another party, nor to stand in for another party's
 * endpoint.
 */
import https from 'node:https';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import { makeLocalCertificates } from '../src/stack/certificates';
import type { StepView } from '../src/api/views';
import { DxClient } from '../src/exchange/client';
import type { Invitation } from '../src/model/instance';
import type { PartyEndpoint } from '../src/model/network';

const CONFIRMATIONS = 1;
let net: TestNetwork;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(['alpha', 'beta'], CONFIRMATIONS, { dxTls: 'mutual', env: { LOCKSTEP_DEFINITIONS: join(__dirname, 'fixtures', 'definitions') } });
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

function dxUrl(party: string): string {
  return net.stack.network.parties[party]!.dxUrl;
}

const pem = (file: string) => readFileSync(file, 'utf8');

/** Posts to beta's data-exchange endpoint with the given TLS client settings; resolves with the HTTP status, rejects if the connection fails. */
function postToBeta(tls: https.RequestOptions, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${dxUrl('beta')}/dx/v1/envelopes`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers }, timeout: 10_000, ...tls }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end('{}');
  });
}

test('a step completes between two nodes over mutual TLS', async () => {
  expect(dxUrl('alpha')).toMatch(/^https:\/\//);
  expect(dxUrl('beta')).toMatch(/^https:\/\//);
  const started = await net.api('alpha').post('/instances', { definition: 'race', roles: { host: 'alpha', left: 'beta', right: 'beta' } });
  expect(started.status).toBe(201);
  const instanceId = started.body.instance.id as string;
  // The invitation reached beta over TLS.
  await eventually('the instance on beta', async () => ((await net.api('beta').get(`/instances/${instanceId}`)).status === 200 ? true : undefined), 60_000);
  expect((await net.api('alpha').post(`/instances/${instanceId}/steps`, { step: 'open', input: {} })).status).toBe(202);
  await net.pendingTransactions(1);
  await net.mine(CONFIRMATIONS + 1);
  // Final on beta means the envelope arrived over TLS and its data was verified there.
  const steps = await eventually('open final on beta', async () => {
    const s = (await net.api('beta').get<{ steps: StepView[] }>(`/instances/${instanceId}/history`)).body.steps;
    return s.some((x) => x.step === 'open' && x.status === 'confirmed') ? s : undefined;
  }, 60_000);
  expect(steps.map((s) => [s.step, s.author, s.status])).toEqual([['open', 'alpha', 'confirmed']]);
  const log = readFileSync(net.nodes.logs.beta!, 'utf8');
  expect(log).toMatch(/"dxTransport":"mutual TLS"/);
  expect(log).toMatch(/"msg":"envelope accepted"/);
}, 120_000);

test('with mutual TLS required, a client without a certificate, or with one from another CA, is refused in the handshake', async () => {
  const tls = net.stack.network.devTls!;
  // Trusts the server, presents nothing.
  await expect(postToBeta({ ca: pem(tls.ca) })).rejects.toThrow(/certificate required|ECONNRESET|socket hang up/i);
  // Presents a certificate from a CA beta does not trust.
  const other = makeLocalCertificates(mkdtempSync(join(tmpdir(), 'lockstep-other-ca-')), ['alpha']);
  await expect(postToBeta({ ca: pem(tls.ca), cert: pem(other.alpha!.cert), key: pem(other.alpha!.key) })).rejects.toThrow(/unknown ca|ECONNRESET|socket hang up/i);
  // And the control: the genuine certificate gets through the handshake to the route (a shape error, not a TLS one).
  const genuine = await postToBeta({ ca: pem(tls.ca), cert: pem(tls.parties.alpha!.cert), key: pem(tls.parties.alpha!.key) });
  expect(genuine.status).toBe(422);
}, 60_000);

test('a certificate holder cannot claim to be another party', async () => {
  const tls = net.stack.network.devTls!;
  const res = await postToBeta({ ca: pem(tls.ca), cert: pem(tls.parties.alpha!.cert), key: pem(tls.parties.alpha!.key) }, { 'x-lockstep-party': 'gamma' });
  expect(res.status).toBe(403);
  expect(JSON.parse(res.body).detail).toMatch(/client certificate is alpha's, but the request claims to come from gamma/);
}, 30_000);

test('plain HTTP to the TLS endpoint gets no answer, and the client refuses a server it cannot verify', async () => {
  const plain = dxUrl('beta').replace(/^https:/, 'http:');
  await expect(fetch(`${plain}/dx/v1/envelopes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(10_000) })).rejects.toThrow();
  // Without the stack's CA, the server's certificate is not trusted.
  await expect(postToBeta({})).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
}, 30_000);

test("a node delivers only to the party it means: a server holding another party's certificate is refused", async () => {
  const tls = net.stack.network.devTls!;
  // Beta's certificate and key, serving somewhere a delivery to gamma is sent.
  const impostor = https.createServer({ cert: pem(tls.parties.beta!.cert), key: pem(tls.parties.beta!.key) }, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
  const client = new DxClient({ cert: pem(tls.parties.alpha!.cert), key: pem(tls.parties.alpha!.key), ca: pem(tls.ca), requireClientCert: true });
  const at = (name: string): PartyEndpoint => ({ name, address: '0x0', namespace: name, database: name, apiUrl: 'http://127.0.0.1:1', dxUrl: `https://127.0.0.1:${(impostor.address() as { port: number }).port}` });
  try {
    await expect(client.sendInvitation(at('gamma'), {} as Invitation, 'alpha', 5_000)).rejects.toThrow(/certificate is beta's, not gamma's/);
    // The control: the same server is accepted as the party its certificate names.
    await expect(client.sendInvitation(at('beta'), {} as Invitation, 'alpha', 5_000)).resolves.toBeUndefined();
  } finally {
    client.close();
    await new Promise((resolve) => impostor.close(resolve));
  }
}, 30_000);
