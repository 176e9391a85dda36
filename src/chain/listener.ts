/**
 * The chain listener: follows the Sequencer's events, records where this node's expected tags
 * were sequenced, and makes them final once `confirmations` blocks deep (its checkpoint's final
 * block: every step at or below it is final). Its checkpoint lives in
 * the party's MongoDB, so after a restart it resumes without missing an event (re-reading a
 * block is harmless: only a tag's first sequencing counts).
 *
 * Reorganisations: before each pass it checks that every block holding a not-yet-final tag is
 * still canonical; if not, those tags go back to pending (their authors' batchers send them
 * again) and the scan resumes below the fork. A change below the confirmation depth cannot be
 * undone: it is reported loudly and the listener stops finalising until an operator looks.
 *
 * A pass that finds the head it last finished at (same number, same hash) reads nothing from the
 * store: nothing on chain moved, so nothing can have become sequenced, final or forked. On
 * FerretDB every query waits for the one store the node's work shares, and most polls find no
 * new block.
 */
import type { Logger } from 'pino';
import type { SequencerClient } from './sequencer';
import type { Store } from '../store/store';
import type { CheckpointDoc, InstanceDoc } from '../store/documents';
import { participantsOf } from '../model/instance';
import { instancePinsBetween } from './instance-pins';
import { PollLoop } from './poll-loop';

export interface ListenerOptions {
  sequencer: SequencerClient;
  store: Store;
  confirmations: number;
  /** Block the Sequencer was deployed in: nothing before it can hold a tag. */
  startBlock: number;
  pollMs: number;
  log: Logger;
  /** Chain address of each party, to check that a tag was sent by its own author. */
  addressOf: (party: string) => string | undefined;
  /** Called after every pass; `moved` is false when the head was the one the last pass finished at. */
  onProgress: (moved: boolean) => Promise<void>;
  /** Called once when a reorganisation deeper than the confirmation depth is detected. */
  onDeepReorg: (detail: DeepReorg) => void;
}

export interface DeepReorg {
  block: number;
  expectedHash: string;
  actualHash: string | null;
}

export class ChainListener {
  /** A pass every pollMs, and at once when a new block is announced (src/chain/new-heads.ts). */
  private readonly loop: PollLoop;
  /** Latest head seen, for status reporting. */
  head = 0;
  lastError?: string;
  deepReorg?: DeepReorg;
  /** The head the last complete pass read up to. */
  private settled?: { number: number; hash: string };
  /** The checkpoint as last read or written: while it runs, this listener is its only writer. */
  private known?: CheckpointDoc | null;
  /** Only `head` is kept current: another process of the party leads (src/node/leadership.ts). */
  private following = false;

  constructor(private readonly opts: ListenerOptions) {
    this.loop = new PollLoop(() => this.scheduledPass(), opts.pollMs);
  }

  /** Reads the chain into the store and finalises steps: on the party's leading process. */
  start(): void {
    this.following = false;
    // Another process may have led (and moved the checkpoint) since this one last ran.
    this.settled = undefined;
    this.known = undefined;
    this.loop.start();
  }

