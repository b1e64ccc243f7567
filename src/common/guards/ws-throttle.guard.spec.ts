import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AppException } from '@app/common/errors/app.exception';
import { RateLimit } from '@app/throttling/rate-limit.decorator';
import type { RateLimitService } from '@app/throttling/rate-limit.service';
import { WsThrottleGuard } from './ws-throttle.guard';

class Gateway {
  @RateLimit('message')
  send(): void {}

  leave(): void {}
}

function contextFor(handler: () => void): ExecutionContext {
  const client = { data: { user: { id: 'u1', username: 'ada', tokenExpiresAt: Infinity } } };
  return {
    getHandler: () => handler,
    switchToWs: () => ({ getClient: () => client }),
  } as unknown as ExecutionContext;
}

describe('WsThrottleGuard', () => {
  const consume = jest.fn();
  const guard = new WsThrottleGuard(new Reflector(), { consume } as unknown as RateLimitService);
  const gateway = new Gateway();

  beforeEach(() => consume.mockReset().mockResolvedValue(undefined));

  it("spends the user's budget for the handler's action", async () => {
    await expect(guard.canActivate(contextFor(gateway.send))).resolves.toBe(true);
    expect(consume).toHaveBeenCalledWith('message', 'u1');
  });

  it('lets handlers without a rate limit through without counting', async () => {
    await expect(guard.canActivate(contextFor(gateway.leave))).resolves.toBe(true);
    expect(consume).not.toHaveBeenCalled();
  });

  it('refuses with RATE_LIMITED once the budget is spent', async () => {
    consume.mockRejectedValue(AppException.rateLimited('Too many message requests'));
    await expect(guard.canActivate(contextFor(gateway.send))).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });
  });
});
