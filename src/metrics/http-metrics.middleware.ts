import { Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { MetricsService } from './metrics.service';

/** The status of a request whose client left before any answer, as nginx logs it. */
export const CLIENT_CLOSED_REQUEST = '499';

/**
 * Times every HTTP request, labelled by its route pattern (never the raw URL),
 * when its response finishes or, for a stream the client leaves, closes. A
 * client that leaves before the answer is counted as 499, not as the status
 * the response was preset with (200, or 201 for a POST).
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: MetricsService) {}

  use(request: Request, response: Response, next: NextFunction): void {
    const stopTimer = this.metrics.httpRequestDuration.startTimer();
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const route = (request.route as { path?: string } | undefined)?.path;
      stopTimer({
        method: request.method,
        route: route ? `${request.baseUrl}${route}` : 'unmatched',
        status: response.headersSent ? String(response.statusCode) : CLIENT_CLOSED_REQUEST,
      });
    };
    response.once('finish', record);
    response.once('close', record);
    next();
  }
}