  /**
   * Keeps only `head` current, for the confirmations and status a replica serves; the leader's
   * listener does the rest. Resolves once a leading pass under way has ended.
   */
  async follow(): Promise<void> {
    this.following = true;
    await this.loop.settled();
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** A new block was announced: pass now rather than at the next poll (polling goes on regardless). */
  wake(): void {
    this.loop.wake();
  }

  /**
   * Reads the chain again, from `sinceBlock` to the head, for one instance's tags alone: called
   * once this node has stored the instance (its tags expected), before it accepts the invitation.
   * Its steps may have been pinned, and those blocks read, before this node could recognise their
   * tags: its invitation came late (this node was unreachable, or failed before answering), while
   * other participants went on. Reading to the current head covers a pass under way that read a
   * block before the tags were stored. Repeats are harmless: only a tag's first sequencing counts.
   * Returns how many steps it found.
   */
  async lookBack(instance: InstanceDoc, sinceBlock: number): Promise<number> {
    const { sequencer, store, startBlock, addressOf } = this.opts;
    const from = Math.max(sinceBlock, startBlock);
    const head = await sequencer.head();
    if (from > head) return 0;
    const found = (await instancePinsBetween(sequencer, instance.secret, participantsOf(instance.header), from, head)).map((p) => p.pin);
    if (found.length === 0) return 0;
    // One at a time, in chain order: each slides its author's window before the next is looked up.
    let steps = 0;
    for (const tag of found) steps += (await store.observeTags([tag], addressOf)).length;
    this.opts.log.info({ instanceId: instance._id, from, to: head, steps }, 'steps pinned before the invitation was stored found');
    // Those already deep enough are final now (below the checkpoint); the rest become so with the passes to come.
    await this.opts.onProgress(true);
    return steps;
  }

  /**
   * True, and the reorganisation recorded and reported, when the block the checkpoint holds final
   * is no longer on the chain: a reorganisation deeper than the confirmation depth.
   */
  private async reorganisedBelow(checkpoint: CheckpointDoc | null): Promise<boolean> {
    if (!checkpoint?.confirmedBlockHash || checkpoint.confirmedBlock < this.opts.startBlock) return false;
    const actual = await this.opts.sequencer.blockHash(checkpoint.confirmedBlock);
    if (actual === checkpoint.confirmedBlockHash) return false;
    this.deepReorg = { block: checkpoint.confirmedBlock, expectedHash: checkpoint.confirmedBlockHash, actualHash: actual };
    this.opts.log.error(this.deepReorg, 'chain reorganised deeper than the confirmation depth: final steps may be affected; finalisation stopped');
    this.opts.onDeepReorg(this.deepReorg);
    return true;
  }

  private async scheduledPass(): Promise<void> {
    try {
      await this.tick();
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.opts.log.warn({ err }, 'chain listener pass failed; retrying');
    }
  }

  /** One pass: undo what a reorganisation removed, read new logs, finalise what is deep enough. */
  async tick(): Promise<void> {
    const { sequencer, store, confirmations, startBlock } = this.opts;
    if (this.deepReorg) return;
    const top = await sequencer.headBlock();
    this.head = top.number;
    if (this.following) {
      // A replica's API refuses new steps after a deep reorganisation as the leader's does: it
      // checks the leader's checkpoint against the chain the same way, whenever the head moves
      // (and only once its head has reached the checkpoint: its RPC node may lag the leader's).
      if (this.settled?.hash === top.hash) return;
      const checkpoint = await store.checkpoint();
      if (checkpoint && checkpoint.confirmedBlock > top.number) return;
      if (!(await this.reorganisedBelow(checkpoint))) this.settled = top;
      return;
    }
    if (this.settled?.hash === top.hash) {
      await this.opts.onProgress(false);
      return;
    }
    const checkpoint = this.known !== undefined ? this.known : (this.known = await store.checkpoint());
    if (await this.reorganisedBelow(checkpoint)) return;
    let from = checkpoint ? checkpoint.scannedBlock + 1 : startBlock;
    const forked: number[] = [];
    for (const { blockNumber, blockHash } of await store.unconfirmedBlocks()) {
      if ((await sequencer.blockHash(blockNumber)) !== blockHash) forked.push(blockNumber);
    }
    if (forked.length > 0) {
      const undone = await store.forgetBlocks(forked);
      from = Math.min(from, ...forked);
      this.opts.log.warn({ blocks: forked, steps: undone }, 'chain reorganised: steps in dropped blocks are pending again');
    }
    const head = top.number;
    if (from <= head) {
      const ours = await store.observeTags(await sequencer.tagsBetween(from, head), this.opts.addressOf);
      if (ours.length > 0) this.opts.log.debug({ from, to: head, steps: ours.length }, 'steps sequenced');
    }
    // Every sequencing up to the final block becomes final with the checkpoint's one write below.
    const finalBlock = head - confirmations + 1;
    // Finality never moves backwards: a head below the last final block is itself a deep
    // reorganisation (or a lagging RPC node), caught by the check at the top of the next pass.
    const scanned = Math.max(head, from - 1);
    if (!checkpoint || finalBlock > checkpoint.confirmedBlock || (finalBlock === checkpoint.confirmedBlock && finalBlock >= startBlock && !checkpoint.confirmedBlockHash)) {
      const finalHash = finalBlock >= startBlock ? ((await sequencer.blockHash(finalBlock)) ?? undefined) : undefined;
      this.known = undefined;
      await store.saveCheckpoint(scanned, finalBlock, finalHash);
    } else if (scanned !== checkpoint.scannedBlock) {
      this.known = undefined;
      await store.saveCheckpoint(scanned, checkpoint.confirmedBlock, checkpoint.confirmedBlockHash);
    }
    // else: nothing moved; no write (every write waits in line on FerretDB).
    this.settled = top;
    await this.opts.onProgress(true);
  }
}
