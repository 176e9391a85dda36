/**
 * A throwaway certificate authority for the local stack: one CA and one certificate per party,
 * so nodes can talk data exchange over TLS (and mutual TLS) on one machine. Made with the
 * openssl command line rather than an npm library: the maintained X.509 libraries need a global
 * reflect polyfill or a native build, and openssl is on every machine that runs the stack.
 * Production deployments bring their own certificates (docs/operations.md).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PartyCertificate {
  /** PEM files: the party's certificate (server and client), its private key, the CA that signed it. */
  cert: string;
  key: string;
  ca: string;
}

/** Long enough for any dev stack, short enough not to matter if one leaks. */
const DAYS = '30';

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync(process.env.LOCKSTEP_OPENSSL ?? 'openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`openssl ${args[0]} failed while making the local stack's TLS certificates: ${stderr || (error as Error).message} (set LOCKSTEP_OPENSSL to its path if it is not on PATH)`);
  }
}

/**
 * Writes `<dir>/ca.crt` (and its key) and `<dir>/<party>.crt|.key` for each party. Each party
 * certificate names the party as its common name, is valid for 127.0.0.1 and localhost, and may
 * serve and present itself as a client.
 */
export function makeLocalCertificates(dir: string, parties: string[]): Record<string, PartyCertificate> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...curve, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', DAYS, '-subj', '/CN=Lockstep local stack CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  writeFileSync(join(dir, 'party.ext'), ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost', ''].join('\n'));
  const out: Record<string, PartyCertificate> = {};
  for (const party of parties) {
    openssl(['req', ...curve, '-keyout', `${party}.key`, '-out', `${party}.csr`, '-subj', `/CN=${party}`], dir);
    openssl(['x509', '-req', '-in', `${party}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${party}.crt`, '-days', DAYS, '-extfile', 'party.ext'], dir);
    out[party] = { cert: join(dir, `${party}.crt`), key: join(dir, `${party}.key`), ca: join(dir, 'ca.crt') };
  }
  return out;
}
