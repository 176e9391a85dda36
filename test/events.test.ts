/**
 * Events on the real stack: a WebSocket consumer that disconnects mid-run and reconnects gets
 * every event once, in order; webhooks are signed, retried with backoff until the receiver
 * answers, and end in the dead-letter list when it never does, from where they can be redelivered.
 */
import { createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import WebSocket from 'ws';
import { startTestNetwork, type TestNetwork } from './support/network';
import { eventually } from './support/eventually';
import { quietTemporalRuntime } from './support/quiet-runtime';
import type { ApiClient } from '../src/api/client';

const MAX_ATTEMPTS = 5;
const WINDOW = 3;
let net: TestNetwork;
let acme: ApiClient;
let globex: ApiClient;

beforeAll(async () => {
  quietTemporalRuntime();
  net = await startTestNetwork(['acme', 'globex'], 1, {
    env: {
      LOCKSTEP_WEBHOOK_BACKOFF_MS: '50',
      LOCKSTEP_WEBHOOK_MAX_BACKOFF_MS: '200',
      LOCKSTEP_WEBHOOK_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      LOCKSTEP_EVENTS_WINDOW: String(WINDOW),
    },
  });
  acme = net.api('acme');
  globex = net.api('globex');
}, 180_000);

afterAll(async () => {
  await net?.stop();
});

interface Received {
  seq: number;
  type: string;
  instanceId?: string;
}

/** A WebSocket consumer; with `autoAck` it acknowledges every event as it processes it. */
class Consumer {
  readonly events: Received[] = [];
  from = -1;
  private readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(party: string, query: string, key = net.stack.network.devApiKeys![party]!, private readonly autoAck = true) {
    const url = `${net.stack.network.parties[party]!.apiUrl.replace('http', 'ws')}/api/v1/events/ws?${query}`;
    this.ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('unexpected-response', (req, res) => {
        req.destroy(); // the refused upgrade's socket is ours to close
        reject(new Error(`HTTP ${res.statusCode}`));
      });
      this.ws.once('error', reject);
      this.ws.on('message', (raw) => {
        const msg = JSON.parse((raw as Buffer).toString('utf8'));
        if (msg.type === 'ready') {
          this.from = msg.from;
          resolve();
        } else if (msg.type === 'event' && this.ws.readyState === WebSocket.OPEN) {
          // Once closing, an event can no longer be acknowledged: it is not processed, and the
          // node delivers it again on the next connection.
          this.events.push({ seq: msg.event.seq, type: msg.event.type, instanceId: msg.event.instanceId });
          if (this.autoAck) this.ack(msg.event.seq);
        }
      });
    });
  }

  ack(seq: number): void {
    this.ws.send(JSON.stringify({ ack: seq }));
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.ws.once('close', resolve));
    this.ws.close();
    await closed;
  }
}

async function allEventsAfter(api: ApiClient, after: number): Promise<Received[]> {
  const res = await api.get(`/events?after=${after}&limit=500`);
  return res.body.events.map((e: any) => ({ seq: e.seq, type: e.type, instanceId: e.instanceId }));
}

async function startOrder(): Promise<string> {
  const res = await acme.post('/instances', { definition: 'purchase-order', roles: { buyer: 'acme', seller: 'globex' } });
  expect(res.status).toBe(201);
  return res.body.instance.id;
}

async function takeAndConfirm(api: ApiClient, id: string, step: string, input: unknown): Promise<void> {
  const waiting = api.post(`/instances/${id}/steps?wait=confirmed&timeout=60`, { step, input });
  await net.pendingTransactions(1);
  await net.mine(1);
  expect((await waiting).status).toBe(200);
}

