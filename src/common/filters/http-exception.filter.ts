import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Logger as Pino } from 'pino';
import { ErrorCode, HTTP_STATUS_BY_CODE } from '@app/common/errors/error-code';
import { AppException } from '@app/common/errors/app.exception';
import type { ErrorBody } from '@app/common/errors/error-body';
import { toErrorBody } from '@app/common/errors/to-error-body';

type RequestWithLog = Request & { log?: Pino };

/** The REST transport's one filter: every failure leaves as the contract's error shape. */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger(HttpExceptionFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const response = http.getResponse<Response>();
    const body = toErrorBody(exception);
    const request = http.getRequest<RequestWithLog>();
    if (body.code === ErrorCode.Internal) {
      this.logError(request, exception);
    } else if (body.code === ErrorCode.Unavailable && !(exception instanceof AppException)) {
      // The service's own refusals (a drain) are no failure of a dependency.
      this.logUnavailable(request, exception);
    }
    if (response.headersSent) {
      response.end();
      return;
    }
    if (body.code === ErrorCode.RateLimited || body.code === ErrorCode.Unavailable)
      exposeRetryAfter(response, exception);
    this.respond(request, response, body);
  }

  protected respond(_request: Request, response: Response, body: ErrorBody): void {
    response.status(HTTP_STATUS_BY_CODE[body.code]).json(body);
  }

  /** With the request's own logger where there is one, so that the line carries the request id. */
  private logError(request: RequestWithLog, exception: unknown): void {
    if (request.log) request.log.error({ err: exception, context: HttpExceptionFilter.name });
    else this.logger.error(exception instanceof Error ? exception.stack : String(exception));
  }

  private logUnavailable(request: RequestWithLog, exception: unknown): void {
    const message = `Dependency unavailable: ${(exception as Error).message}`;
    if (request.log) request.log.warn({ context: HttpExceptionFilter.name }, message);
    else this.logger.warn(message);
  }
}

/**
 * `Retry-After` for a refusal that knows when to try again: a per-user
 * budget's, a draining node's, or the throttler's, which names its header per budget
 * (`Retry-After-strict`) where clients look for `Retry-After`.
 */
function exposeRetryAfter(response: Response, exception: unknown): void {
  if (response.getHeader('Retry-After') !== undefined) return;
  const { retryAfterSeconds } = exception as Partial<AppException>;
  if (retryAfterSeconds !== undefined)
    return void response.setHeader('Retry-After', String(retryAfterSeconds));
  const named = Object.keys(response.getHeaders()).find((name) => name.startsWith('retry-after-'));
  if (named) response.setHeader('Retry-After', String(response.getHeader(named)));
}
