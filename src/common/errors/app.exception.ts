import { ErrorCode } from './error-code';
import type { ErrorBody, FieldError } from './error-body';

/**
 * The exception every layer throws for a failure the client should see.
 * Transport filters turn it into the contract's error shape.
 */
export class AppException extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: FieldError[] = [],
    /** RATE_LIMITED: when trying again can succeed, where that is known (REST's `Retry-After`). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AppException';
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message, details: this.details };
  }

  static unauthorized(message = 'Authentication required'): AppException {
    return new AppException(ErrorCode.Unauthorized, message);
  }

  /** A live connection's token ran out: the client connects again with a fresh one. */
  static tokenExpired(): AppException {
    return AppException.unauthorized('Token expired');
  }

  /** The account was closed since the token was issued. */
  static accountDeleted(): AppException {
    return AppException.unauthorized('Account deleted');
  }

  static forbidden(message: string): AppException {
    return new AppException(ErrorCode.Forbidden, message);
  }

  static notFound(message: string): AppException {
    return new AppException(ErrorCode.NotFound, message);
  }

  static conflict(message: string): AppException {
    return new AppException(ErrorCode.Conflict, message);
  }

  static validation(message: string, details: FieldError[] = []): AppException {
    return new AppException(ErrorCode.ValidationFailed, message, details);
  }

  static rateLimited(message = 'Too many requests', retryAfterSeconds?: number): AppException {
    return new AppException(ErrorCode.RateLimited, message, [], retryAfterSeconds);
  }

  static unavailable(
    message = 'Service temporarily unavailable',
    retryAfterSeconds?: number,
  ): AppException {
    return new AppException(ErrorCode.Unavailable, message, [], retryAfterSeconds);
  }
}
