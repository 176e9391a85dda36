/**
 * TLS for data exchange: the node's certificate and key, the CA it trusts for its peers, and
 * whether peers must present a client certificate (mutual TLS). The same certificate serves the
 * node's endpoint and identifies it as a client, so it needs both serverAuth and clientAuth (or
 * no extended key usage). With mutual TLS the certificate's common name is the party's name, and
 * a request's claimed sender must match it.
 */
import { readFileSync } from 'node:fs';
import { TLSSocket } from 'node:tls';
import type { ServerOptions } from 'node:https';
import type { NetworkFile } from '../model/network';

export interface DxTls {
  /** PEM contents, read once at start. */
  cert: string;
  key: string;
  /** Trusted for peers' server certificates and, with mutual TLS, their client certificates; absent: the system's CAs. */
  ca?: string;
  requireClientCert: boolean;
}

function readPem(file: string, variable: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    // The path only: never the contents, which may be a key.
    throw new Error(`${variable}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

/**
 * LOCKSTEP_DX_TLS_CERT, _KEY and _CA (file paths) and LOCKSTEP_DX_TLS_REQUIRE_CLIENT_CERT; without
 * them, the certificates the local stack made for this party (if it made any). Undefined: plain HTTP.
 */
export function dxTlsFromEnv(env: NodeJS.ProcessEnv, party: string, network: NetworkFile): DxTls | undefined {
  const certFile = env.LOCKSTEP_DX_TLS_CERT;
  const keyFile = env.LOCKSTEP_DX_TLS_KEY;
  if ((certFile === undefined) !== (keyFile === undefined)) throw new Error('set both LOCKSTEP_DX_TLS_CERT and LOCKSTEP_DX_TLS_KEY, or neither');
  const dev = network.devTls;
  const files = certFile && keyFile ? { cert: certFile, key: keyFile, ca: env.LOCKSTEP_DX_TLS_CA } : dev?.parties[party] ? { ...dev.parties[party], ca: env.LOCKSTEP_DX_TLS_CA ?? dev.ca } : undefined;
  const requireClientCert = flag(env, 'LOCKSTEP_DX_TLS_REQUIRE_CLIENT_CERT') ?? dev?.requireClientCert ?? false;
  if (!files) {
    if (requireClientCert) throw new Error('LOCKSTEP_DX_TLS_REQUIRE_CLIENT_CERT needs TLS: set LOCKSTEP_DX_TLS_CERT and LOCKSTEP_DX_TLS_KEY');
    return undefined;
  }
  if (requireClientCert && !files.ca) throw new Error('mutual TLS needs LOCKSTEP_DX_TLS_CA: the CA whose client certificates this node accepts');
  return {
    cert: readPem(files.cert, 'LOCKSTEP_DX_TLS_CERT'),
    key: readPem(files.key, 'LOCKSTEP_DX_TLS_KEY'),
    ...(files.ca ? { ca: readPem(files.ca, 'LOCKSTEP_DX_TLS_CA') } : {}),
    requireClientCert,
  };
}

export function dxServerOptions(tls: DxTls): ServerOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca ? { ca: tls.ca } : {}),
    minVersion: 'TLSv1.2',
    // Refused in the handshake: a client without a certificate from the CA never reaches a route.
    requestCert: tls.requireClientCert,
    rejectUnauthorized: tls.requireClientCert,
  };
}

/** The party a verified client certificate names (its common name), when the connection has one. */
export function certifiedPeerOf(socket: unknown): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && cn.length > 0 ? cn : undefined;
}
