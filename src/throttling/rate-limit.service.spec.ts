import type { ConfigService } from '@nestjs/config';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { AllConfig } from '@app/config/app-config';
import { MemoryThrottlerStorage } from './memory-throttler.storage';
import { RateLimitService } from './rate-limit.service';

const config = {
  get: () => ({ message: { limit: 2, windowMs: 60_000 } }),
} as unknown as ConfigService<AllConfig, true>;

describe('RateLimitService', () => {
  it('counts both ways into one budget when it lives in memory', async () => {
    const limits = new RateLimitService(new MemoryThrottlerStorage(), config);
    expect(limits.consumeNow('message', 'u1')).toBe(true);
    await expect(limits.consume('message', 'u1')).resolves.toBeUndefined();
    await expect(limits.consume('message', 'u1')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(() => limits.consumeNow('message', 'u1')).toThrow(
      expect.objectContaining({ code: 'RATE_LIMITED' }),
    );
    expect(limits.consumeNow('message', 'u2')).toBe(true);
  });

  it('counts nothing at once when the budgets are kept elsewhere', async () => {
    const increment = jest.fn<ReturnType<ThrottlerStorage['increment']>, unknown[]>(() =>
      Promise.resolve({ totalHits: 3, timeToExpire: 4, isBlocked: false, timeToBlockExpire: 0 }),
    );
    const limits = new RateLimitService({ increment, refund: () => Promise.resolve() }, config);
    expect(limits.consumeNow('message', 'u1')).toBe(false);
    expect(increment).not.toHaveBeenCalled();
    await expect(limits.consume('message', 'u1')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      message: 'Too many message requests: retry in 4 s',
    });
    expect(increment).toHaveBeenCalledTimes(1);
  });
});
