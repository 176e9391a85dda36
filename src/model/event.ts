/** What a node tells its apps: one entry of its durable event log, numbered per node. */
export const EVENT_TYPES = [
  'instance.started',
  'instance.ended',
  'step.proposed',
  'step.confirmed',
  'step.rejected',
  'task.opened',
  'task.completed',
  'chain.reorganised',
  'data.waiting',
  'pin.failing',
  'pin.failed',
  'security.refused',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface LockstepEvent {
  /** Per-node, increasing; may have gaps (a crash between numbering and writing), never repeats. */
  seq: number;
  type: EventType;
  /** ISO time the node recorded it. */
  at: string;
  instanceId?: string;
  step?: string;
  envelopeHash?: string;
  data: Record<string, unknown>;
}

/** What a caller hands to `emit`; `key` makes emitting the same fact twice a no-op. */
export interface EventInput {
  type: EventType;
  /** Identity of the fact, e.g. `step.confirmed:<envelopeHash>`. */
  key: string;
  instanceId?: string;
  step?: string;
  envelopeHash?: string;
  data?: Record<string, unknown>;
}
