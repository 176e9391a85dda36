/**
 * The party's private query cache in MongoDB. Kept to the MongoDB features FerretDB supports too
 * (plain CRUD, upserts, simple indexes; no transactions, no change streams).
 */
import { MongoClient, type Collection, type Db, type Document, type Filter, type UpdateFilter, type UpdateResult } from 'mongodb';
import { ruleData, type SignedEnvelope } from '../model/envelope';
import type { Invitation } from '../model/instance';
import { comparePositions, type ChainPosition, type ObservedTag, type PinReceipt } from '../model/pin';
import type { StepStatus } from '../model/step';
import { LockstepError } from '../model/errors';
import { participantsOf } from '../model/instance';
import { EventLog } from '../events/log';
import { securityRefused } from '../events/hooks';
import { contextOf, stepLeaf, tagOf } from '../chain/pins';
import { verifyMerkleProof } from '../chain/merkle';
import type { BatchDoc, CheckpointDoc, InstanceDoc, PinQueueDoc, SlotDoc, StepDataDoc, StepDoc, TagDoc, UnsettledDoc } from './documents';
import { isFerretDb, withBoundedCommands, withSerialWrites } from './serial-writes';
import type { ConfirmedStep } from '../process/tasks';
import { isDuplicateKey, ignoreDuplicate } from './duplicate-key';
import { LeaderTerm } from './leader-term';
import { StuckMonitorWatchdog } from './stuck-monitor';
import type { Logger } from 'pino';

/** How many of each author's next steps a node recognises ahead of time (detects gaps too). */
export const TAG_WINDOW = 16;

/** The event key of a step's proposal: recorded once, when the step is stored as pending. */
function proposedKey(envelopeHash: string): string {
  return `step.proposed:${envelopeHash}`;
}

export function slotId(instanceId: string, author: string, nonce: number): string {
  return `${instanceId}/${author}/${nonce}`;
}

/** Connections per node to its database. */
const MAX_POOL_SIZE = 10;
/** Connections per node for its heartbeat and leadership (one beat at a time, a campaign's reads). */
const PULSE_POOL_SIZE = 2;
/** How many expected tags a node remembers as stored (about 150 bytes each). */
const KNOWN_TAGS_KEPT = 100_000;
/** How many authors' windows a node remembers the end of (about 150 bytes each). */
const WINDOW_ENDS_KEPT = 20_000;

/** How many instances' agreed parts a node keeps in memory. */
const AGREED_CACHE_SIZE = 10_000;
/** How many documents one history read asks for side by side. */
const READS_AT_ONCE = 8;
/**
 * Step data up to this many characters of JSON is kept in the step's document; larger data goes
 * to `step_data`, written once. Each step document is written about three times (stored, its
 * receipt or a repeat delivery, its decision), and FerretDB reads and writes the whole document
 * back for each: at 16 KB of data per step that tripled FerretDB's CPU per step under the quick
 * benchmark (docs/performance.md). Apart, data costs one more insert, about what rewriting 1 KB
 * twice costs.
 */
export const DATA_INLINE_MAX_CHARS = 1024;

export interface Decision {
  instanceId: string;
  envelopeHash: string;
  status: Exclude<StepStatus, 'pending'>;
  seq: number;
  position: ChainPosition;
  rejection?: { code: string; message: string; winner?: string };
  outcome?: string;
  /** The step's id and author, for the event (the workflow knows them); read from the step when absent. */
  step?: string;
  author?: string;
  /** This party's open steps after it (`InstanceDoc.openSteps`), when the decision changed them. */
  openSteps?: string[];
}

export class Store {
  readonly instances: Collection<InstanceDoc>;
  readonly steps: Collection<StepDoc>;
  /** Step data too large to keep in the step's document (StepDoc.dataApart). */
  readonly stepData: Collection<StepDataDoc>;
  readonly tags: Collection<TagDoc>;
  readonly slots: Collection<SlotDoc>;
  readonly unsettled: Collection<UnsettledDoc>;
  readonly pinQueue: Collection<PinQueueDoc>;
  readonly batches: Collection<BatchDoc>;
  readonly checkpoints: Collection<CheckpointDoc>;
  /** What happened on this node, for apps (REST, WebSocket, webhooks). */
  readonly events: EventLog;
  /** Instances as first read: their agreed part (header, secret, signature) never changes. */
  private readonly agreed = new Map<string, InstanceDoc>();
  /**
   * Expected tags known to be stored, by tag. A tag is never removed once expected, so a hit spares
   * a lookup: sliding an author's window after each step needed 16, now it needs the one new tag.
   * Only hits are remembered: another replica may store a tag this process has not seen.
   */
  private readonly knownTags = new Map<string, TagDoc>();
  /**
   * Per instance and author, the last step number whose expected tag this process knows is stored:
   * a window slid by one step needs its one new tag computed (a keccak each), not all sixteen.
   */
  private readonly windowEnds = new Map<string, number>();
  /**
   * Writes under way to a slot and its working-set entry, by slot: this process makes them one
   * after another, so a claim's read and write are not split by another write of the same slot,
   * and this term's memory of them changes in the order the database did.
   */
  private readonly slotLines = new Map<string, Promise<void>>();
  /** While this process leads its party: its memory of the chain records it alone writes (leader-term.ts). */
  private term?: LeaderTerm;
  /** One per client: reconnects it should its server monitoring stop (stuck-monitor.ts). */
  private watchdogs: StuckMonitorWatchdog[] = [];