test('a WebSocket consumer that reconnects mid-run receives every event once, in order', async () => {
  const first = new Consumer('acme', 'consumer=ledger');
  await first.opened;
  const from = first.from;
  const id = await startOrder();
  await eventually('instance on globex', async () => ((await globex.get(`/instances/${id}`)).status === 200 ? true : undefined));
  await takeAndConfirm(acme, id, 'order', { sku: 'A-1', quantity: 1, unitPrice: 3 });
  await eventually('some events on the first connection', () => Promise.resolve(first.events.length >= 2 ? true : undefined));
  await first.close();

  // While the consumer is away, the instance moves on.
  await eventually('order confirmed on globex', async () => ((await globex.get(`/instances/${id}/steps`)).body.steps[0]?.status === 'confirmed' ? true : undefined));
  await takeAndConfirm(globex, id, 'accept', { deliveryDate: '2026-12-01' });
  await eventually('accept confirmed on acme', async () => {
    const steps = (await acme.get(`/instances/${id}/steps`)).body.steps;
    return steps.length === 2 && steps.every((s: any) => s.status === 'confirmed') ? true : undefined;
  });

  const second = new Consumer('acme', 'consumer=ledger');
  await second.opened;
  const log = await allEventsAfter(acme, from);
  await eventually('the rest on the second connection', () => Promise.resolve(first.events.length + second.events.length >= log.length ? true : undefined));
  await second.close();

  const received = [...first.events, ...second.events];
  expect(received).toEqual(log);
  expect(received.map((e) => e.type)).toEqual(expect.arrayContaining(['instance.started', 'step.proposed', 'step.confirmed']));
  const seqs = received.map((e) => e.seq);
  expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));

  // Filters, and `from` instead of a stored position.
  const filtered = new Consumer('acme', `from=${from}&types=step.confirmed&instance=${id}`);
  await filtered.opened;
  const confirmed = log.filter((e) => e.type === 'step.confirmed' && e.instanceId === id);
  await eventually('filtered events', () => Promise.resolve(filtered.events.length >= confirmed.length ? true : undefined));
  await filtered.close();
  expect(filtered.events).toEqual(confirmed);
});

test('a consumer that does not acknowledge gets no more than the window, and everything once it does', async () => {
  const head = (await acme.get('/status')).body.events.head as number;
  const lazy = new Consumer('acme', `from=${head}`, undefined, false);
  await lazy.opened;
  for (let i = 0; i < WINDOW + 2; i++) await startOrder();
  const log = await eventually('events in the log', async () => {
    const events = await allEventsAfter(acme, head);
    return events.length >= WINDOW + 2 ? events : undefined;
  });
  await eventually('a full window', () => Promise.resolve(lazy.events.length >= WINDOW ? true : undefined));
  expect(lazy.events).toEqual(log.slice(0, WINDOW));
  for (let round = 0; round < log.length && lazy.events.length < log.length; round++) {
    const seen = lazy.events.length;
    lazy.ack(lazy.events.at(-1)!.seq);
    await eventually('more after an ack', () => Promise.resolve(lazy.events.length > seen ? true : undefined));
    expect(lazy.events.length).toBeLessThanOrEqual(seen + WINDOW);
  }
  await lazy.close();
  expect(lazy.events).toEqual(log.slice(0, lazy.events.length));
  expect(lazy.events.length).toBe(log.length);
});

test('a WebSocket without a valid key is refused with 401, a bad filter with 400', async () => {
  await expect(new Consumer('acme', 'from=0', 'wrong-key-000000000000').opened).rejects.toThrow('HTTP 401');
  await expect(new Consumer('acme', 'types=nonsense').opened).rejects.toThrow('HTTP 400');
});

