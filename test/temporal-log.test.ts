/**
 * The Temporal SDK's log lines go through the node's pino logger (src/node/temporal-log.ts):
 * levels mapped, the SDK's metadata as fields (errors with their message and stack), pino's
 * own fields kept.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { TemporalToPino } from '../src/node/temporal-log';

function capture(level: string): { logger: TemporalToPino; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: new TemporalToPino(pino({ level, base: { party: 'acme' } }, sink)), lines };
}

test("each SDK level maps to pino's, below the logger's level nothing is written", () => {
  const { logger, lines } = capture('info');
  logger.trace('t');
  logger.debug('d');
  logger.info('i');
  logger.warn('w');
  logger.error('e');
  logger.log('WARN', 'w2');
  expect(lines.map((l) => [l.level, l.msg])).toEqual([
    [30, 'i'],
    [40, 'w'],
    [50, 'e'],
    [40, 'w2'],
  ]);
});

test('metadata becomes fields; an error keeps its message and stack; pino fields are not overwritten', () => {
  const { logger, lines } = capture('info');
  logger.warn('Activity failed', { activityType: 'publishStep', error: new Error('cannot reach globex'), msg: 'not mine', party: 'globex', level: 'x' });
  const [line] = lines;
  expect(line).toEqual(expect.objectContaining({ level: 40, msg: 'Activity failed', party: 'acme', activityType: 'publishStep' }));
  expect(line!.error).toEqual(expect.objectContaining({ type: 'Error', message: 'cannot reach globex', stack: expect.stringContaining('cannot reach globex') }));
});
