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
import { hostname } from 'node:os';
import type { Collection, Db, UpdateOptions } from 'mongodb';
import type { Logger } from 'pino';

/** How often a process refreshes its heartbeat. */
export const HEARTBEAT_MS = 2_000;
/** A heartbeat older than this means its process is gone (several missed beats, for slow disks and GC pauses). */
export const STALE_AFTER_MS = 10_000;
/**
 * How long one heartbeat write may take before it is abandoned (aborted in the driver, which
 * closes its connection) so that the next beat can go: a write sent as the database restarts can
 * hang until the store's 30 s bound, and every beat with it: a leader would step down (its
 * heartbeat "could not be written") for a 5 s restart. The next beat goes at once, so a tick,
 * this bound and a beat come well within the STALE_AFTER_MS - HEARTBEAT_MS after which a leader
 * steps down.
 */
export const BEAT_TIMEOUT_MS = 3_000;
const PRUNE_AFTER_MS = 24 * 3600_000;

export interface HeartbeatDoc {
  _id: string;
  host: string;
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
  private stopped = false;
  /** When this process last wrote its heartbeat (ms since the epoch). */
  lastBeat = 0;

  constructor(
    db: Db,
    private readonly log: Logger,
    /** Where this process runs; tests give several instances in one process identities of their own. */
    private readonly identity: { host: string; pid: number } = { host: hostname(), pid: process.pid },
  ) {
    this.heartbeats = db.collection('heartbeats');
  }

  async start(): Promise<void> {
    const now = new Date();
    // Heartbeats of processes long gone are only clutter (their processes were the only writers).
    await this.heartbeats.deleteMany({ seenAt: { $lt: new Date(now.getTime() - PRUNE_AFTER_MS) } });
    await this.heartbeats.insertOne({ _id: this.processId, ...this.identity, startedAt: now, seenAt: now });
    this.lastBeat = now.getTime();
    this.timer = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** One beat at a time; one abandoned (BEAT_TIMEOUT_MS) is followed by the next at once, not a tick later. */
  private beat(): void {
    if (this.beating || this.stopped) return;
    const at = new Date();
    const signal = AbortSignal.timeout(BEAT_TIMEOUT_MS);
    this.beating = this.heartbeats
      // The driver honours `signal` on every command (its operation executor reads it), though its
      // types name it on reads only; test/store-writes.test.ts holds it to that for this write.
      .updateOne({ _id: this.processId }, { $set: { seenAt: at } }, { signal } as UpdateOptions)
      .then(
        () => {
          this.lastBeat = at.getTime();
        },
        // The database may be restarting; the next beat tries again, and others only see a stale beat.
        (err: unknown) => this.log.warn({ err }, 'heartbeat not written'),
      )
      .finally(() => {
        this.beating = undefined;
        if (signal.aborted) this.beat();
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.beating;
    // A clean stop frees this process's claims at once.
    await this.heartbeats.deleteOne({ _id: this.processId }).catch(() => undefined);
  }

  /** Whether the process with this id is (as far as its heartbeat shows) still running. */
  async isAlive(processId: string | undefined): Promise<boolean> {
    if (processId === undefined) return false;
    if (processId === this.processId) return true;
    return isRunning(await this.heartbeats.findOne({ _id: processId }), this.identity);
  }

  async heartbeat(processId: string): Promise<HeartbeatDoc | null> {
    return this.heartbeats.findOne({ _id: processId });
  }
}

/**
 * A fresh heartbeat means running, except that a process on this same host that no longer exists
 * is known dead at once: a node restarted after a crash need not wait for its predecessor's
 * heartbeat to go stale.
 */
function isRunning(beat: HeartbeatDoc | null, me: { host: string; pid: number }): boolean {
  if (!beat || beat.seenAt.getTime() <= Date.now() - STALE_AFTER_MS) return false;
  if (beat.host !== me.host) return true;
  // Our own pid under another process id: that process is gone and the pid came back to us.
  if (beat.pid === me.pid) return false;
  try {
    process.kill(beat.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
