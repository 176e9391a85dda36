/**
 * Private transfer, sending side: posts invitations and envelopes to a peer's data-exchange
 * endpoint, over HTTPS when the peer's dxUrl says so (trusting the configured CA, presenting this
 * node's certificate for mutual TLS). Failures throw, so the calling activity retries with
 * backoff until the peer takes it.
 */
import http from 'node:http';
import https from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { SignedEnvelope } from '../model/envelope';
import type { Invitation } from '../model/instance';
import type { PartyEndpoint } from '../model/network';
import type { DxTls } from './tls';

/**
 * A busy peer must not be mistaken for a dead one: giving up early only makes the sender retry,
 * which adds to the peer's load. Kept under the delivering activity's 30 s start-to-close timeout.
 */
const DELIVERY_TIMEOUT_MS = 25_000;
/** Enough of a refusal's body to say why; a peer cannot make the sender buffer more. */
const KEPT_RESPONSE_BYTES = 500;

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

interface Answer {
  status: number;
  text: string;
}

export class DxClient {
  // Kept-alive connections: a TLS handshake per delivery would cost more than the delivery.
  private readonly plain = new http.Agent({ keepAlive: true });
  private readonly secure: https.Agent;
  /** Under mutual TLS certificates name parties, so a peer's server must also be the party we mean to reach. */
  private readonly serverMustBeParty: boolean;

  constructor(tls?: DxTls) {
    this.serverMustBeParty = tls?.requireClientCert ?? false;
    this.secure = new https.Agent({
      keepAlive: true,
      minVersion: 'TLSv1.2',
      ...(tls?.ca ? { ca: tls.ca } : {}),
      ...(tls ? { cert: tls.cert, key: tls.key } : {}),
    });
  }

  sendInvitation(to: PartyEndpoint, invitation: Invitation, from: string, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<void> {
    return this.post(to, '/dx/v1/invitations', invitation, from, timeoutMs);
  }

  sendEnvelope(to: PartyEndpoint, signed: SignedEnvelope, from: string, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<void> {
    return this.post(to, '/dx/v1/envelopes', signed, from, timeoutMs);
  }

  close(): void {
    this.plain.destroy();
    this.secure.destroy();
  }

  private async post(to: PartyEndpoint, path: string, body: unknown, from: string, timeoutMs: number): Promise<void> {
    const url = new URL(`${to.dxUrl}${path}`);
    let answer: Answer;
    try {
      answer = await this.request(url, JSON.stringify(body), from, to.name, timeoutMs);
    } catch (error) {
      throw new DeliveryError(to.name, undefined, `cannot reach ${to.name} at ${url.href}: ${(error as Error).message}`);
    }
    if (answer.status < 200 || answer.status >= 300) {
      throw new DeliveryError(to.name, answer.status, `${to.name} refused ${path} with ${answer.status}: ${answer.text}`);
    }
  }

  private serverIdentity(party: string): (host: string, cert: PeerCertificate) => Error | undefined {
    return (host, cert) => {
      const hostError = checkServerIdentity(host, cert);
      if (hostError) return hostError;
      const cn = cert.subject?.CN;
      return cn === party ? undefined : new Error(`the server's certificate is ${String(cn)}'s, not ${party}'s`);
    };
  }

  private request(url: URL, body: string, from: string, party: string, timeoutMs: number): Promise<Answer> {
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        url,
        {
          method: 'POST',
          agent: secure ? this.secure : this.plain,
          ...(secure && this.serverMustBeParty ? { checkServerIdentity: this.serverIdentity(party) } : {}),
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-lockstep-party': from },
        },
        (res) => {
          const kept: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            if (size < KEPT_RESPONSE_BYTES) kept.push(chunk);
            size += chunk.length;
          });
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(kept).toString('utf8').slice(0, KEPT_RESPONSE_BYTES) });
          });
          res.on('error', reject);
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      req.end(body);
    });
  }
}
