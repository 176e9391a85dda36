/**
 * What the party's leading process remembers of the chain records it alone writes while it leads
 * (src/node/leadership.ts): the slots this term created, the working set of unsettled slots, and
 * the listener's checkpoint. Every listener pass reads the working set and the checkpoint, and
 * each step's slot is read three or four times on its way to final (claimed, proven, sequenced,
 * signalled); on FerretDB each read is a command the node's busy store must answer
 * (docs/performance.md). Here they are answered from memory.
 *
 * Sound because no other process writes these records while this one leads, and because each
 * write is applied here as it succeeds, in the order the writes applied in the database (the
 * store sends the writes to one slot and its working-set entry one after another, `Store.inSlotLine`).
 * What another process wrote before this term began is not here: a term starts empty, and the
 * records it never wrote itself are read from the database (slots), or loaded once (the working
 * set, the checkpoint). A write that fails may or may not have applied: what it touched is
 * forgotten, and read from the database again.
 */
import type { CheckpointDoc, SlotDoc, UnsettledDoc } from './documents';

/** Slots remembered at most (about 1 KB each with a receipt); a settled slot is forgotten at once. */
const SLOTS_KEPT = 20_000;

export class LeaderTerm {
  private readonly slots = new Map<string, SlotDoc>();
  /** The whole working set, once loaded. */
  private working?: Map<string, UnsettledDoc>;
  /** Working-set writes ended so far: a load that saw one end meanwhile may have missed it. */
  private workingWrites = 0;
  /** The checkpoint as last read or written (null: there is none); undefined: unknown. */
  private checkpointDoc?: CheckpointDoc | null;
  private checkpointWrites = 0;

  slot(id: string): SlotDoc | undefined {
    return this.slots.get(id);
  }

  /** A slot this process created: its whole document is known. */
  slotCreated(doc: SlotDoc): void {
    if (this.slots.size >= SLOTS_KEPT) this.slots.delete(this.slots.keys().next().value!);
    this.slots.set(doc._id, doc);
  }

  /**
   * An update of a slot succeeded. Documents handed out are never changed: a reader holds the
   * slot as it was when read, as from the database.
   */
  slotUpdated(id: string, matched: boolean, set: Partial<SlotDoc>, unset: readonly (keyof SlotDoc)[] = []): void {
    const known = this.slots.get(id);
    if (!known) return;
    // Matching nothing means the slot is gone: then this memory is wrong, not the database.
    if (!matched) return void this.slots.delete(id);
    const next: SlotDoc = { ...known, ...set };
    for (const field of unset) delete next[field];
    this.slots.set(id, next);
  }

  forgetSlot(id: string): void {
    this.slots.delete(id);
  }

  /** The working set, if loaded. */
  workingSet(): UnsettledDoc[] | undefined {
    return this.working && [...this.working.values()];
  }

  /** Takes a working set read from the database, unless a write ended while it was read. */
  workingSetRead(docs: readonly UnsettledDoc[], writesBefore: number): void {
    if (this.working || this.workingWrites !== writesBefore) return;
    this.working = new Map(docs.map((doc) => [doc._id, doc]));
  }

  get workingWritesEnded(): number {
    return this.workingWrites;
  }

  /** A working-set entry written: `doc` as it now stands, or null when deleted; undefined when the write failed. */
  unsettledWritten(id: string, doc: UnsettledDoc | null | undefined): void {
    this.workingWrites++;
    if (!this.working) return;
    if (doc === undefined) this.working = undefined;
    else if (doc === null) this.working.delete(id);
    else this.working.set(id, doc);
  }

  /** The working-set entry as this term knows it (undefined: not loaded, or not in it). */
  unsettled(id: string): UnsettledDoc | undefined {
    return this.working?.get(id);
  }

  checkpoint(): CheckpointDoc | null | undefined {
    return this.checkpointDoc;
  }

  checkpointRead(doc: CheckpointDoc | null, writesBefore: number): void {
    if (this.checkpointWrites === writesBefore) this.checkpointDoc = doc;
  }

  get checkpointWritesEnded(): number {
    return this.checkpointWrites;
  }

  /** The checkpoint written: as it now stands, or undefined when unknown (the write failed). */
  checkpointWritten(doc: CheckpointDoc | undefined): void {
    this.checkpointWrites++;
    this.checkpointDoc = doc;
  }
}
