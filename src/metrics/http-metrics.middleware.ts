import { Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { MetricsService } from './metrics.service';

/** The status of a request whose client left before any answer, as nginx logs it. */
export const CLIENT_CLOSED_REQUEST = '499';

/**
 * Set on a response that stands for another status than the one it went out
 * with: an EventSource refused for now gets a 200 stream that tells it so,
 * and is counted as the refusal it is (429, 503).
 */
export function countAsStatus(response: Response, status: number): void {
  (response.locals as { countedStatus?: number }).countedStatus = status;
}

/**
 * Set on a response that goes on once answered (an event stream): it is
 * timed until now, when it opens, so that the hours it stays open do not
 * count as the request's latency.
 */
export function timeUntilNow(response: Response): void {
  (response.locals as { answeredAt?: number }).answeredAt = performance.now();
}

function countedStatus(response: Response): string {
  if (!response.headersSent) return CLIENT_CLOSED_REQUEST;
  const { countedStatus: counted } = response.locals as { countedStatus?: number };
  return String(counted ?? response.statusCode);
}

/**
 * Times every HTTP request, labelled by its route pattern (never the raw URL),
 * when its response finishes or, for a stream the client leaves, closes; an
 * event stream is timed until it opened (`timeUntilNow`). A client that
 * leaves before the answer is counted as 499, not as the status the response
 * was preset with (200, or 201 for a POST); see `countAsStatus`.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: MetricsService) {}

  use(request: Request, response: Response, next: NextFunction): void {
    const startedAt = performance.now();
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const route = (request.route as { path?: string } | undefined)?.path;
      const { answeredAt = performance.now() } = response.locals as { answeredAt?: number };
      const labels = {
        method: request.method,
        route: route ? `${request.baseUrl}${route}` : 'unmatched',
        status: countedStatus(response),
      };
      this.metrics.httpRequestDuration.observe(labels, (answeredAt - startedAt) / 1000);
    };
    response.once('finish', record);
    response.once('close', record);
    next();
  }
}