  private constructor(
    private readonly client: MongoClient,
    readonly db: Db,
    /** FerretDB: writes to one document go one at a time (serial-writes.ts), and the event log numbers its events itself. */
    private readonly serialised: boolean,
    private readonly pulseClient: MongoClient,
    /**
     * The same database through a connection pool of its own, for heartbeats and leadership
     * (src/node/liveness.ts, leadership.ts): a process whose commands hold every connection of the
     * main pool (slow writes after a database restart) must still beat, or its replicas, and it
     * itself, take it for gone. Nothing else goes through it.
     */
    readonly pulse: Db,
  ) {
    this.instances = db.collection('instances');
    this.steps = db.collection('steps');
    this.stepData = db.collection('step_data');
    this.tags = db.collection('tags');
    this.slots = db.collection('slots');
    this.unsettled = db.collection('unsettled');
    this.pinQueue = db.collection('pinQueue');
    this.batches = db.collection('batches');
    this.checkpoints = db.collection('checkpoints');
    this.events = new EventLog(db, serialised);
  }

  /** `log`, where given, hears when a client's server monitoring stopped and it was reconnected (stuck-monitor.ts). */
  static async connect(uri: string, database: string, log?: Logger): Promise<Store> {
    // A bounded pool: a burst of decisions (50 instances at once) opened about 100 connections per
    // node; operations beyond the pool wait in the driver instead.
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, maxPoolSize: MAX_POOL_SIZE });
    const pulseClient = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, maxPoolSize: PULSE_POOL_SIZE });
    await Promise.all([client.connect(), pulseClient.connect()]).catch(async (error: unknown) => {
      await Promise.allSettled([client.close(), pulseClient.close()]);
      throw error;
    });
    const db = client.db(database);
    const ferret = await isFerretDb(db);
    // Every command is bounded in time (serial-writes.ts, COMMAND_TIMEOUT_MS): the driver can leave
    // one pending for good after a dropped connection, whichever server it talks to. On FerretDB
    // writes also wait in a line. Heartbeats (one document per process, written by it alone) and
    // leadership generations (inserts) need no line, and must not wait in it or for the main pool
    // (src/node/liveness.ts, leadership.ts).
    const pulse = withBoundedCommands(pulseClient.db(database));
    const store = new Store(client, ferret ? withSerialWrites(db) : withBoundedCommands(db), ferret, pulseClient, pulse);
    store.watchdogs = [watchMonitoring(client, 'store', log), watchMonitoring(pulseClient, 'pulse', log)];
    await store.ensureIndexes();
    return store;
  }

  /**
   * This process leads its party from now on: no other writes the chain records until it
   * follows again, so they are read from memory as this process writes them (leader-term.ts).
   */
  lead(): void {
    this.term = new LeaderTerm();
  }

  /** Another process may lead from now on: every chain record is read from the database. */
  follow(): void {
    this.term = undefined;
  }

  /** Whether this process leads its party (and so runs the activities that store its steps). */
  get leads(): boolean {
    return this.term !== undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.watchdogs.map((w) => w.stop()));
    await Promise.all([this.client.close(), this.pulseClient.close()]);
  }

  private async ensureIndexes(): Promise<void> {
    await this.steps.createIndex({ instanceId: 1, seq: 1 });
    await this.instances.createIndex({ 'header.definitionId': 1, createdAt: -1 });
    await this.tags.createIndex({ instanceId: 1, author: 1, nonce: 1 });
    await this.pinQueue.createIndex({ batch: 1, queuedAt: 1 });
    await this.batches.createIndex({ status: 1, nonce: 1 });
    // For the API's rich queries: every listed sort order ends in _id, so pages are stable.
    await this.instances.createIndex({ createdAt: -1, _id: -1 });
    await this.instances.createIndex({ parties: 1, createdAt: -1 });
    await this.instances.createIndex({ status: 1, createdAt: -1 });
    await this.steps.createIndex({ proposedAt: 1, _id: 1 });
    await this.steps.createIndex({ step: 1, proposedAt: 1 });
    await this.steps.createIndex({ author: 1, proposedAt: 1 });
    await this.steps.createIndex({ status: 1, proposedAt: 1 });
    await this.events.ensureIndexes();
  }

  /**
   * Idempotent: the same invitation twice is fine; a different one under the same id is refused.
   * `openSteps`: this party's steps open at the start (`InstanceDoc.openSteps`).
   */
  async saveInstance(invitation: Invitation, openSteps?: string[]): Promise<InstanceDoc> {
    const now = new Date();
    const doc: InstanceDoc = {
      _id: invitation.header.id,
      header: invitation.header,
      secret: invitation.secret,
      invitationSignature: invitation.signature,
      ...(invitation.sinceBlock !== undefined ? { sinceBlock: invitation.sinceBlock } : {}),
      parties: participantsOf(invitation.header),
      status: 'active',
      ...(openSteps ? { openSteps } : {}),
      createdAt: now,
      updatedAt: now,
      ...(this.serialised ? { stepIds: [] } : {}),
    };
    try {
      await this.instances.insertOne(doc);
      await this.expectTags(doc, participantsOf(doc.header), 1);
      await this.instanceStarted(doc);
      return doc;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      const existing = await this.instances.findOne({ _id: doc._id });
      if (existing && existing.invitationSignature === invitation.signature && existing.secret === invitation.secret) {
        // No-ops unless a crash came between the insert and what follows it.
        await this.expectTags(existing, participantsOf(existing.header), 1);
        await this.instanceStarted(existing);
        return existing;
      }
      throw new LockstepError('conflict', `instance ${doc._id} already exists with a different header`, [{ field: '/header/id', message: 'already used' }]);
    }
  }

  private async instanceStarted(doc: InstanceDoc): Promise<void> {
    await this.events.emit({ type: 'instance.started', key: `instance.started:${doc._id}`, instanceId: doc._id, data: { header: doc.header } });
  }

  async instance(id: string): Promise<InstanceDoc | null> {
    return this.instances.findOne({ _id: id });
  }

  /**
   * An instance for its agreed part (header, secret, invitation signature), from memory after
   * the first read: these never change once stored. Its status and outcome may be stale; read
   * instance() for those.
   */
  async agreedInstance(id: string): Promise<InstanceDoc | null> {
    const cached = this.agreed.get(id);
    if (cached) return cached;
    const doc = await this.instance(id);
    if (doc) {
      // Bounded: the oldest entry goes first (a Map keeps insertion order).
      if (this.agreed.size >= AGREED_CACHE_SIZE) this.agreed.delete(this.agreed.keys().next().value!);
      this.agreed.set(id, doc);
    }
    return doc;
  }

  async listInstances(filter: Filter<InstanceDoc>, limit: number): Promise<InstanceDoc[]> {
    return this.instances.find(filter).sort({ createdAt: -1 }).limit(limit).toArray();
  }

  /**
   * Records an envelope as pending (a repeat delivery changes nothing) and fills its slot; with a
   * receipt, the slot is proven against the chain as soon as its tag has been seen there. Returns
   * the step as this call built it.
   */
  async savePendingStep(instance: InstanceDoc, signed: SignedEnvelope, visible: boolean): Promise<StepDoc> {
    const e = signed.envelope;
    const id = slotId(e.instanceId, e.author, e.nonce);
    // The slot (author, step number) takes one envelope, ever: claim it before storing anything,
    // so a second envelope for a taken number is refused and leaves no trace. One write creates
    // the slot or claims it; a slot already holding another envelope fails the upsert's insert.
    const claim = {
      filter: { _id: id, $or: [{ envelopeHash: { $exists: false } }, { envelopeHash: signed.hash }] },
      update: {
        $set: { envelopeHash: signed.hash, ...(signed.receipt ? { receipt: signed.receipt } : {}) },
        $setOnInsert: { instanceId: e.instanceId, author: e.author, nonce: e.nonce, tag: tagOf(contextOf(instance.secret, e.author, e.nonce)), signaled: 'none' as const, proven: false },
      },
    };
    const claimed = this.serialised ? await this.claimSlotById(id, signed.hash, claim.update, instance.secret) : await this.claimSlot(id, claim, instance.secret);
    if (!claimed) {
      const slot = await this.slot(id);
      throw new LockstepError('conflict', `${e.author} already sent a different envelope (${slot?.envelopeHash ?? 'unknown'}) as its step ${e.nonce} in instance ${e.instanceId}`, [
        { field: '/envelope/nonce', message: 'already taken by another envelope' },
      ]);
    }
    const data = visible ? signed.data : undefined;
    const apart = data !== undefined && JSON.stringify(data).length > DATA_INLINE_MAX_CHARS;
    const doc: StepDoc = {
      _id: signed.hash,
      envelopeHash: signed.hash,
      instanceId: e.instanceId,
      step: e.step,
      author: e.author,
      nonce: e.nonce,
      status: 'pending',
      signature: signed.signature,
      proposedAt: e.proposedAt,
      envelope: e,
      updatedAt: new Date(),
      ...(data && !apart ? { data } : {}),
      ...(apart ? { dataApart: true as const } : {}),
      ...(signed.receipt ? { receipt: signed.receipt } : {}),
    };
    // Listed before it is stored: a crash in between leaves a name that reads as nothing, never a step history() misses.
    if (instance.stepIds) await this.instances.updateOne({ _id: e.instanceId }, { $addToSet: { stepIds: signed.hash } });
    // Its data before the step: a stored step always has its data (a crash in between leaves data nothing names).
    if (apart) await ignoreDuplicate(this.stepData.insertOne({ _id: signed.hash, data }));
    const inserted = await ignoreDuplicate(this.steps.insertOne(doc));
    // A repeat delivery may bring the receipt the first one lacked.
    if (!inserted && signed.receipt) await this.steps.updateOne({ _id: signed.hash }, { $set: { receipt: signed.receipt } });
    await this.events.emit({ type: 'step.proposed', key: proposedKey(signed.hash), instanceId: e.instanceId, step: e.step, envelopeHash: signed.hash, data: { author: e.author, proposedAt: e.proposedAt } });
    return data ? { ...doc, data } : doc;
  }

  /** Whether this process stored the step lately (from memory: no command). A false answer proves nothing. */
  storedLately(envelopeHash: string): boolean {
    return this.events.recordedLately(proposedKey(envelopeHash));
  }

  /** The name of a step this process stored lately, from its `step.proposed` event in memory (no command); undefined proves nothing. */
  stepStoredLately(envelopeHash: string): string | undefined {
    return this.events.recentEvent(proposedKey(envelopeHash))?.step;
  }

  /**
   * The claim as one conditional write (MongoDB applies it atomically), after a read of the slot
   * as it stands (from this term's memory when it can be) to tell whether the claim completes
   * its proof.
   */
  private claimSlot(id: string, claim: { filter: Filter<SlotDoc>; update: { $set: Partial<SlotDoc>; $setOnInsert: Partial<SlotDoc> } }, secret: string): Promise<boolean> {
    return this.inSlotLine(id, async () => {
      const set = proving(await this.slot(id), claim.update.$set, secret);
      const update = { $set: set, $setOnInsert: without(claim.update.$setOnInsert, set) };
      try {
        const result = await this.slotWrite(id, this.slots.updateOne(claim.filter, update, { upsert: true }));
        if (result.upsertedCount > 0) this.term?.slotCreated({ _id: id, ...update.$setOnInsert, ...set } as SlotDoc);
        else this.term?.slotUpdated(id, result.matchedCount > 0, set);
        return true;
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        // The slot exists: taken by another envelope, or created by a concurrent writer just now.
        const current = proving(await this.slots.findOne({ _id: id }), claim.update.$set, secret);
        const result = await this.slotWrite(id, this.slots.updateOne(claim.filter, { $set: current }));
        if (result.matchedCount > 0) this.term?.slotUpdated(id, true, current);
        return result.matchedCount > 0;
      }
    });
  }

  /**
   * The claim on FerretDB, which reads the whole collection for any filter but a bare `{_id}`: a
   * read of the slot (from the term's memory on the leader, below), then a write by `_id`. Sound
   * because this process alone writes slots (the party's leader, leadership.ts) and writes each
   * slot one write at a time (inSlotLine); the listener may create the slot meanwhile, which only
   * turns the insert into an update.
   *
   * The leader's term knows every slot it wrote, so a slot it does not know is nearly always new
   * (a step's first envelope): the insert is tried without the read, and a slot written before
   * (by an earlier term, or forgotten once settled) fails it on its `_id` and is read then.
   */
  private claimSlotById(id: string, hash: string, update: { $set: Partial<SlotDoc>; $setOnInsert: Partial<SlotDoc> }, secret: string): Promise<boolean> {
    return this.inSlotLine(id, async () => {
      let slot = this.term ? this.term.slot(id) : await this.slots.findOne({ _id: id });
      if (!slot) {
        const doc = { _id: id, ...update.$setOnInsert, ...update.$set } as SlotDoc;
        if (await this.slotWrite(id, ignoreDuplicate(this.slots.insertOne({ ...doc })))) {
          this.term?.slotCreated(doc);
          return true;
        }
        slot = await this.slots.findOne({ _id: id });
      }
      if (slot?.envelopeHash !== undefined && slot.envelopeHash !== hash) return false;
      const set = proving(slot, update.$set, secret);
      const result = await this.slotWrite(id, this.slots.updateOne({ _id: id }, { $set: set }));
      this.term?.slotUpdated(id, result.matchedCount > 0, set);
      return true;
    });
  }

  /** Runs a write of one slot (or its working-set entry) after those of it under way in this process. */
  private inSlotLine<T>(id: string, write: () => Promise<T>): Promise<T> {
    const run = (this.slotLines.get(id) ?? Promise.resolve()).then(write);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.slotLines.set(id, settled);
    void settled.then(() => {
      if (this.slotLines.get(id) === settled) this.slotLines.delete(id);
    });
    return run;
  }

  /** A slot's write; if it fails, it may or may not have applied, so this term forgets the slot. */
  private async slotWrite<R>(id: string, write: Promise<R>): Promise<R> {
    try {
      return await write;
    } catch (error) {
      this.term?.forgetSlot(id);
      throw error;
    }
  }

  /**
   * Sets fields of a slot, and `proven` with them when they complete its proof (its position,
   * envelope and receipt all there, and matching): read and written in the slot's line, so the
   * last of the three writes to arrive sees the other two, whatever their order.
   */
  private setSlot(id: string, set: Partial<SlotDoc>, secret: string): Promise<void> {
    return this.inSlotLine(id, async () => {
      const complete = proving(await this.slot(id), set, secret);
      const result = await this.slotWrite(id, this.slots.updateOne({ _id: id }, { $set: complete }));
      this.term?.slotUpdated(id, result.matchedCount > 0, complete);
    });
  }

  /** Updates a slot by `_id`, and this term's memory of it. */
  private updateSlot(id: string, set: Partial<SlotDoc>, unset: (keyof SlotDoc)[] = []): Promise<void> {
    const update: UpdateFilter<SlotDoc> = {
      ...(Object.keys(set).length > 0 ? { $set: set } : {}),
      ...(unset.length > 0 ? { $unset: Object.fromEntries(unset.map((field) => [field, ''] as const)) } : {}),
    };
    return this.inSlotLine(id, async () => {
      const result = await this.slotWrite(id, this.slots.updateOne({ _id: id }, update));
      this.term?.slotUpdated(id, result.matchedCount > 0, set, unset);
    });
  }

  /**
   * Writes a slot's working-set entry (in the slot's line) and tells this term how the entry now
   * stands: `after` gives it from the write's result (null: gone; undefined: not known).
   */
  private writeUnsettled<R>(id: string, write: () => Promise<R>, after: (result: R, known: UnsettledDoc | undefined) => UnsettledDoc | null | undefined): Promise<R> {
    return this.inSlotLine(id, async () => {
      let result: R;
      try {
        result = await write();
      } catch (error) {
        this.term?.unsettledWritten(id, undefined);
        throw error;
      }
      this.term?.unsettledWritten(id, after(result, this.term.unsettled(id)));
      return result;
    });
  }

  /** A slot: from this term's memory when this process wrote it, otherwise from the database. */
  async slot(id: string): Promise<SlotDoc | null> {
    return this.term?.slot(id) ?? (await this.slots.findOne({ _id: id }));
  }

  /** The working set of unsettled slots: from this term's memory once read. */
  private async workingSet(): Promise<UnsettledDoc[]> {
    const term = this.term;
    const known = term?.workingSet();
    if (known) return known;
    const writesBefore = term?.workingWritesEnded ?? 0;
    const docs = await this.unsettled.find({}).toArray();
    term?.workingSetRead(docs, writesBefore);
    return docs;
  }

  /** The author's own receipt, once the batcher has put its step in a batch. */
  async saveReceipt(instance: InstanceDoc, step: Pick<StepDoc, 'envelopeHash' | 'instanceId' | 'author' | 'nonce'>, receipt: PinReceipt): Promise<void> {
    await this.steps.updateOne({ _id: step.envelopeHash }, { $set: { receipt } });
    const id = slotId(step.instanceId, step.author, step.nonce);
    await this.setSlot(id, { receipt }, instance.secret);
  }

  /** A stored step; with its data (where this party may see it) only when asked, as that may be another read. */
  async step(envelopeHash: string, read: { withData?: boolean } = {}): Promise<StepDoc | null> {
    const doc = await this.steps.findOne({ _id: envelopeHash });
    if (!doc) return null;
    const [step] = read.withData ? await this.withData([doc]) : [doc];
    return this.showingChain(step!);
  }

  /** The steps with their data filled in where it is stored apart (StepDoc.dataApart). */
  async withData(steps: StepDoc[]): Promise<StepDoc[]> {
    const apart = steps.filter((s) => s.dataApart && s.data === undefined).map((s) => s._id);
    if (apart.length === 0) return steps;
    const found = new Map((await this.byIds(this.stepData, apart)).map((d) => [d._id, d.data]));
    return steps.map((s) => {
      const data = found.get(s._id);
      return data && s.data === undefined ? { ...s, data } : s;
    });
  }

  /**
   * A pending step with where it sits on chain, from its slot once proven there (a decided step
   * keeps its own). Read, not written: a write to each step as it was sequenced, and a read before
   * it, cost every node two commands per step, for apps that look at pending steps now and then.
   */
  private async showingChain(step: StepDoc): Promise<StepDoc> {
    if (step.status !== 'pending') return step;
    const { chain: _stored, ...rest } = step; // written by earlier versions, and not taken back on a reorganisation
    const slot = await this.slot(slotId(step.instanceId, step.author, step.nonce));
    return slot?.proven && slot.position && slot.envelopeHash === step.envelopeHash ? { ...rest, chain: positionOf(slot.position) } : rest;
  }

  /**
   * An instance's history, with each step's data (`withData: false`: only what the step document
   * holds, for a reader that needs the steps' names and order alone): decided steps in sequence,
   * then the pending ones. `instance`, when the caller has read it already, saves reading it
   * again. On FerretDB each step is read by `_id` from the instance's list (`stepIds`): a filter
   * on `instanceId` reads and decodes every step of every instance there (docs/performance.md),
   * which an app polling one instance's history turned into the node's largest cost (the soak
   * run). Instances stored before the list, and every instance on MongoDB, are read by the
   * `instanceId` index.
   */
  async history(instanceId: string, instance?: InstanceDoc | null, read: { withData?: boolean } = {}): Promise<StepDoc[]> {
    const listed = this.serialised ? (instance ?? (await this.instance(instanceId)))?.stepIds : undefined;
    const stored = listed ? await this.byIds(this.steps, listed) : await this.steps.find({ instanceId }).toArray();
    const filled = read.withData === false ? stored : await this.withData(stored);
    const steps = await Promise.all(filled.map((step) => this.showingChain(step)));
    return steps.sort((a, b) => {
      if (a.seq !== undefined && b.seq !== undefined) return a.seq - b.seq;
      if (a.seq !== undefined) return -1;
      if (b.seq !== undefined) return 1;
      return a.proposedAt.localeCompare(b.proposedAt);
    });
  }

  /**
   * Documents by `_id`, a few reads at a time (a long history must not take the whole connection
   * pool), each a bare `_id` filter, the one FerretDB answers from its index; those not stored are
   * left out.
   */
  private async byIds<T extends { _id: string }>(collection: Collection<T>, ids: readonly string[]): Promise<T[]> {
    const found: T[] = [];
    for (let i = 0; i < ids.length; i += READS_AT_ONCE) {
      const docs = await Promise.all(ids.slice(i, i + READS_AT_ONCE).map((_id) => collection.findOne({ _id } as Filter<T>) as Promise<T | null>));
      for (const doc of docs) if (doc) found.push(doc);
    }
    return found;
  }

  async recordDecision(d: Decision): Promise<void> {
    // A plain update and a read rather than findOneAndUpdate: FerretDB 1.24 leaks a connection per
    // findAndModify (docs/performance.md, "FerretDB and bulk writes"; the lint refuses it).
    const decided = d.step !== undefined && d.author !== undefined ? { step: d.step, author: d.author } : await this.steps.findOne({ _id: d.envelopeHash });
    await this.steps.updateOne(
      { _id: d.envelopeHash },
      {
        $set: {
          status: d.status,
          seq: d.seq,
          chain: d.position,
          decidedAt: new Date().toISOString(),
          updatedAt: new Date(),
          ...(d.rejection ? { rejection: d.rejection } : {}),
        },
      },
    );
    if (d.outcome || d.openSteps) {
      const ended = d.outcome ? { status: 'ended' as const, outcome: d.outcome } : {};
      await this.instances.updateOne({ _id: d.instanceId }, { $set: { ...ended, ...(d.openSteps ? { openSteps: d.openSteps } : {}), updatedAt: new Date() } });
    }
    await this.events.emit({
      type: d.status === 'confirmed' ? 'step.confirmed' : 'step.rejected',
      key: `step.decided:${d.envelopeHash}`,
      instanceId: d.instanceId,
      step: decided?.step,
      envelopeHash: d.envelopeHash,
      data: { seq: d.seq, author: decided?.author, chain: d.position, ...(d.rejection ? { rejection: d.rejection } : {}) },
    });
    if (d.outcome) await this.events.emit({ type: 'instance.ended', key: `instance.ended:${d.instanceId}`, instanceId: d.instanceId, data: { outcome: d.outcome } });
  }

  /** A step of ours the chain will never take: rejected here (no peer ever received it). */
  async setAsideStep(instanceId: string, envelopeHash: string, reason: string): Promise<void> {
    const rejection = { code: 'pin_failed', message: `the step can never be pinned: ${reason}` };
    await this.steps.updateOne({ _id: envelopeHash, status: 'pending' }, { $set: { status: 'rejected', rejection, decidedAt: new Date().toISOString(), updatedAt: new Date() } });
    const step = await this.steps.findOne({ _id: envelopeHash });
    await this.events.emit({ type: 'step.rejected', key: `step.decided:${envelopeHash}`, instanceId, step: step?.step, envelopeHash, data: { author: step?.author, rejection } });
  }

  /**
   * An instance's confirmed steps in sequence, as the process rules fold them; without their data
   * (`withData: false`) for a fold that evaluates no guard: which steps are next, human tasks.
   */
  async confirmedSteps(instanceId: string, instance?: InstanceDoc | null, read: { withData?: boolean } = {}): Promise<ConfirmedStep[]> {
    return confirmedIn(await this.history(instanceId, instance, read));
  }

  async ping(): Promise<void> {
    await this.db.command({ ping: 1 });
  }

  /** Precomputes the tags of the authors' next steps (one write for all), so they are recognised before their data. */
  private async expectTags(instance: InstanceDoc, authors: string[], fromNonce: number): Promise<void> {
    const last = fromNonce + TAG_WINDOW - 1;
    const wanted = authors.flatMap((author) => {
      const start = Math.max(fromNonce, (this.windowEnds.get(`${instance._id}/${author}`) ?? 0) + 1);
      return Array.from({ length: Math.max(0, last - start + 1) }, (_, i) => ({ _id: tagOf(contextOf(instance.secret, author, start + i)), instanceId: instance._id, author, nonce: start + i }));
    });
    const unknown = wanted.filter((t) => !this.knownTags.has(t._id));
    // Not looked up first (a command each, nearly always finding nothing): those stored already
    // fail the insert on their `_id`, and the rest are inserted all the same (unordered).
    if (unknown.length > 0) await ignoreDuplicate(this.tags.insertMany(unknown, { ordered: false }));
    for (const t of unknown) this.rememberTag(t);
    for (const author of authors) {
      const key = `${instance._id}/${author}`;
      if ((this.windowEnds.get(key) ?? 0) >= last) continue;
      this.windowEnds.delete(key); // re-inserted last: the oldest entry goes first
      if (this.windowEnds.size >= WINDOW_ENDS_KEPT) this.windowEnds.delete(this.windowEnds.keys().next().value!);
      this.windowEnds.set(key, last);
    }
  }

  /** The expected tag stored under `tag`, from memory when this process has seen it before. */
  private async expectedTag(tag: string): Promise<TagDoc | null> {
    const known = this.knownTags.get(tag);
    if (known) return known;
    const doc = await this.tags.findOne({ _id: tag });
    if (doc) this.rememberTag(doc);
    return doc;
  }

  private rememberTag(doc: TagDoc): void {
    if (this.knownTags.size >= KNOWN_TAGS_KEPT) this.knownTags.delete(this.knownTags.keys().next().value!);
    this.knownTags.set(doc._id, doc);
  }

  /**
   * Records where this node's expected tags were sequenced. A tag counts only when sent by its
   * author's own address, and only its first sequencing counts.
   */
  async observeTags(observed: ObservedTag[], addressOf: (party: string) => string | undefined): Promise<ObservedTag[]> {
    // Each tag's writes wait in FerretDB's one line: tags of different slots go in side by side
    // (a block may carry dozens), the sightings of one tag one after another, in chain order, so
    // that only the first counts.
    const byTag = new Map<string, ObservedTag[]>();
    for (const o of observed) byTag.set(o.tag, [...(byTag.get(o.tag) ?? []), o]);
    const ours: ObservedTag[] = [];
    await Promise.all(
      [...byTag.values()].map(async (sightings) => {
        for (const o of sightings) if (await this.observeTag(o, addressOf)) ours.push(o);
      }),
    );
    return ours.sort(comparePositions);
  }

  /** Records one sighting of a tag; true when it is an expected tag's first sequencing. */
  private async observeTag(o: ObservedTag, addressOf: (party: string) => string | undefined): Promise<boolean> {
    const expected = await this.expectedTag(o.tag);
    if (!expected) return false;
    if (addressOf(expected.author)?.toLowerCase() !== o.author.toLowerCase()) {
      // Someone who knows the instance's secret (or a lucky guess) pinned another author's tag:
      // it does not count, and the party's apps hear of it.
      await securityRefused(this.events, {
        digest: `${o.transactionHash}:${o.logIndex}:${o.tag}`,
        route: 'chain',
        code: 'forbidden',
        message: `a pin of ${expected.author}'s step ${expected.nonce} was sent by ${o.author}, not by ${expected.author}'s address (transaction ${o.transactionHash}); it does not count`,
        sender: o.author,
        author: expected.author,
        instanceId: expected.instanceId,
      });
      return false;
    }
    const instance = await this.agreedInstance(expected.instanceId);
    if (!instance) return false;
    const id = slotId(expected.instanceId, expected.author, expected.nonce);
    // Only the first sequencing counts; the listener is the only writer of positions.
    const slot = await this.slot(id);
    const seen = slot?.position;
    // This very sequencing, read again after a failure or crash that cut the last pass short
    // anywhere after writing the position: finish what that pass began (each write below is safe
    // to repeat). A slot told in full is settled: its working-set entry is gone for good.
    const again = seen !== undefined && seen.blockHash === o.blockHash && seen.logIndex === o.logIndex && seen.index === o.index;
    if (seen && !again) return false;
    if (!again) {
      const onInsert = { instanceId: expected.instanceId, author: expected.author, nonce: expected.nonce, tag: o.tag, signaled: 'none', proven: false } as const;
      await this.inSlotLine(id, async () => {
        const set = proving(await this.slot(id), { position: o }, instance.secret);
        const update = { $set: set, $setOnInsert: without(onInsert, set) };
        const result = await this.slotWrite(id, upsert(this.slots, { _id: id }, update));
        if (result.upsertedCount > 0) this.term?.slotCreated({ _id: id, ...update.$setOnInsert, ...set } as SlotDoc);
        else this.term?.slotUpdated(id, result.matchedCount > 0, set);
      });
    }
    if (slot?.signaled !== 'full') {
      const fields = { instanceId: expected.instanceId, blockNumber: o.blockNumber, blockHash: o.blockHash };
      await this.writeUnsettled(id, () => upsert(this.unsettled, { _id: id }, { $set: fields }), () => ({ _id: id, ...fields }));
    }
    await this.expectTags(instance, [expected.author], expected.nonce + 1);
    return !again;
  }

  /** Forgets sequencings in blocks that left the chain: those steps are pending again. */
  async forgetBlocks(blockNumbers: number[]): Promise<number> {
    const final = await this.finalBlock();
    const gone = (await this.workingSet()).filter((u) => !isFinal(u, final) && blockNumbers.includes(u.blockNumber));
    for (const u of gone) {
      await this.updateSlot(u._id, { proven: false }, ['position']);
      await this.writeUnsettled(u._id, () => this.unsettled.deleteOne({ _id: u._id }), () => null);
    }
    return gone.length;
  }

  /** Unconfirmed sequencings, for the listener to check against the canonical chain. */
  async unconfirmedBlocks(): Promise<{ blockNumber: number; blockHash: string }[]> {
    const final = await this.finalBlock();
    const seen = new Map<number, string>();
    for (const u of await this.workingSet()) if (!isFinal(u, final)) seen.set(u.blockNumber, u.blockHash);
    return [...seen].map(([blockNumber, blockHash]) => ({ blockNumber, blockHash }));
  }

  /**
   * The highest block the listener has made final (its checkpoint): every sequencing up to it is
   * final, at once, by that one write, so no pass can show an instance's later step final and an
   * earlier one not yet.
   */
  private async finalBlock(): Promise<number | undefined> {
    return (await this.checkpoint())?.confirmedBlock;
  }

  /** Final slots the workflow has not been told about (or only without their data), in chain order. */
  async slotsToSignal(): Promise<SlotDoc[]> {
    const final = await this.finalBlock();
    if (final === undefined) return [];
    const candidates: SlotDoc[] = [];
    for (const u of await this.workingSet()) {
      if (!isFinal(u, final)) continue;
      const slot = await this.slot(u._id);
      if (slot?.position && (slot.proven ? 'full' : 'bare') !== slot.signaled) candidates.push(slot);
    }
    return candidates.sort((a, b) => a.position!.blockNumber - b.position!.blockNumber || a.position!.logIndex - b.position!.logIndex || a.position!.index - b.position!.index);
  }

  /** Writes down what the workflows were told, each slot by _id. */
  async markSignaled(told: { id: string; level: 'bare' | 'full' }[]): Promise<void> {
    if (told.length === 0) return;
    // One update each, never a bulkWrite: an unordered bulkWrite of ~100 updates left FerretDB 1.24
    // holding all 100 connections of each database's pool, serving nothing more (docs/performance.md,
    // "FerretDB and bulk writes"). Sent together, they wait in the line together rather than one
    // behind another. Told with its data, a slot is settled: nothing more will happen to it.
    await Promise.all(
      told.map(async ({ id, level }) => {
        await this.updateSlot(id, { signaled: level });
        if (level !== 'full') return;
        await this.writeUnsettled(id, () => this.unsettled.deleteOne({ _id: id }), () => null);
        // Settled: read again only for a repeated delivery, if ever.
        this.term?.forgetSlot(id);
      }),
    );
  }

  /** Final slots the workflow was told of without their data, still not proven. */
  async slotsToldBare(): Promise<SlotDoc[]> {
    const final = await this.finalBlock();
    const bare: SlotDoc[] = [];
    for (const u of await this.workingSet()) {
      const slot = isFinal(u, final) ? await this.slot(u._id) : null;
      if (slot?.signaled === 'bare' && !slot.proven) bare.push(slot);
    }
    return bare;
  }

  /** Steps sequenced on chain whose data (or proof) this node is still waiting for: of one instance, or of all. */
  async waitingForData(instanceId?: string): Promise<(SlotDoc & { final: boolean })[]> {
    const final = await this.finalBlock();
    const waiting: (SlotDoc & { final: boolean })[] = [];
    for (const u of await this.workingSet()) {
      if (instanceId !== undefined && u.instanceId !== instanceId) continue;
      const slot = await this.slot(u._id);
      if (slot?.position && !slot.proven) waiting.push({ ...slot, final: isFinal(u, final) });
    }
    return waiting;
  }

  /** Queues a step's pin (a repeat changes nothing); returns the queue's document when this call wrote it. */
  async enqueuePin(request: { envelopeHash: string; instanceId: string; tag: string; leaf: string }): Promise<PinQueueDoc | undefined> {
    const fields = { instanceId: request.instanceId, tag: request.tag, leaf: request.leaf, queuedAt: new Date() };
    const result = await upsert(this.pinQueue, { _id: request.envelopeHash }, { $setOnInsert: fields });
    return result.upsertedCount > 0 ? { _id: request.envelopeHash, ...fields } : undefined;
  }

  /** Marks a batch's steps as taken by it (idempotent; used again when recovering after a crash). */
  async assignBatch(batch: BatchDoc): Promise<void> {
    for (const [index, envelopeHash] of batch.envelopeHashes.entries()) {
      await this.pinQueue.updateOne({ _id: envelopeHash }, { $set: { batch: batch._id, index } });
    }
  }

  /**
   * Forgets everything this node learned from the chain (where steps were sequenced, what is
   * final, what the workflows were told), so the listener reads it all again from the deploy
   * block: `lockstep rescan`, for records restored from an old backup or damaged. Decisions stay:
   * the chain gives the same order again, and workflows ignore what they already applied.
   */
  async forgetChainRecords(): Promise<{ slots: number; unsettled: number }> {
    if (this.term) this.term = new LeaderTerm();
    await this.checkpoints.deleteOne({ _id: 'chain' });
    const unsettled = (await this.unsettled.deleteMany({})).deletedCount;
    // `confirmed`: a field slots no longer keep (finality is the checkpoint's), cleared from older ones.
    const slots = (await this.slots.updateMany({}, { $unset: { position: '', confirmed: '' }, $set: { signaled: 'none', proven: false } })).modifiedCount;
    return { slots, unsettled };
  }

  /** The listener's checkpoint: from this term's memory once read or written. */
  async checkpoint(): Promise<CheckpointDoc | null> {
    const term = this.term;
    const known = term?.checkpoint();
    if (known !== undefined) return known;
    const writesBefore = term?.checkpointWritesEnded ?? 0;
    const doc = await this.checkpoints.findOne({ _id: 'chain' });
    term?.checkpointRead(doc, writesBefore);
    return doc;
  }

  async saveCheckpoint(scannedBlock: number, confirmedBlock: number, confirmedBlockHash: string | undefined): Promise<void> {
    const set = { scannedBlock, confirmedBlock, updatedAt: new Date(), ...(confirmedBlockHash ? { confirmedBlockHash } : {}) };
    const before = this.term?.checkpoint();
    try {
      await upsert(this.checkpoints, { _id: 'chain' }, { $set: set });
    } catch (error) {
      this.term?.checkpointWritten(undefined);
      throw error;
    }
    // As it now stands: what it was with this write's fields, or these fields alone when they are all of it.
    const known = before ?? (before === null || set.confirmedBlockHash ? { _id: 'chain' as const } : undefined);
    this.term?.checkpointWritten(known && { ...known, ...set });
  }
}

