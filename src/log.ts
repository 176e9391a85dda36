/** Structured logging: one JSON line per event, with the party (and instance/step ids where known). */
import pino, { type Logger } from 'pino';

export function createLogger(party: string, level: string): Logger {
  return pino({ level, base: { party }, redact: ['privateKey', 'secret', '*.privateKey', '*.secret'] });
}
