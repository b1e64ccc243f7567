import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import type { AckResponse } from '@app/contract/socket-events';
import { MetricsService } from '@app/metrics/metrics.service';

/** Wraps every handler result as `{ ok: true, data }`, the contract's successful ack. */
@Injectable()
export class WsAckInterceptor implements NestInterceptor {
  constructor(private readonly metrics: MetricsService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<AckResponse<unknown>> {
    const stopTimer = this.metrics.ackDuration.startTimer({
      event: context.switchToWs().getPattern(),
    });
    return next.handle().pipe(
      map((data: unknown) => {
        stopTimer();
        return { ok: true as const, data: data ?? {} };
      }),
    );
  }
}
