/**
 * The party's private query cache in MongoDB. Kept to the MongoDB features FerretDB supports too
 * (plain CRUD, upserts, simple indexes; no transactions, no change streams).
 */
import { MongoClient, MongoServerError, type Collection, type Db, type Filter } from 'mongodb';
import type { SignedEnvelope } from '../model/envelope';
import type { Invitation } from '../model/instance';
import type { ChainPosition, ObservedPin } from '../model/pin';
import type { StepStatus } from '../model/step';
import { LockstepError } from '../model/errors';
import type { CheckpointDoc, InstanceDoc, PinDoc, StepDoc } from './documents';
import { EventLog } from '../events/log';
import { participantsOf } from '../model/instance';

const DUPLICATE_KEY = 11000;

export interface Decision {
  instanceId: string;
  envelopeHash: string;
  status: Exclude<StepStatus, 'pending'>;
  seq: number;
  position: ChainPosition;
  rejection?: { code: string; message: string; winner?: string };
  outcome?: string;
}

export class Store {
  readonly instances: Collection<InstanceDoc>;
  readonly steps: Collection<StepDoc>;
  readonly pins: Collection<PinDoc>;
  readonly checkpoints: Collection<CheckpointDoc>;
  /** What happened on this node, for apps (REST, WebSocket, webhooks). */
  readonly events: EventLog;

  private constructor(
    private readonly client: MongoClient,
    readonly db: Db,
  ) {
    this.instances = db.collection('instances');
    this.steps = db.collection('steps');
    this.pins = db.collection('pins');
    this.checkpoints = db.collection('checkpoints');
    this.events = new EventLog(db);
  }

