/**
 * Hears each node decide steps, over the node's WebSocket event stream (step.confirmed and
 * step.rejected), and notes the local time: a step counts as final when every participant has
 * reported it.
 */
import WebSocket from 'ws';

interface Waiter {
  resolve: (at: number) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export interface Decided {
  /** Local time each party's event arrived. */
  at: Record<string, number>;
  status: string;
}

export class DecisionWatch {
  private readonly sockets: WebSocket[] = [];
  private readonly decided = new Map<string, Decided>();
  private readonly waiters = new Map<string, Waiter>();

  constructor(private readonly parties: string[]) {}

  /** Opens one subscription per party; resolves when all are open. */
  async connect(endpoints: Record<string, { apiUrl: string; apiKey?: string }>): Promise<void> {
    await Promise.all(
      this.parties.map(
        (party) =>
          new Promise<void>((resolve, reject) => {
            const { apiUrl, apiKey } = endpoints[party]!;
            const url = `${apiUrl.replace(/^http/, 'ws')}/api/v1/events/ws?types=step.confirmed,step.rejected`;
            const ws = new WebSocket(url, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
            this.sockets.push(ws);
            ws.once('open', () => resolve());
            ws.once('error', reject);
            ws.on('message', (raw: WebSocket.RawData) => this.onMessage(party, ws, raw));
          }),
      ),
    );
  }

  private onMessage(party: string, ws: WebSocket, raw: WebSocket.RawData): void {
    const now = Date.now();
    const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : Array.isArray(raw) ? Buffer.concat(raw).toString('utf8') : Buffer.from(raw).toString('utf8');
    const message = JSON.parse(text) as { type?: string; event?: { seq: number; type: string; envelopeHash?: string } };
    if (message.type !== 'event' || !message.event) return;
    const { seq, type, envelopeHash } = message.event;
    ws.send(JSON.stringify({ ack: seq }));
    if (!envelopeHash) return;
    const entry = this.decided.get(envelopeHash) ?? { at: {}, status: type === 'step.confirmed' ? 'confirmed' : 'rejected' };
    entry.at[party] ??= now;
    this.decided.set(envelopeHash, entry);
    if (this.parties.every((p) => entry.at[p] !== undefined)) {
      const waiter = this.waiters.get(envelopeHash);
      if (waiter) {
        clearTimeout(waiter.timer);
        this.waiters.delete(envelopeHash);
        waiter.resolve(Math.max(...Object.values(entry.at)));
      }
    }
  }

  /** Resolves with the time the last participant reported the step decided. */
  finalOnAll(envelopeHash: string, timeoutMs: number): Promise<number> {
    const entry = this.decided.get(envelopeHash);
    if (entry && this.parties.every((p) => entry.at[p] !== undefined)) return Promise.resolve(Math.max(...Object.values(entry.at)));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(envelopeHash);
        reject(new Error(`step ${envelopeHash} not decided on every party within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(envelopeHash, { resolve, reject, timer });
    });
  }

  get(envelopeHash: string): Decided | undefined {
    return this.decided.get(envelopeHash);
  }

  close(): void {
    for (const waiter of this.waiters.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('benchmark stopped'));
    }
    this.waiters.clear();
    for (const ws of this.sockets) ws.terminate();
  }
}
