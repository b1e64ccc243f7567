import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { from, switchMap, type Observable } from 'rxjs';
import type { RateLimitedAction } from '@app/config/app-config';
import type { AppSocket } from '@app/realtime/socket-data';
import { RATE_LIMITED_ACTION } from '@app/throttling/rate-limit.decorator';
import { RateLimitService } from '@app/throttling/rate-limit.service';

/** Throttles live events per user and action, before anything is stored or delivered. */
@Injectable()
export class WsThrottleInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly rateLimits: RateLimitService,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const action = this.reflector.get<RateLimitedAction | undefined>(
      RATE_LIMITED_ACTION,
      context.getHandler(),
    );
    if (!action) return next.handle();
    const user = context.switchToWs().getClient<AppSocket>().data.user;
    return from(this.rateLimits.consume(action, user.id)).pipe(switchMap(() => next.handle()));
  }
}
