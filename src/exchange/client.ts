/**
 * Private transfer, sending side: posts invitations and envelopes to a peer's data-exchange
 * endpoint. Failures throw, so the calling activity retries with backoff until the peer takes it.
 */
import type { SignedEnvelope } from '../model/envelope';
import type { Invitation } from '../model/instance';
import type { PartyEndpoint } from '../model/network';

/**
 * A busy peer must not be mistaken for a dead one: giving up early only makes the sender retry,
 * which adds to the peer's load. Kept under the delivering activity's 30 s start-to-close timeout.
 */
const DELIVERY_TIMEOUT_MS = 25_000;

export class DeliveryError extends Error {
  constructor(
    readonly to: string,
    readonly status: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

async function post(to: PartyEndpoint, path: string, body: unknown, from: string, timeoutMs: number): Promise<void> {
  const url = `${to.dxUrl}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-lockstep-party': from },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new DeliveryError(to.name, undefined, `cannot reach ${to.name} at ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) {
    const text = (await response.text()).slice(0, 500);
    throw new DeliveryError(to.name, response.status, `${to.name} refused ${path} with ${response.status}: ${text}`);
  }
}

export function sendInvitation(to: PartyEndpoint, invitation: Invitation, from: string, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<void> {
  return post(to, '/dx/v1/invitations', invitation, from, timeoutMs);
}

export function sendEnvelope(to: PartyEndpoint, signed: SignedEnvelope, from: string, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<void> {
  return post(to, '/dx/v1/envelopes', signed, from, timeoutMs);
}
