import { Writable } from 'node:stream';
import pino from 'pino';
import { AppLogger } from './app-logger';

function capture(level = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: new AppLogger(pino({ level }, sink)), lines };
}

describe('AppLogger', () => {
  it('writes Nest log calls as pino lines with their context', () => {
    const { logger, lines } = capture();
    logger.log('Listening', 'Bootstrap');
    logger.warn('Slow', 'Database');
    logger.log('no context');
    expect(lines).toEqual([
      expect.objectContaining({ level: 30, context: 'Bootstrap', msg: 'Listening' }),
      expect.objectContaining({ level: 40, context: 'Database', msg: 'Slow' }),
      expect.objectContaining({ level: 30, msg: 'no context' }),
    ]);
    expect(lines[2]).not.toHaveProperty('context');
  });

  it('keeps an error with its stack under err', () => {
    const { logger, lines } = capture();
    logger.error(new Error('boom'), 'Worker');
    expect(lines[0]).toMatchObject({
      level: 50,
      context: 'Worker',
      msg: 'boom',
      err: { message: 'boom', stack: expect.stringContaining('Error: boom') },
    });
  });

  it("reads Nest's error(message, stack, context) as an error with that stack", () => {
    const { logger, lines } = capture();
    const stack = 'Error: lost\n    at somewhere (file.js:1:1)';
    logger.error('lost', stack, 'ExceptionsHandler');
    logger.error('lost too', stack);
    expect(lines[0]).toMatchObject({
      context: 'ExceptionsHandler',
      msg: 'lost',
      err: { message: 'lost', stack },
    });
    expect(lines[1]).toMatchObject({ msg: 'lost too', err: { stack } });
    expect(lines[1]).not.toHaveProperty('context');
  });

  it('merges object messages and formats printf arguments', () => {
    const { logger, lines } = capture();
    logger.log({ rooms: 3 }, 'Rooms');
    logger.log('%d sockets', 12, 'Gateway');
    expect(lines[0]).toMatchObject({ rooms: 3, context: 'Rooms' });
    expect(lines[1]).toMatchObject({ msg: '12 sockets', context: 'Gateway' });
  });

  it('drops calls below the configured level without formatting them', () => {
    const { logger, lines } = capture('warn');
    logger.log('quiet');
    logger.debug('quieter');
    logger.verbose('quietest');
    logger.fatal('loud');
    expect(lines).toEqual([expect.objectContaining({ level: 60, msg: 'loud' })]);
  });
});
