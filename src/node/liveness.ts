/**
 * Which node processes of this party are alive. Each process takes a fresh id when it starts
 * and refreshes a heartbeat document under it; work a process claimed (an idempotent request
 * still running, say) can be taken over once its owner's heartbeat has gone stale, which after a
 * crash is seconds, not the claim's whole lifetime.
 *
 * One document per process, written only by that process: safe on FerretDB, whose updates are
 * not atomic between writers.
 */
import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { Logger } from 'pino';

/** How often a process refreshes its heartbeat. */
export const HEARTBEAT_MS = 2_000;
/** A heartbeat older than this means its process is gone (several missed beats, for slow disks and GC pauses). */
export const STALE_AFTER_MS = 10_000;

interface HeartbeatDoc {
  _id: string;
  pid: number;
  startedAt: Date;
  seenAt: Date;
}

export class NodeLiveness {
  /** This process's id: new on every start, so a restarted node never passes for its dead predecessor. */
  readonly processId = randomUUID();
  private readonly heartbeats: Collection<HeartbeatDoc>;
  private timer?: NodeJS.Timeout;
  private beating?: Promise<void>;

  constructor(
    db: Db,
    private readonly log: Logger,
  ) {
    this.heartbeats = db.collection('heartbeats');
  }

  async start(): Promise<void> {
    const now = new Date();
    await this.heartbeats.insertOne({ _id: this.processId, pid: process.pid, startedAt: now, seenAt: now });
    this.timer = setInterval(() => {
      this.beating ??= this.heartbeats
        .updateOne({ _id: this.processId }, { $set: { seenAt: new Date() } })
        .then(
          () => undefined,
          // The database may be restarting; the next beat tries again, and others only see a stale beat.
          (err: unknown) => this.log.warn({ err }, 'heartbeat not written'),
        )
        .finally(() => (this.beating = undefined));
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    // A clean stop frees this process's claims at once.
    await this.heartbeats.deleteOne({ _id: this.processId }).catch(() => undefined);
  }

  /** Whether the process with this id is (as far as its heartbeat shows) still running. */
  async isAlive(processId: string | undefined): Promise<boolean> {
    if (processId === undefined) return false;
    if (processId === this.processId) return true;
    const beat = await this.heartbeats.findOne({ _id: processId });
    return beat !== null && beat.seenAt.getTime() > Date.now() - STALE_AFTER_MS;
  }
}