  static async connect(uri: string, database: string): Promise<Store> {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
    const store = new Store(client, client.db(database));
    await store.ensureIndexes();
    return store;
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async ensureIndexes(): Promise<void> {
    await this.steps.createIndex({ instanceId: 1, seq: 1 });
    await this.instances.createIndex({ 'header.definitionId': 1, createdAt: -1 });
    await this.pins.createIndex({ confirmed: 1, signaled: 1 });
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

  /** Idempotent: the same invitation twice is fine; a different one under the same id is refused. */
  async saveInstance(invitation: Invitation): Promise<InstanceDoc> {
    const now = new Date();
    const doc: InstanceDoc = {
      _id: invitation.header.id,
      header: invitation.header,
      secret: invitation.secret,
      invitationSignature: invitation.signature,
      parties: participantsOf(invitation.header),
      status: 'active',
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.instances.insertOne(doc);
      await this.instanceStarted(doc);
      return doc;
    } catch (error) {
      if (!(error instanceof MongoServerError && error.code === DUPLICATE_KEY)) throw error;
      const existing = await this.instances.findOne({ _id: doc._id });
      if (existing && existing.invitationSignature === invitation.signature && existing.secret === invitation.secret) {
        await this.instanceStarted(existing); // a no-op unless a crash came between insert and event
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

  async listInstances(filter: Filter<InstanceDoc>, limit: number): Promise<InstanceDoc[]> {
    return this.instances.find(filter).sort({ createdAt: -1 }).limit(limit).toArray();
  }

  /** Records an envelope as pending; a repeat delivery changes nothing. */
  async savePendingStep(signed: SignedEnvelope, pin: string, visible: boolean): Promise<void> {
    const e = signed.envelope;
    const doc: StepDoc = {
      _id: signed.hash,
      envelopeHash: signed.hash,
      instanceId: e.instanceId,
      step: e.step,
      author: e.author,
      status: 'pending',
      signature: signed.signature,
      proposedAt: e.proposedAt,
      envelope: e,
      pin,
      updatedAt: new Date(),
      ...(visible && signed.data ? { data: signed.data, input: signed.data.input } : {}),
    };
    await ignoreDuplicate(this.steps.insertOne(doc));
    await this.expectPin(pin, e.instanceId, signed.hash);
    await this.events.emit({ type: 'step.proposed', key: `step.proposed:${signed.hash}`, instanceId: e.instanceId, step: e.step, envelopeHash: signed.hash, data: { author: e.author, proposedAt: e.proposedAt } });
  }

  async step(envelopeHash: string): Promise<StepDoc | null> {
    return this.steps.findOne({ _id: envelopeHash });
  }

  /** An instance's history: decided steps in sequence, then the pending ones. */
  async history(instanceId: string): Promise<StepDoc[]> {
    const steps = await this.steps.find({ instanceId }).toArray();
    return steps.sort((a, b) => {
      if (a.seq !== undefined && b.seq !== undefined) return a.seq - b.seq;
      if (a.seq !== undefined) return -1;
      if (b.seq !== undefined) return 1;
      return a.proposedAt.localeCompare(b.proposedAt);
    });
  }

  async recordDecision(d: Decision): Promise<void> {
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
    if (d.outcome) {
      await this.instances.updateOne({ _id: d.instanceId }, { $set: { status: 'ended', outcome: d.outcome, updatedAt: new Date() } });
    }
    const decided = await this.steps.findOne({ _id: d.envelopeHash });
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

  /** Ids of an instance's confirmed steps. */
  async confirmedSteps(instanceId: string): Promise<string[]> {
    return (await this.steps.find({ instanceId, status: 'confirmed' }, { projection: { step: 1 } }).toArray()).map((s) => s.step);
  }

  async ping(): Promise<void> {
    await this.db.command({ ping: 1 });
  }

  private async expectPin(pin: string, instanceId: string, envelopeHash: string): Promise<void> {
    await this.pins.updateOne(
      { _id: pin },
      { $set: { instanceId, envelopeHash }, $setOnInsert: { confirmed: false, signaled: false } },
      { upsert: true },
    );
  }

  /** Notes where pins were sequenced. Only a pin's first sequencing counts. */
  async observePins(observed: ObservedPin[]): Promise<void> {
    for (const o of observed) {
      const first = await this.pins.updateOne({ _id: o.pin, position: { $exists: false } }, { $set: { position: o } });
      if (first.matchedCount === 0) {
        await ignoreDuplicate(this.pins.insertOne({ _id: o.pin, position: o, confirmed: false, signaled: false }));
      }
      const known = await this.pins.findOne({ _id: o.pin });
      if (known?.envelopeHash && known.position?.transactionHash === o.transactionHash && known.position.index === o.index) {
        await this.steps.updateOne({ _id: known.envelopeHash, status: 'pending' }, { $set: { chain: positionOf(o), updatedAt: new Date() } });
      }
    }
  }

  async confirmPinsUpTo(block: number): Promise<void> {
    await this.pins.updateMany({ confirmed: false, 'position.blockNumber': { $lte: block } }, { $set: { confirmed: true } });
  }

  /** Final pins whose envelope this node holds and whose workflow has not been told yet, in chain order. */
  async pinsToSignal(): Promise<PinDoc[]> {
    const ready = await this.pins.find({ confirmed: true, signaled: false, envelopeHash: { $exists: true } }).toArray();
    return ready.sort((a, b) => a.position!.blockNumber - b.position!.blockNumber || a.position!.logIndex - b.position!.logIndex || a.position!.index - b.position!.index);
  }

  async markSignaled(pin: string): Promise<void> {
    await this.pins.updateOne({ _id: pin }, { $set: { signaled: true } });
  }

  async checkpoint(): Promise<CheckpointDoc | null> {
    return this.checkpoints.findOne({ _id: 'chain' });
  }

  async saveCheckpoint(scannedBlock: number, confirmedBlock: number): Promise<void> {
    await this.checkpoints.updateOne({ _id: 'chain' }, { $set: { scannedBlock, confirmedBlock, updatedAt: new Date() } }, { upsert: true });
  }
}

export function positionOf(o: ObservedPin): ChainPosition {
  return { blockNumber: o.blockNumber, blockHash: o.blockHash, timestamp: o.timestamp, transactionHash: o.transactionHash, logIndex: o.logIndex, index: o.index };
}

async function ignoreDuplicate(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (error) {
    if (!(error instanceof MongoServerError && error.code === DUPLICATE_KEY)) throw error;
  }
}
