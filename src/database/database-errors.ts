import { QueryFailedError, type DataSourceOptions } from 'typeorm';
import { reasonOf } from '@app/common/errors/reason-of';
import { POSTGRES_CONFLICT_ROLLBACK_CODES } from '@app/common/errors/to-error-body';

const UNIQUE_VIOLATION_CODES = new Set([
  '23505', // PostgreSQL unique_violation
  'SQLITE_CONSTRAINT_UNIQUE',
  'SQLITE_CONSTRAINT_PRIMARYKEY',
]);

/** True when an insert failed because a unique index already holds the key. */
export function isUniqueViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driverError = error.driverError as { code?: string } | undefined;
  return UNIQUE_VIOLATION_CODES.has(driverError?.code ?? '');
}

/**
 * The transaction was rolled back for a conflict with another (a deadlock,
 * a serialization failure, a lock_timeout): a definite outcome, nothing
 * written, which trying again may get past.
 */
export function isRolledBackForConflict(error: unknown): boolean {
  const source: unknown = error instanceof QueryFailedError ? error.driverError : error;
  const code = (source as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && POSTGRES_CONFLICT_ROLLBACK_CODES.has(code);
}

/**
 * A statement the server stopped while it waited: a `lock_timeout` or
 * `statement_timeout` set in DATABASE_URL's options (or on the role).
 */
export function isLockWaitCut(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return code === '55P03' || code === '57014';
}

/** PostgreSQL classes 22 (data exception), 23 (integrity violation), 54 (program limit exceeded). */
const POSTGRES_DATA_REFUSAL_CODE = /^(22|23|54)[0-9A-Z]{3}$/;
const SQLITE_DATA_REFUSAL_CODE = /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH|RANGE)(_\w+)?$/;

/**
 * The database refused the statement for the data it carried (a value it
 * cannot take, a constraint, a limit): nothing of it was written, and
 * without the item at fault the rest may pass. Any other failure may have
 * come after a commit (a connection lost with the answer on its way).
 */
export function isRefusedForItsData(error: unknown): boolean {
  // QueryFailedError carries its driver error's code too.
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return (
    typeof code === 'string' &&
    (POSTGRES_DATA_REFUSAL_CODE.test(code) || SQLITE_DATA_REFUSAL_CODE.test(code))
  );
}

/** A session setting the service needs that older servers do not know, or refuse there. */
const NEEDS_POSTGRES_14 = 'client_connection_check_interval';

/**
 * Names the setting to look at, or the server version needed; the message
 * never includes the URL, which may hold a password.
 */
export function cannotOpen(options: DataSourceOptions, error: unknown): Error {
  const reason = reasonOf(error);
  const setting = options.type === 'postgres' ? 'DATABASE_URL' : 'SQLITE_PATH';
  const needs = reason.includes(NEEDS_POSTGRES_14)
    ? ' (the service needs PostgreSQL 14 or later, on Linux, macOS or a BSD)'
    : '';
  return new Error(`Cannot open the database at ${setting}: ${reason}${needs}`, { cause: error });
}
