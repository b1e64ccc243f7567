import { HttpException, HttpStatus } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import { AppException } from './app.exception';
import { ErrorCode } from './error-code';
import type { ErrorBody } from './error-body';

const CODE_BY_HTTP_STATUS: Partial<Record<number, ErrorCode>> = {
  [HttpStatus.BAD_REQUEST]: ErrorCode.ValidationFailed,
  [HttpStatus.UNAUTHORIZED]: ErrorCode.Unauthorized,
  [HttpStatus.FORBIDDEN]: ErrorCode.Forbidden,
  [HttpStatus.NOT_FOUND]: ErrorCode.NotFound,
  [HttpStatus.METHOD_NOT_ALLOWED]: ErrorCode.NotFound,
  [HttpStatus.CONFLICT]: ErrorCode.Conflict,
  [HttpStatus.PAYLOAD_TOO_LARGE]: ErrorCode.PayloadTooLarge,
  [HttpStatus.UNSUPPORTED_MEDIA_TYPE]: ErrorCode.ValidationFailed,
  [HttpStatus.TOO_MANY_REQUESTS]: ErrorCode.RateLimited,
  [HttpStatus.SERVICE_UNAVAILABLE]: ErrorCode.Unavailable,
};

/**
 * An error made with `http-errors`, as body-parser and raw-body throw them:
 * `expose` marks a 4xx the request caused. Most carry a `type`, but a corrupt
 * compressed body is wrapped without one (`createError(400, zlibError)`).
 */
interface RequestHttpError {
  status: number;
  expose: true;
  type?: unknown;
}

function isRequestHttpError(error: unknown): error is RequestHttpError {
  if (typeof error !== 'object' || error === null) return false;
  const { status, expose } = error as Partial<RequestHttpError>;
  return expose === true && typeof status === 'number' && status >= 400 && status < 500;
}

/**
 * PostgreSQL rolled a transaction back for a conflict with another one:
 * nothing of it was written, and a later try may not meet the conflict.
 */
export const POSTGRES_CONFLICT_ROLLBACK_CODES: ReadonlySet<string> = new Set([
  '40P01', // deadlock_detected
  '40001', // serialization_failure
  '55P03', // lock_not_available: a lock_timeout set in DATABASE_URL's options
]);

/** Database drivers report a lost or refused connection, or a server that takes no writes, with these codes. */
const UNAVAILABLE_DRIVER_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '25P03', // idle_in_transaction_session_timeout: the server ended a session that stalled
  '57014', // query_canceled: a statement_timeout set in DATABASE_URL's options
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '53100', // disk_full
  '25006', // read_only_sql_transaction: a standby, or a primary demoted by a failover
  ...POSTGRES_CONFLICT_ROLLBACK_CODES,
]);

/**
 * SQLite's codes, extended ones included, for a file another process holds
 * (busy), one that takes no writes (read-only), a full disk or a failing
 * one: the file's state, not the request, and it may pass.
 */
const SQLITE_UNAVAILABLE_CODE = /^SQLITE_(BUSY|READONLY|IOERR)(_\w+)?$|^SQLITE_FULL$/;

/** PostgreSQL's connection exceptions (class 08), as servers and poolers in front of them send them. */
const POSTGRES_CONNECTION_CODE = /^08[0-9A-Z]{3}$/;

/**
 * ...and these without a code; `timeout exceeded` is pg-pool finding no free
 * connection in time, `Query read timeout` pg's `query_timeout` (from
 * DATABASE_QUERY_TIMEOUT_MS, MESSAGE_WRITE_TIMEOUT_MS or DATABASE_URL). The
 * outcome of a write that failed so is unknown: it must not be written again
 * as if it had been rolled back.
 */
const UNAVAILABLE_DRIVER_MESSAGE =
  /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|Query read timeout/i;

/** SQLite's codes for a file that takes no writes: full, read-only or failing (not busy). */
const SQLITE_FILE_STATE_CODE = /^SQLITE_(READONLY|IOERR)(_\w+)?$|^SQLITE_FULL$/;

/** A SQLite write refused for the file's state, rather than for a lock another process holds. */
export function isFileStateError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLITE_FILE_STATE_CODE.test(code);
}

export function isUnavailableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    (UNAVAILABLE_DRIVER_CODES.has(code) ||
      SQLITE_UNAVAILABLE_CODE.test(code) ||
      POSTGRES_CONNECTION_CODE.test(code))
  )
    return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && UNAVAILABLE_DRIVER_MESSAGE.test(message);
}

/**
 * What the framework's own exceptions answer. Their messages quote the
 * request (a route's path with its query, a body's text), so they are not
 * echoed.
 */
const FRAMEWORK_MESSAGES: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.ValidationFailed]: 'Malformed request',
  [ErrorCode.NotFound]: 'Not found',
  [ErrorCode.PayloadTooLarge]: 'Request body is too large',
  [ErrorCode.Internal]: 'Internal server error',
};

function fromHttpException(error: HttpException): ErrorBody {
  const status = error.getStatus();
  const code =
    CODE_BY_HTTP_STATUS[status] ??
    (status >= 500 ? ErrorCode.Internal : ErrorCode.ValidationFailed);
  return { code, message: FRAMEWORK_MESSAGES[code] ?? 'Request refused', details: [] };
}

function fromRequestHttpError(error: RequestHttpError): ErrorBody {
  const code = CODE_BY_HTTP_STATUS[error.status] ?? ErrorCode.ValidationFailed;
  if (code === ErrorCode.PayloadTooLarge) {
    return { code, message: 'Request body is too large', details: [] };
  }
  if (error.type === 'entity.parse.failed') {
    return { code, message: 'Malformed JSON body', details: [] };
  }
  return { code, message: 'Unreadable request body', details: [] };
}

/**
 * Turns anything thrown anywhere into the contract's error shape.
 * Unknown errors become INTERNAL with a fixed message, so nothing leaks.
 */
export function toErrorBody(error: unknown): ErrorBody {
  if (error instanceof AppException) return error.toBody();
  if (error instanceof ThrottlerException) {
    return { code: ErrorCode.RateLimited, message: 'Too many requests', details: [] };
  }
  if (error instanceof HttpException) return fromHttpException(error);
  if (isRequestHttpError(error)) return fromRequestHttpError(error);
  if (isUnavailableError(error)) {
    return { code: ErrorCode.Unavailable, message: 'Service temporarily unavailable', details: [] };
  }
  return { code: ErrorCode.Internal, message: 'Internal server error', details: [] };
}

/** What the logs get of a failure the client saw as INTERNAL: its stack, where it has one. */
export function describeFailure(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** Where failures of our own are logged (a Nest `Logger`). */
export interface FailureLog {
  error(message: string): void;
}

/**
 * The error's body; a failure of our own (INTERNAL), of which the client is
 * told nothing, is logged first.
 */
export function reportedErrorBody(error: unknown, logger: FailureLog) {
  const body = toErrorBody(error);
  if (body.code === ErrorCode.Internal) logger.error(describeFailure(error));
  return body;
}
