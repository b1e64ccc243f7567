import { BadRequestException, NotFoundException } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import { QueryFailedError } from 'typeorm';
import { AppException } from './app.exception';
import { isFileStateError, toErrorBody } from './to-error-body';

describe('toErrorBody', () => {
  it('keeps an AppException as it is', () => {
    expect(
      toErrorBody(AppException.validation('bad', [{ field: 'a', constraints: ['x'] }])),
    ).toEqual({
      code: 'VALIDATION_FAILED',
      message: 'bad',
      details: [{ field: 'a', constraints: ['x'] }],
    });
  });

  it('maps Nest and throttler exceptions by status, without echoing their messages', () => {
    expect(toErrorBody(new NotFoundException('Cannot GET /x?token=secret'))).toEqual({
      code: 'NOT_FOUND',
      message: 'Not found',
      details: [],
    });
    expect(toErrorBody(new BadRequestException('"password123{" is not valid JSON'))).toEqual({
      code: 'VALIDATION_FAILED',
      message: 'Malformed request',
      details: [],
    });
    expect(toErrorBody(new ThrottlerException()).code).toBe('RATE_LIMITED');
  });

  /** Shaped as `http-errors` makes them: `expose` is true for every 4xx. */
  const httpError = (status: number, props: object = {}) =>
    Object.assign(new Error('from the body parser'), {
      status,
      statusCode: status,
      expose: status < 500,
      ...props,
    });

  it('maps body-parser errors', () => {
    expect(toErrorBody(httpError(413, { type: 'entity.too.large' }))).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'Request body is too large',
      details: [],
    });
    expect(toErrorBody(httpError(400, { type: 'entity.parse.failed' })).code).toBe(
      'VALIDATION_FAILED',
    );
    expect(toErrorBody(httpError(415, { type: 'charset.unsupported' })).code).toBe(
      'VALIDATION_FAILED',
    );
  });

  it('maps a corrupt compressed body, which body-parser wraps without a type', () => {
    const zlibError = httpError(400, { errno: -3, code: 'Z_DATA_ERROR' });
    expect(toErrorBody(zlibError)).toEqual({
      code: 'VALIDATION_FAILED',
      message: 'Unreadable request body',
      details: [],
    });
  });

  it('maps any exposed 4xx by its status, and keeps a 5xx internal', () => {
    expect(toErrorBody(httpError(403)).code).toBe('FORBIDDEN');
    expect(toErrorBody(httpError(408)).code).toBe('VALIDATION_FAILED');
    expect(toErrorBody(httpError(400, { expose: false })).code).toBe('INTERNAL');
    expect(toErrorBody(httpError(500, { type: 'stream.encoding.set' })).code).toBe('INTERNAL');
  });

  it('reports a lost database as UNAVAILABLE', () => {
    expect(
      toErrorBody(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      ).code,
    ).toBe('UNAVAILABLE');
    expect(toErrorBody(new Error('Connection terminated unexpectedly')).code).toBe('UNAVAILABLE');
    expect(toErrorBody(new Error('Query read timeout')).code).toBe('UNAVAILABLE');
  });

  it.each([
    'SQLITE_BUSY',
    'SQLITE_BUSY_SNAPSHOT',
    'SQLITE_BUSY_RECOVERY',
    'SQLITE_BUSY_TIMEOUT',
    'SQLITE_READONLY',
    'SQLITE_READONLY_DBMOVED',
    'SQLITE_FULL',
    'SQLITE_IOERR',
    'SQLITE_IOERR_FSYNC',
  ])(
    'reports a SQLite file that is busy, takes no writes or cannot be written (%s) as UNAVAILABLE',
    (code) => {
      expect(toErrorBody(Object.assign(new Error('database is locked'), { code })).code).toBe(
        'UNAVAILABLE',
      );
    },
  );

  it.each([
    ['25006', 'cannot execute INSERT in a read-only transaction'],
    ['53100', 'could not extend file: No space left on device'],
    ['08P01', 'server conn crashed?'],
    ['08006', 'connection failure'],
    ['25P03', 'terminating connection due to idle-in-transaction timeout'],
    ['57014', 'canceling statement due to statement timeout'],
    ['EHOSTUNREACH', 'connect EHOSTUNREACH 10.0.0.5:5432'],
    ['40P01', 'deadlock detected'],
    ['40001', 'could not serialize access due to concurrent update'],
    ['55P03', 'canceling statement due to lock timeout'],
  ])(
    'reports a PostgreSQL that is gone, takes no writes or rolled back for a conflict (%s) as UNAVAILABLE, also wrapped by the ORM',
    (code, text) => {
      const refused = Object.assign(new Error(text), { code });
      expect(toErrorBody(refused).code).toBe('UNAVAILABLE');
      expect(toErrorBody(new QueryFailedError('INSERT', [], refused)).code).toBe('UNAVAILABLE');
    },
  );

  it.each(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_ERROR', 'SQLITE_CORRUPT'])(
    'keeps other SQLite failures (%s) internal',
    (code) => {
      expect(toErrorBody(Object.assign(new Error('no'), { code })).code).toBe('INTERNAL');
    },
  );

  it('reports a pool with no free connection in time as UNAVAILABLE, also wrapped by the ORM', () => {
    const poolTimeout = new Error('timeout exceeded when trying to connect');
    expect(toErrorBody(poolTimeout).code).toBe('UNAVAILABLE');
    expect(toErrorBody(new QueryFailedError('SELECT 1', [], poolTimeout)).code).toBe('UNAVAILABLE');
  });

  it('never leaks the text of an unknown error', () => {
    const sqlError = new QueryFailedError(
      'SELECT * FROM "users" WHERE password_hash = $1',
      ['x'],
      new Error('syntax error'),
    );
    const body = toErrorBody(sqlError);
    expect(body).toEqual({ code: 'INTERNAL', message: 'Internal server error', details: [] });
    expect(toErrorBody(new TypeError('secret internals')).message).toBe('Internal server error');
  });

  it('keeps a parse failure of our own internal: only the body parser’s is the client’s JSON', () => {
    const ownParse = (() => {
      try {
        JSON.parse('{stored');
      } catch (error) {
        return error;
      }
    })();
    expect(toErrorBody(ownParse).code).toBe('INTERNAL');
    const bodyParse = Object.assign(new SyntaxError('Unexpected token'), {
      status: 400,
      expose: true,
      type: 'entity.parse.failed',
    });
    expect(toErrorBody(bodyParse)).toEqual({
      code: 'VALIDATION_FAILED',
      message: 'Malformed JSON body',
      details: [],
    });
  });

  it('tells a SQLite file that takes no writes from one another process has locked', () => {
    const sqlite = (code: string) => Object.assign(new Error(code), { code });
    expect(
      ['SQLITE_FULL', 'SQLITE_READONLY', 'SQLITE_IOERR_FSYNC'].map(sqlite).every(isFileStateError),
    ).toBe(true);
    expect(
      ['SQLITE_BUSY', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_CONSTRAINT']
        .map(sqlite)
        .some(isFileStateError),
    ).toBe(false);
  });
});
