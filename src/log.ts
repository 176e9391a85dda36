/** Structured logging: one JSON line per event, with the party (and instance/step ids where known). */
import pino, { type Logger } from 'pino';

const SECRET_FIELDS = ['privateKey', 'secret', 'apiKeys', 'authorization', '["x-api-key"]', 'dxTls.key'];

/**
 * Belt and braces: no log call passes these today (test/secrets-in-logs.test.ts searches the logs),
 * but a future `log.debug({ config })` or a logged request must not leak a key. Pino's paths match
 * at a fixed depth, hence the one- and two-level wildcards.
 */
const REDACTED = SECRET_FIELDS.flatMap((field) => ['', '*', '*.*'].map((prefix) => (prefix === '' ? field : field.startsWith('[') ? `${prefix}${field}` : `${prefix}.${field}`)));

export function createLogger(party: string, level: string): Logger {
  return pino({ level, base: { party }, redact: REDACTED });
}
