/**
 * Event subscriptions over WebSocket at /api/v1/events/ws, authenticated like REST.
 *
 * Query: `types` (comma-separated), `instance`, and where to start: `from` (deliver events after
 * this sequence number) or `consumer` (a name; the node remembers the last event this app's
 * consumer acknowledged and resumes after it). Without either, only new events are sent.
 * The server sends `{"type":"event","event":{…}}`; the client answers `{"ack": seq}`, meaning
 * "everything up to seq is processed". At most `window` events (LOCKSTEP_EVENTS_WINDOW) are unacknowledged at a time and
 * the socket's send buffer is bounded: when either is full the server stops reading the log
 * until the client catches up. Nothing is dropped; events go out once per connection, in order.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Collection, Db } from 'mongodb';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { EVENT_TYPES, type EventType } from '../model/event';
import { LockstepError } from '../model/errors';
import type { ApiCaller, ApiKeys } from '../api/auth';
import type { EventFilter, EventLog } from './log';
import { isDuplicateKey } from '../store/duplicate-key';

export const EVENTS_WS_PATH = '/api/v1/events/ws';
const MAX_BUFFERED_BYTES = 1_048_576;
const IDLE_POLL_MS = 500;

interface ConsumerDoc {
  _id: string;
  seq: number;
}

interface Subscription {
  filter: EventFilter;
  from?: number;
  consumer?: string;
}

function parseSubscription(url: URL): Subscription {
  const types = url.searchParams.get('types');
  const parsedTypes = types ? types.split(',').filter(Boolean) : [];
  const unknown = parsedTypes.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (unknown.length > 0) throw new LockstepError('bad_request', `unknown event types: ${unknown.join(', ')}; known: ${EVENT_TYPES.join(', ')}`, [{ field: '?types', message: 'unknown type' }]);
  const fromRaw = url.searchParams.get('from');
  const from = fromRaw === null ? undefined : Number(fromRaw);
  if (from !== undefined && (!Number.isInteger(from) || from < 0)) throw new LockstepError('bad_request', 'query parameter "from" must be a non-negative integer', [{ field: '?from', message: 'not a sequence number' }]);
  const consumer = url.searchParams.get('consumer') ?? undefined;
  if (consumer !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(consumer)) throw new LockstepError('bad_request', 'query parameter "consumer" must be 1-64 letters, digits, dots, dashes or underscores', [{ field: '?consumer', message: 'bad name' }]);
  const instanceId = url.searchParams.get('instance') ?? undefined;
  return { filter: { types: parsedTypes as EventType[], ...(instanceId ? { instanceId } : {}) }, from, consumer };
}

export class EventSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private readonly consumers: Collection<ConsumerDoc>;
  /** Acks still being written, per consumer: a reconnecting consumer waits for them first. */
  private readonly savingAcks = new Map<string, Promise<void>>();

  constructor(
    db: Db,
    private readonly events: EventLog,
    private readonly keys: ApiKeys,
    private readonly log: Logger,
    /** Unacknowledged events per connection before sending pauses. */
    private readonly window: number,
  ) {
    this.consumers = db.collection('event_consumers');
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://node');
      if (url.pathname !== EVENTS_WS_PATH) return refuse(socket, 404, 'no WebSocket endpoint here');
      let caller: ApiCaller;
      let sub: Subscription;
      try {
        caller = this.keys.authenticate(req);
        sub = parseSubscription(url);
      } catch (error) {
        const e = error as LockstepError;
        return refuse(socket, e.code === 'unauthorized' ? 401 : 400, e.message);
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => void this.serve(ws, caller, sub));
    });
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private consumerId(caller: ApiCaller, consumer: string): string {
    return `${caller.app}\u0000${consumer}`;
  }

  private async serve(ws: WebSocket, caller: ApiCaller, sub: Subscription): Promise<void> {
    const consumerId = sub.consumer ? this.consumerId(caller, sub.consumer) : undefined;
    if (consumerId) await this.savingAcks.get(consumerId);
    let position = sub.from ?? (consumerId ? (await this.consumers.findOne({ _id: consumerId }))?.seq : undefined) ?? (await this.events.readerStart());
    let acked = position;
    const sent: number[] = [];
    let open = true;
    let wake: (() => void) | undefined;
    const nudge = () => wake?.();

    ws.on('message', (raw: RawData) => {
      const seq = parseAck(raw);
      if (seq === undefined) return ws.send(JSON.stringify({ type: 'error', detail: 'send {"ack": <sequence number>}' }));
      // An ack past what this connection has read would move a durable consumer past events it never got.
      if (seq > position) return ws.send(JSON.stringify({ type: 'error', detail: `ack ${seq} is beyond the last event sent (${position})` }));
      if (seq <= acked) return;
      acked = seq;
      while (sent.length > 0 && sent[0]! <= acked) sent.shift();
      if (consumerId) {
        const saved = (this.savingAcks.get(consumerId) ?? Promise.resolve())
          .then(() => this.saveAck(consumerId, seq))
          .catch((err: unknown) => this.log.warn({ err }, 'could not store an event acknowledgement'));
        this.savingAcks.set(consumerId, saved);
        void saved.then(() => {
          if (this.savingAcks.get(consumerId) === saved) this.savingAcks.delete(consumerId);
        });
      }
      nudge();
    });
    ws.on('close', () => {
      open = false;
      nudge();
    });
    ws.on('error', () => undefined);
    this.events.appended.on('event', nudge);
    ws.send(JSON.stringify({ type: 'ready', from: position }));
    try {
      while (open) {
        const room = this.window - sent.length;
        if (room > 0 && ws.bufferedAmount < MAX_BUFFERED_BYTES) {
          const { events, readTo } = await this.events.readAfter(position, room, sub.filter);
          for (const event of events) {
            ws.send(JSON.stringify({ type: 'event', event }));
            sent.push(event.seq);
          }
          position = readTo;
          if (events.length > 0) continue;
        }
        // Wait for an ack, a new event or the poll interval (events from other replicas).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, IDLE_POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } catch (err) {
      this.log.warn({ err }, 'event subscription failed; closing it');
      ws.close(1011, 'server error');
    } finally {
      this.events.appended.off('event', nudge);
    }
  }

  private async saveAck(id: string, seq: number): Promise<void> {
    const moved = await this.consumers.updateOne({ _id: id, seq: { $lt: seq } }, { $set: { seq } });
    if (moved.matchedCount > 0) return;
    try {
      await this.consumers.insertOne({ _id: id, seq });
    } catch (error) {
      // Already there with a later ack: keep it.
      if (!isDuplicateKey(error)) throw error;
    }
  }
}

function parseAck(raw: RawData): number | undefined {
  try {
    const bytes = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
    const msg = JSON.parse(bytes.toString('utf8')) as { ack?: unknown };
    return typeof msg.ack === 'number' && Number.isInteger(msg.ack) && msg.ack >= 0 ? msg.ack : undefined;
  } catch {
    return undefined;
  }
}

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ type: 'about:blank', status, detail: message });
  socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Bad Request'}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
