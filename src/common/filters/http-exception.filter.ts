import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Logger as Pino } from 'pino';
import { ErrorCode, HTTP_STATUS_BY_CODE } from '@app/common/errors/error-code';
import type { AppException } from '@app/common/errors/app.exception';
import type { ErrorBody } from '@app/common/errors/error-body';
import { toErrorBody } from '@app/common/errors/to-error-body';
import { SseEvent } from '@app/contract/events';

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
    } else if (body.code === ErrorCode.Unavailable) {
      this.logUnavailable(request, exception);
    }
    if (response.headersSent) {
      response.end();
      return;
    }
    if (body.code === ErrorCode.RateLimited) exposeRetryAfter(response, exception);
    if (isEventSource(request) && REFUSED_FOR_NOW.has(body.code)) {
      return refuseEventSourceForNow(response, body);
    }
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
 * budget's, or the throttler's, which names its header per budget
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

/** Refusals that a later try may not meet. */
const REFUSED_FOR_NOW = new Set<ErrorCode>([ErrorCode.RateLimited, ErrorCode.Unavailable]);
/** When the refusal does not say when to try again. */
const DEFAULT_RETRY_MS = 5_000;

/** EventSource asks for an event stream, and nothing else does by default. */
function isEventSource(request: Request): boolean {
  return request.headers.accept?.includes('text/event-stream') === true;
}

/**
 * A stream that ends at once, telling why (`refused`) and when to come back
 * (`retry:`, spread over twice the wait so that clients refused together do
 * not return together): EventSource gives up for good on an error status.
 */
function refuseEventSourceForNow(response: Response, body: ErrorBody): void {
  const retryAfterSeconds = Number(response.getHeader('Retry-After'));
  const waitMs = retryAfterSeconds > 0 ? retryAfterSeconds * 1000 : DEFAULT_RETRY_MS;
  const retryMs = Math.round(waitMs * (1 + Math.random()));
  response.status(200);
  response.set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
  });
  response.end(`retry: ${retryMs}\nevent: ${SseEvent.Refused}\ndata: ${JSON.stringify(body)}\n\n`);
}
