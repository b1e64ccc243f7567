import { Catch } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { ErrorBody } from '@app/common/errors/error-body';
import { ErrorCode, HTTP_STATUS_BY_CODE } from '@app/common/errors/error-code';
import { SseEvent } from '@app/contract/events';
import { countAsStatus } from '@app/metrics/http-metrics.middleware';
import { HttpExceptionFilter } from './http-exception.filter';

/** Refusals that a later try may not meet. */
const REFUSED_FOR_NOW = new Set<ErrorCode>([ErrorCode.RateLimited, ErrorCode.Unavailable]);
/** When the refusal does not say when to try again. */
const DEFAULT_WAIT_MS = 5_000;
const MAX_WAIT_MS = 60_000;
const BEARER_SCHEME = /^\s*Bearer\b/i;

/**
 * The event-stream routes' filter. EventSource gives up for good on an error
 * status, so one refused for now (rate limited, unavailable) gets a stream
 * that ends at once instead, telling why (`refused`) and when to come back
 * (`retry:`, spread over up to twice the wait so that clients refused
 * together do not return together). Every other failure, and every other
 * client, gets the status as on any route.
 */
@Catch()
export class EventSourceRefusalFilter extends HttpExceptionFilter {
  protected override respond(request: Request, response: Response, body: ErrorBody): void {
    if (!isEventSource(request) || !REFUSED_FOR_NOW.has(body.code)) {
      return super.respond(request, response, body);
    }
    const retryMs = Math.round(waitMs(response) * (1 + Math.random()));
    countAsStatus(response, HTTP_STATUS_BY_CODE[body.code]);
    response.status(200);
    response.set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
    });
    response.end(
      `retry: ${retryMs}\nevent: ${SseEvent.Refused}\ndata: ${JSON.stringify(body)}\n\n`,
    );
  }
}

/**
 * A browser's EventSource: a GET that asks for an event stream before
 * anything else, without a Bearer token (it cannot set one; its token is in
 * the query). The browser does send the credentials of a site behind HTTP
 * Basic auth. Fetch-based clients that set a Bearer token read the status.
 */
function isEventSource(request: Request): boolean {
  return (
    request.method === 'GET' &&
    !BEARER_SCHEME.test(request.headers.authorization ?? '') &&
    request.accepts(['application/json', 'text/event-stream']) === 'text/event-stream'
  );
}

function waitMs(response: Response): number {
  const retryAfterSeconds = Number(response.getHeader('Retry-After'));
  if (!(retryAfterSeconds > 0)) return DEFAULT_WAIT_MS;
  return Math.min(retryAfterSeconds * 1000, MAX_WAIT_MS);
}
