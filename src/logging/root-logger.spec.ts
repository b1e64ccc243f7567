import { Writable } from 'node:stream';
import { QueryFailedError } from 'typeorm';
import { rootLogger } from './logging.module';

describe('rootLogger', () => {
  it('never writes what a failed query carries of its row', () => {
    const written: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written.push(chunk.toString());
        done();
      },
    });
    const logger = rootLogger({ logLevel: 'info', serviceName: 'test' }, sink);
    const driverError = Object.assign(new Error('value too long for type character varying(32)'), {
      code: '22001',
      detail: 'Failing row contains (ada, $2a$12$secrethash).',
    });
    const failed = new QueryFailedError(
      'INSERT INTO "users" VALUES ($1, $2)',
      ['ada', '$2a$12$secrethash'],
      driverError,
    );

    logger.error({ err: failed });

    expect(written.join('')).toContain('value too long');
    expect(written.join('')).not.toContain('secrethash');
  });
});
