/**
 * Which process of a party runs the work there must be one of: the batcher (one chain account,
 * one nonce sequence), the chain listener with its signalling, the webhook dispatcher, and
 * everything that updates shared documents in the party's database: the workflow activities and
 * the data-exchange endpoint (on FerretDB two processes updating one document lose a change,
 * see src/store/serial-writes.ts). The other processes serve the REST API and workflow tasks.
 *
 * Leadership is held in generations: `leader:<n>` documents, each created by a plain insert, so
 * of two processes campaigning for generation n + 1 exactly one succeeds (a unique `_id` is the
 * one thing FerretDB and MongoDB both guarantee between writers). The newest generation's owner
 * leads while its heartbeat (liveness.ts) is fresh; once it is not, any other process may insert
 * the next generation. A leader that sees a newer generation, or could not write its own
 * heartbeat for longer than others wait, stops its work at once.
 */
import type { Collection, Db } from 'mongodb';
import type { Logger } from 'pino';
import { HEARTBEAT_MS, STALE_AFTER_MS, type NodeLiveness } from './liveness';
import { isDuplicateKey } from '../store/duplicate-key';


interface LeaderDoc {
  _id: string;
  generation: number;
  owner: string;
  since: Date;
}

export interface LeaderWork {
  start(): void | Promise<void>;
  stop(): Promise<void>;
}

export interface Leader {
  generation: number;
  owner: string;
}

export class Leadership {
  private readonly docs: Collection<LeaderDoc>;
  /** The newest generation seen so far; generations only grow, so probing starts here. */
  private generation = 0;
  private holder?: LeaderDoc;
  private leading = false;
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    db: Db,
    private readonly liveness: NodeLiveness,
    private readonly work: LeaderWork,
    private readonly log: Logger,
  ) {
    this.docs = db.collection('leadership');
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The current leader, as last seen. */
  current(): Leader | undefined {
    return this.holder ? { generation: this.holder.generation, owner: this.holder.owner } : undefined;
  }

  /** Campaigns once at once (so a lone node leads from its first moment), then every heartbeat. */
  async start(): Promise<void> {
    await this.campaign();
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.campaign()).catch((err: unknown) => this.log.warn({ err }, 'leadership check failed; retrying'));
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    if (this.leading) await this.stepDown('stopping');
  }

  /** The newest generation's document (probing upward from the last one seen). */
  private async newest(): Promise<LeaderDoc | undefined> {
    let doc = this.generation > 0 ? ((await this.docs.findOne({ _id: key(this.generation) })) ?? undefined) : undefined;
    for (;;) {
      const next = await this.docs.findOne({ _id: key(this.generation + 1) });
      if (!next) return doc;
      this.generation += 1;
      doc = next;
    }
  }

  private async campaign(): Promise<void> {
    if (this.stopped) return;
    const newest = await this.newest();
    this.holder = newest;
    if (this.leading) {
      if (newest?.owner !== this.liveness.processId) return this.stepDown(`generation ${newest?.generation} is led by ${newest?.owner}`);
      if (this.ownBeatStale()) return this.stepDown('own heartbeat could not be written');
      return;
    }
    // Not while this process's own heartbeat is failing: others would rightly take over.
    if (this.ownBeatStale()) return;
    // A leader that stepped down (its heartbeat could not be written) takes the next generation
    // like anyone else once it is healthy again.
    if (newest && newest.owner !== this.liveness.processId && (await this.liveness.isAlive(newest.owner))) return;
    const doc: LeaderDoc = { _id: key(this.generation + 1), generation: this.generation + 1, owner: this.liveness.processId, since: new Date() };
    try {
      await this.docs.insertOne(doc);
    } catch (error) {
      if (isDuplicateKey(error)) return; // another process won this generation
      throw error;
    }
    this.generation = doc.generation;
    this.holder = doc;
    this.leading = true;
    this.log.info({ generation: doc.generation, previous: newest?.owner }, 'leading this party: activities, data exchange, batcher, chain listener and webhooks');
    await this.work.start();
  }

  /** Whether this process's heartbeat is (nearly) old enough for others to think it gone. */
  private ownBeatStale(): boolean {
    return Date.now() - this.liveness.lastBeat > STALE_AFTER_MS - HEARTBEAT_MS;
  }

  private async stepDown(why: string): Promise<void> {
    this.leading = false;
    this.log.warn({ why }, 'no longer leading: stopping activities, data exchange, batcher, chain listener and webhooks');
    await this.work.stop();
  }
}

function key(generation: number): string {
  return `leader:${generation}`;
}
