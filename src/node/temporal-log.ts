/**
 * The Temporal SDK's own log lines (worker state changes, the workflows' `log` calls, the Rust
 * core's warnings) written through the node's pino logger. Left to itself the SDK prints them to
 * the console in a format of its own, over several lines each, in among the node's JSON lines
 * (operations.md promises JSON lines, which log shippers parse one per line).
 */
import { Runtime, type LogLevel, type LogMetadata, type Logger as TemporalLogger } from '@temporalio/worker';
import { stdSerializers, type Logger } from 'pino';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };
/** Fields pino writes itself: the SDK's metadata must not overwrite them. */
const RESERVED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'party']);

export class TemporalToPino implements TemporalLogger {
  constructor(private readonly target: Logger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const fields: Record<string, unknown> = {};
    // An Error's message and stack are not its own enumerable fields: serialised as pino does `err`.
    for (const [key, value] of Object.entries(meta ?? {})) if (!RESERVED.has(key)) fields[key] = value instanceof Error ? stdSerializers.err(value) : value;
    this.target[LEVELS[level]](fields, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/**
 * Routes the SDK's logging to `log` for the rest of the process. The SDK keeps one runtime per
 * process, made on first use: this must run before the node's first Temporal connection.
 */
export function logTemporalThrough(log: Logger): void {
  // The SDK logs every activity and workflow task at debug level: shown at trace only, so that a
  // node at debug level (the benchmark's) is not flooded with them.
  const level = log.level === 'trace' || !log.isLevelEnabled('info') ? log.level : 'info';
  Runtime.install({ logger: new TemporalToPino(log.child({ component: 'temporal' }, { level })) });
}
