import { Global, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule, type ThrottlerModuleOptions } from '@nestjs/throttler';
import type { ExecutionContext } from '@nestjs/common';
import type { AllConfig } from '@app/config/app-config';
import { RedisService } from '@app/redis/redis.service';
import { AddressThrottlerGuard } from './address-throttler.guard';
import { RateLimitService } from './rate-limit.service';
import { MemoryThrottlerStorage } from './memory-throttler.storage';
import { RedisThrottlerStorage } from './redis-throttler.storage';
import { STRICT_RATE_LIMIT } from './strict-rate-limit.decorator';
import { THROTTLER_DEFAULT, THROTTLER_STRICT } from './throttler-names';

function isStrictRoute(context: ExecutionContext): boolean {
  return Reflect.getMetadata(STRICT_RATE_LIMIT, context.getHandler()) === true;
}

/**
 * One budget per client address across every route, as configured and
 * documented; the throttler's default key adds the route's class and
 * handler, which would multiply the budget by the number of routes.
 */
function perClientAddress(_context: ExecutionContext, tracker: string, throttler: string): string {
  return `rest:${throttler}:${tracker}`;
}

function throttlerOptions(
  config: ConfigService<AllConfig, true>,
  redis: RedisService,
): ThrottlerModuleOptions {
  const throttle = config.get('throttle', { infer: true });
  return {
    // With Redis, every budget is shared by all nodes.
    storage: redis.enabled ? new RedisThrottlerStorage(redis) : new MemoryThrottlerStorage(),
    generateKey: perClientAddress,
    throttlers: [
      { name: THROTTLER_DEFAULT, limit: throttle.defaultLimit, ttl: throttle.defaultTtlMs },
      {
        name: THROTTLER_STRICT,
        limit: throttle.authLimit,
        ttl: throttle.authTtlMs,
        skipIf: (context) => !isStrictRoute(context),
      },
    ],
  };
}

/** REST rate limits per client address, applied to every route. */
@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [ConfigService, RedisService],
      useFactory: throttlerOptions,
    }),
  ],
  providers: [{ provide: APP_GUARD, useClass: AddressThrottlerGuard }, RateLimitService],
  exports: [RateLimitService],
})
export class ThrottlingModule {}
