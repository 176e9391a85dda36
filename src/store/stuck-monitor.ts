/**
 * Reconnects a MongoDB client whose server monitoring has stopped. The driver learns that a
 * server is back only from its monitor's heartbeats; after a connection error every operation
 * waits for one (server selection) and fails after `serverSelectionTimeoutMS` with the old error.
 * The monitor's heartbeat can hang for good: mongodb 7.8 writes it with no time bound on the
 * write, and a write to a connection the server reset as it died waits for a `drain` that never
 * comes (the same fault serial-writes.ts bounds for store commands). The seeded soak run met it:
 * after a database restart one node answered every request with 503 "read ECONNRESET" for two
 * minutes, its database long back up and the node's other client (heartbeats, leadership) fine.
 *
 * A heartbeat ends (succeeds or fails) within the monitor's connect timeout, plus the server's
 * wait for a streamed one; one under way for longer than `stuckAfterMs` means the monitor is
 * stuck, and the client is closed and connected again: a new topology, new monitors and a new
 * pool, under the same client, so every collection the node holds goes on working. Operations
 * under way then fail as after a dropped connection, and their callers retry.
 */
import type { MongoClient, ServerHeartbeatFailedEvent, ServerHeartbeatStartedEvent, ServerHeartbeatSucceededEvent } from 'mongodb';

/** Well past any heartbeat's own bound (connect timeout 30 s by default, plus 10 s for a streamed one). */
export const MONITOR_STUCK_AFTER_MS = 60_000;
const CHECK_EVERY_MS = 5_000;

/** What the watchdog needs of a client: its heartbeat events, and closing and connecting it. */
export type WatchedClient = Pick<MongoClient, 'on' | 'off' | 'close' | 'connect'>;

export interface StuckMonitorReport {
  server: string;
  stuckForMs: number;
}

export class StuckMonitorWatchdog {
  /** Each server's heartbeat under way, by address, with when it started. */
  private readonly started = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private reconnecting?: Promise<void>;
  /** Set while the client is closed and a connection attempt has failed. */
  private unconnected?: StuckMonitorReport;
  private readonly onStarted = (e: ServerHeartbeatStartedEvent) => {
    if (!this.started.has(e.connectionId)) this.started.set(e.connectionId, this.now());
  };
  private readonly onEnded = (e: ServerHeartbeatSucceededEvent | ServerHeartbeatFailedEvent) => {
    this.started.delete(e.connectionId);
  };

  constructor(
    private readonly client: WatchedClient,
    private readonly report: { stuck(r: StuckMonitorReport): void; reconnected(r: StuckMonitorReport): void; failed(r: StuckMonitorReport, error: unknown): void },
    private readonly stuckAfterMs = MONITOR_STUCK_AFTER_MS,
    private readonly now: () => number = Date.now,
  ) {}

  start(checkEveryMs = CHECK_EVERY_MS): void {
    this.client.on('serverHeartbeatStarted', this.onStarted);
    this.client.on('serverHeartbeatSucceeded', this.onEnded);
    this.client.on('serverHeartbeatFailed', this.onEnded);
    this.timer = setInterval(() => void this.check(), checkEveryMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.client.off('serverHeartbeatStarted', this.onStarted);
    this.client.off('serverHeartbeatSucceeded', this.onEnded);
    this.client.off('serverHeartbeatFailed', this.onEnded);
    await this.reconnecting;
  }

  /** Reconnects once if a heartbeat has been under way for too long (or a reconnection failed); resolves when done. */
  async check(): Promise<void> {
    if (this.reconnecting) return this.reconnecting;
    if (this.unconnected) {
      this.reconnecting = this.connect(this.unconnected).finally(() => (this.reconnecting = undefined));
      return this.reconnecting;
    }
    const now = this.now();
    const stuck = [...this.started].find(([, since]) => now - since > this.stuckAfterMs);
    if (!stuck) return;
    const report = { server: stuck[0], stuckForMs: now - stuck[1] };
    this.report.stuck(report);
    // The old topology's monitors go with it; their hung heartbeats never end.
    this.started.clear();
    this.reconnecting = this.client
      .close()
      .catch(() => undefined)
      .then(() => this.connect(report))
      .finally(() => (this.reconnecting = undefined));
    return this.reconnecting;
  }

  /**
   * Once closed, the client connects only when told to (operations meanwhile fail as unable to
   * reach the database): a failed attempt is made again at every check until one succeeds.
   */
  private async connect(report: StuckMonitorReport): Promise<void> {
    try {
      await this.client.connect();
      this.unconnected = undefined;
      this.report.reconnected(report);
    } catch (error) {
      this.unconnected = report;
      this.report.failed(report, error);
    }
  }
}
