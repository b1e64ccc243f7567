import type { ExecutionContext } from '@nestjs/common';
import type { ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import type { AllConfig } from '@app/config/app-config';
import {
  MemoryThrottlerStorage,
  type RefundableThrottlerStorage,
} from '@app/throttling/memory-throttler.storage';
import { RateLimit } from '@app/throttling/rate-limit.decorator';
import { RateLimitService } from '@app/throttling/rate-limit.service';
import { UserRateLimitGuard } from './user-rate-limit.guard';

class Gateway {
  @RateLimit('message')
  send(): void {}

  leave(): void {}
}

function contextFor(handler: () => void): ExecutionContext {
  const client = { data: { user: { id: 'u1', username: 'ada', tokenExpiresAt: Infinity } } };
  return {
    getType: () => 'ws',
    getHandler: () => handler,
    switchToWs: () => ({ getClient: () => client }),
  } as unknown as ExecutionContext;
}

/** A REST request behind `@Authenticated()`, whose guard has set the user. */
function httpContextFor(handler: () => void, userId: string): ExecutionContext {
  const request = { user: { id: userId, username: 'ada', tokenExpiresAt: Infinity } };
  return {
    getType: () => 'http',
    getHandler: () => handler,
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
}

const config = {
  get: () => ({ message: { limit: 2, windowMs: 60_000 } }),
} as unknown as ConfigService<AllConfig, true>;

/** A storage kept outside the process, as Redis is: it can only answer later. */
function remoteStorage(): RefundableThrottlerStorage & { keys: string[] } {
  const memory = new MemoryThrottlerStorage();
  const keys: string[] = [];
  return {
    keys,
    increment: async (key, ttl, limit, blockDuration, name) => {
      keys.push(key);
      await new Promise((resolve) => setImmediate(resolve));
      return memory.increment(key, ttl, limit, blockDuration, name);
    },
    refund: (key, name) => memory.refund(key, name),
  };
}

describe('UserRateLimitGuard', () => {
  const gateway = new Gateway();

  describe('with budgets in memory', () => {
    const guardWith = () =>
      new UserRateLimitGuard(
        new Reflector(),
        new RateLimitService(new MemoryThrottlerStorage(), config),
      );

    it("spends the user's budget at once, with nothing to await", () => {
      const guard = guardWith();
      expect(guard.canActivate(contextFor(gateway.send))).toBe(true);
      expect(guard.canActivate(contextFor(gateway.send))).toBe(true);
    });

    it('refuses with RATE_LIMITED once the budget is spent', () => {
      const guard = guardWith();
      expect(guard.canActivate(contextFor(gateway.send))).toBe(true);
      expect(guard.canActivate(contextFor(gateway.send))).toBe(true);
      expect(() => guard.canActivate(contextFor(gateway.send))).toThrow(
        expect.objectContaining({ code: 'RATE_LIMITED' }),
      );
    });

    it('lets handlers without a rate limit through without counting', () => {
      const guard = guardWith();
      for (let i = 0; i < 5; i += 1)
        expect(guard.canActivate(contextFor(gateway.leave))).toBe(true);
      expect(guard.canActivate(contextFor(gateway.send))).toBe(true);
    });
  });

  describe('on REST routes', () => {
    it('spends the same budget as the live events of the user', () => {
      const guard = new UserRateLimitGuard(
        new Reflector(),
        new RateLimitService(new MemoryThrottlerStorage(), config),
      );
      expect(guard.canActivate(contextFor(gateway.send))).toBe(true);
      expect(guard.canActivate(httpContextFor(gateway.send, 'u1'))).toBe(true);
      expect(() => guard.canActivate(httpContextFor(gateway.send, 'u1'))).toThrow(
        expect.objectContaining({ code: 'RATE_LIMITED' }),
      );
      expect(guard.canActivate(httpContextFor(gateway.send, 'u2'))).toBe(true);
    });
  });

  describe('with budgets kept elsewhere', () => {
    it("waits for the storage to count the user's budget", async () => {
      const storage = remoteStorage();
      const guard = new UserRateLimitGuard(new Reflector(), new RateLimitService(storage, config));
      await expect(guard.canActivate(contextFor(gateway.send))).resolves.toBe(true);
      expect(storage.keys).toEqual(['rt:message:u1']);
    });

    it('refuses with RATE_LIMITED once the budget is spent, counting each event once', async () => {
      const storage = remoteStorage();
      const guard = new UserRateLimitGuard(new Reflector(), new RateLimitService(storage, config));
      await guard.canActivate(contextFor(gateway.send));
      await guard.canActivate(contextFor(gateway.send));
      await expect(guard.canActivate(contextFor(gateway.send))).rejects.toMatchObject({
        code: 'RATE_LIMITED',
      });
      expect(storage.keys).toHaveLength(3);
    });
  });
});
