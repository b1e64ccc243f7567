import { BadRequestException, NotFoundException } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import { QueryFailedError } from 'typeorm';
import { AppException } from './app.exception';
import { toErrorBody } from './to-error-body';

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

  it('maps Nest and throttler exceptions by status', () => {
    expect(toErrorBody(new NotFoundException('Cannot GET /x')).code).toBe('NOT_FOUND');
    expect(toErrorBody(new BadRequestException('Unexpected token')).code).toBe('VALIDATION_FAILED');
    expect(toErrorBody(new ThrottlerException()).code).toBe('RATE_LIMITED');
  });

  it('maps body-parser errors', () => {
    expect(toErrorBody({ type: 'entity.too.large', status: 413 }).code).toBe('PAYLOAD_TOO_LARGE');
    expect(toErrorBody({ type: 'entity.parse.failed', status: 400 }).code).toBe(
      'VALIDATION_FAILED',
    );
  });

  it('reports a lost database as UNAVAILABLE', () => {
    expect(
      toErrorBody(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      ).code,
    ).toBe('UNAVAILABLE');
    expect(toErrorBody(new Error('Connection terminated unexpectedly')).code).toBe('UNAVAILABLE');
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
});