describe('webhooks', () => {
  let receiver: Server;
  let base: string;
  const calls: Record<string, { headers: Record<string, string>; body: string }[]> = { flaky: [], down: [] };
  let downRecovers = false;

  beforeAll(async () => {
    const app = express();
    app.use(express.raw({ type: '*/*' }));
    app.post('/:name', (req, res) => {
      const name = req.params.name;
      const list = (calls[name] ??= []);
      const body = (req.body as Buffer).toString('utf8');
      list.push({ headers: req.headers as Record<string, string>, body });
      // Other instances' events may come too: "flaky" fails the first three attempts of each delivery.
      const attempt = list.filter((c) => JSON.parse(c.body).deliveryId === JSON.parse(body).deliveryId).length;
      const fail = name === 'flaky' ? attempt <= 3 : !downRecovers;
      res.status(fail ? 500 : 200).end();
    });
    receiver = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  test('a receiver failing three times gets the signed event on the fourth attempt; one that always fails ends dead and can be redelivered', async () => {
    const secret = 'whsec-test-0123456789abcdef';
    const flaky = await globex.post('/webhooks', { url: `${base}/flaky`, types: ['instance.started'], secret });
    expect(flaky.status).toBe(201);
    const down = await globex.post('/webhooks', { url: `${base}/down`, types: ['instance.started'] });
    expect(down.status).toBe(201);
    expect(down.body.secret).toEqual(expect.any(String));
    const id = await startOrder();

    const about = (name: string) => calls[name]!.filter((c) => JSON.parse(c.body).event.instanceId === id);
    await eventually('delivered to flaky', () => Promise.resolve(about('flaky').length >= 4 ? true : undefined));
    const fourth = about('flaky')[3]!;
    const [t, v1] = fourth.headers['lockstep-signature']!.split(',').map((p) => p.split('=')[1]);
    expect(v1).toBe(createHmac('sha256', secret).update(`${t}.${fourth.body}`).digest('hex'));
    const payload = JSON.parse(fourth.body);
    expect(payload.event).toEqual(expect.objectContaining({ type: 'instance.started', instanceId: id, seq: expect.any(Number) }));
    expect(new Set(about('flaky').map((c) => JSON.parse(c.body).deliveryId)).size).toBe(1);
    const seq = payload.event.seq as number;
    const delivered = await eventually('flaky delivery marked delivered', async () => {
      const list = (await globex.get(`/webhooks/${flaky.body.webhook.id}/deliveries`)).body.deliveries.filter((d: any) => d.seq === seq);
      return list[0]?.state === 'delivered' ? list : undefined;
    });
    expect(delivered).toEqual([expect.objectContaining({ attempts: 4 })]);

    const dead = await eventually('down delivery dead', async () => {
      const list = (await globex.get(`/webhooks/${down.body.webhook.id}/dead-letters`)).body.deliveries.filter((d: any) => d.seq === seq);
      return list.length > 0 ? list : undefined;
    });
    expect(dead).toEqual([expect.objectContaining({ state: 'dead', attempts: MAX_ATTEMPTS, lastError: 'HTTP 500' })]);
    expect(about('down')).toHaveLength(MAX_ATTEMPTS);

    downRecovers = true;
    const again = await globex.post(`/webhooks/${down.body.webhook.id}/deliveries/${dead[0].id}/redeliver`, {});
    expect(again.status).toBe(202);
    await eventually('redelivered', async () => {
      const list = (await globex.get(`/webhooks/${down.body.webhook.id}/deliveries`)).body.deliveries.filter((d: any) => d.seq === seq);
      return list[0]?.state === 'delivered' ? true : undefined;
    });
    expect(about('down')).toHaveLength(MAX_ATTEMPTS + 1);
    expect((await globex.get(`/webhooks/${down.body.webhook.id}/dead-letters`)).body.deliveries.filter((d: any) => d.seq === seq)).toEqual([]);
  });

  test('webhook requests are validated and scoped', async () => {
    const bad = await globex.post('/webhooks', { url: 'ftp://example', types: ['no.such'] });
    expect(bad.status).toBe(422);
    expect(bad.body.errors.map((e: any) => e.field)).toEqual(expect.arrayContaining(['/url']));
    // The metadata service: the node would send from inside its own network.
    const metadata = await globex.post('/webhooks', { url: 'http://169.254.169.254/latest/meta-data/' });
    expect(metadata.status).toBe(422);
    expect(metadata.body.errors).toEqual([{ field: '/url', message: expect.stringContaining('169.254.169.254 is a link-local address, which webhooks never go to') }]);
    expect(metadata.body.detail).toContain('webhook URL refused');
    expect((await globex.get('/webhooks/unknown-id')).status).toBe(404);
    const created = await globex.post('/webhooks', { url: `${base}/other` });
    expect((await globex.get('/webhooks')).body.webhooks.map((w: any) => w.id)).toContain(created.body.webhook.id);
    expect((await acme.get(`/webhooks/${created.body.webhook.id}`)).status).toBe(404); // another node, another app
    expect((await globex.request('DELETE', `/webhooks/${created.body.webhook.id}`)).status).toBe(200);
    expect((await globex.get(`/webhooks/${created.body.webhook.id}`)).status).toBe(404);
  });
});
