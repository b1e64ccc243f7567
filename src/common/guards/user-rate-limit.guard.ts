import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { RateLimitedAction } from '@app/config/app-config';
import type { AuthUser } from '@app/auth/auth-user';
import type { AuthenticatedRequest } from '@app/auth/jwt-auth.guard';
import type { AppSocket } from '@app/realtime/socket-data';
import { RATE_LIMITED_ACTION } from '@app/throttling/rate-limit.decorator';
import { RateLimitService } from '@app/throttling/rate-limit.service';

/** The authenticated caller of a live event, or of a REST route behind `@Authenticated()`. */
function callerOf(context: ExecutionContext): AuthUser {
  if (context.getType() === 'ws') return context.switchToWs().getClient<AppSocket>().data.user;
  return context.switchToHttp().getRequest<AuthenticatedRequest>().user;
}

/**
 * Throttles per user and action (`@RateLimit(...)` on the handler), before
 * anything is looked up, validated, stored or delivered: live events, and
 * the REST routes that do what a live event does, so that one budget spans
 * every transport. A guard, as Nest's own throttler is: it runs first, and
 * spares every event the Observable chain an interceptor would put around it.
 */
@Injectable()
export class UserRateLimitGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly rateLimits: RateLimitService,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const action = this.reflector.get<RateLimitedAction | undefined>(
      RATE_LIMITED_ACTION,
      context.getHandler(),
    );
    if (!action) return true;
    const user = callerOf(context);
    // Counted at once where the budgets are in memory: Nest then awaits nothing for this guard.
    if (this.rateLimits.consumeNow(action, user.id)) return true;
    return this.rateLimits.consume(action, user.id).then(() => true);
  }
}