/** Whether a slot's envelope is proven to sit where its tag was first sequenced: its leaf, in the batch root sequenced there. */
function provenIn(slot: Partial<SlotDoc>, secret: string): boolean {
  const { position: p, receipt: r, envelopeHash, author, nonce } = slot;
  if (!p || !r || !envelopeHash || author === undefined || nonce === undefined) return false;
  return p.root === r.root && p.index === r.index && p.count === r.count && verifyMerkleProof(stepLeaf(secret, author, nonce, envelopeHash), r.index, r.count, r.proof, r.root);
}

/** `set`, with `proven` when it completes the proof of the slot as it stands. */
function proving(slot: SlotDoc | null, set: Partial<SlotDoc>, secret: string): Partial<SlotDoc> {
  if (slot?.proven) return set;
  return provenIn({ ...slot, ...set }, secret) ? { ...set, proven: true } : set;
}

/** The fields of `onInsert` that `set` does not set too (MongoDB refuses a field in both). */
function without<T extends object>(onInsert: T, set: object): Partial<T> {
  return Object.fromEntries(Object.entries(onInsert).filter(([field]) => !(field in set))) as Partial<T>;
}

/** Whether a working-set entry's sequencing is final: in a block the listener has made final. */
function isFinal(u: UnsettledDoc, finalBlock: number | undefined): boolean {
  return finalBlock !== undefined && u.blockNumber <= finalBlock;
}

