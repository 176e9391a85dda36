import type { EventType } from './event';

/** An app's request to have this node's events POSTed to a URL, signed with a shared secret. */
export interface WebhookSubscription {
  id: string;
  /** The app that created it (from its API key); only that app sees and manages it. */
  app: string;
  url: string;
  /** Event types to send; empty means all. */
  types: EventType[];
  instanceId?: string;
  createdAt: string;
}

export type DeliveryState = 'pending' | 'delivered' | 'dead';

/** One event on its way to one subscription; `dead` ones form the dead-letter list. */
export interface WebhookDelivery {
  id: string;
  subscriptionId: string;
  seq: number;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredAt: string | null;
}
