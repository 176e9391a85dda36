/**
 * New-head notices over the chain node's WebSocket endpoint (`eth_subscribe` to `newHeads`), so
 * that the chain listener reads a block as soon as it exists instead of at its next poll: with a
 * poll every 250 ms, the last of three nodes heard of a block about 190 ms late on average.
 *
 * A notice is only a wake-up. The listener still reads everything over HTTP JSON-RPC and keeps
 * polling, so a lost or delayed notice, a dropped connection or a node without WebSocket costs
 * latency, never correctness. The connection is opened again after a drop, with backoff.
 */
import WebSocket from 'ws';
import type { Logger } from 'pino';

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
/** A subscription not confirmed by then is treated as failed (the socket is closed and retried). */
const SUBSCRIBE_TIMEOUT_MS = 10_000;

export class NewHeads {
  private socket?: WebSocket;
  private timer?: NodeJS.Timeout;
  private stopped = true;
  private backoffMs = RECONNECT_MIN_MS;
  /** Whether a failure was already logged as a warning since the last good subscription (no log flood). */
  private warned = false;

  constructor(
    private readonly url: string,
    /** Called on every new head the node announces (possibly several for one block after a reorganisation). */
    private readonly onHead: () => void,
    private readonly log: Logger,
  ) {
    if (!/^wss?:\/\//.test(url)) throw new Error(`chain WebSocket URL must start with ws:// or wss://, got ${url}`);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.terminate();
    this.socket = undefined;
  }

  private connect(): void {
    if (this.stopped) return;
    const socket = new WebSocket(this.url, { handshakeTimeout: SUBSCRIBE_TIMEOUT_MS });
    this.socket = socket;
    let subscription: string | undefined;
    const subscribeTimer = setTimeout(() => fail(new Error(`no answer to eth_subscribe within ${SUBSCRIBE_TIMEOUT_MS} ms`)), SUBSCRIBE_TIMEOUT_MS);
    const fail = (error: Error): void => {
      clearTimeout(subscribeTimer);
      if (this.socket !== socket) return;
      this.socket = undefined;
      socket.terminate();
      if (this.stopped) return;
      const line = { url: this.url, err: error.message, retryInMs: this.backoffMs };
      if (this.warned) this.log.debug(line, 'chain new-head notices unavailable; polling meanwhile');
      else this.log.warn(line, 'chain new-head notices unavailable; polling meanwhile');
      this.warned = true;
      this.timer = setTimeout(() => this.connect(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_MAX_MS);
    };
    socket.on('open', () => socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] })));
    socket.on('message', (data: WebSocket.RawData) => {
      let message: { id?: number; result?: unknown; error?: { message?: string }; method?: string; params?: { subscription?: string } };
      try {
        const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        message = JSON.parse(bytes.toString('utf8')) as typeof message;
      } catch {
        return fail(new Error('the chain node sent a message that is not JSON'));
      }
      if (message.id === 1) {
        clearTimeout(subscribeTimer);
        if (message.error || typeof message.result !== 'string') return fail(new Error(`eth_subscribe refused: ${message.error?.message ?? 'no subscription id'}`));
        subscription = message.result;
        this.backoffMs = RECONNECT_MIN_MS;
        if (this.warned) this.log.info({ url: this.url }, 'chain new-head notices resumed');
        this.warned = false;
        return;
      }
      if (message.method === 'eth_subscription' && message.params?.subscription === subscription) this.onHead();
    });
    socket.on('error', (error: Error) => fail(error));
    socket.on('close', (code: number) => fail(new Error(`connection closed (code ${code})`)));
  }
}