export function positionOf(o: ChainPosition): ChainPosition {
  return { blockNumber: o.blockNumber, blockHash: o.blockHash, timestamp: o.timestamp, transactionHash: o.transactionHash, logIndex: o.logIndex, index: o.index };
}

/**
 * An upsert that two writers race on can fail with a duplicate key for the loser (MongoDB and
 * FerretDB alike); by then the document exists, so the same update applies cleanly on a retry.
 */
async function upsert<T extends Document>(collection: Collection<T>, filter: Filter<T>, update: UpdateFilter<T>): Promise<UpdateResult<T>> {
  try {
    return await collection.updateOne(filter, update, { upsert: true });
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    return await collection.updateOne(filter, update, { upsert: true });
  }
}

/** The confirmed steps of a history (store.history: decided steps first, in sequence), as the process rules fold them. */
export function confirmedIn(history: readonly StepDoc[]): ConfirmedStep[] {
  return history
    .filter((s) => s.status === 'confirmed')
    .map((s) => ({
      step: s.step,
      envelopeHash: s.envelopeHash,
      author: s.author,
      ...(s.chain ? { timestamp: s.chain.timestamp } : {}),
      ...(s.data ? ruleData(s.data) : {}),
    }));
}

/** A started watchdog for `client`, reporting to `log` under `name`. */
function watchMonitoring(client: MongoClient, name: string, log: Logger | undefined): StuckMonitorWatchdog {
  const watchdog = new StuckMonitorWatchdog(client, {
    stuck: (r) => log?.warn({ client: name, ...r }, 'database client stopped hearing from its server (a heartbeat never ended); reconnecting it'),
    reconnected: (r) => log?.info({ client: name, ...r }, 'database client reconnected'),
    failed: (r, err) => log?.warn({ client: name, ...r, err }, 'database client could not reconnect yet; trying again shortly'),
  });
  watchdog.start();
  return watchdog;
}
