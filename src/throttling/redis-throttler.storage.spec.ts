import { Logger } from '@nestjs/common';
import type { RedisService } from '@app/redis/redis.service';
import { LOCAL_COUNTING_MS, RedisThrottlerStorage } from './redis-throttler.storage';

/** A Redis whose scripts fail while `down`, counted by `calls`. */
function fakeRedis() {
  const state = { down: true, calls: 0 };
  const redis = {
    key: (...parts: string[]) => parts.join(':'),
    answered: <T>(command: Promise<T>) => command,
    client: {
      eval: () => {
        state.calls += 1;
        return state.down
          ? Promise.reject(new Error('Redis did not answer in time'))
          : Promise.resolve([1, 1000, 0]);
      },
    },
  } as unknown as RedisService;
  return { redis, state };
}

describe('RedisThrottlerStorage', () => {
  let warn: jest.SpyInstance;
  beforeEach(() => {
    jest.useFakeTimers();
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  const hit = (storage: RedisThrottlerStorage) => storage.increment('k', 60_000, 2, 0, 'default');

  it('counts in memory without asking Redis again for a while after a failure, and says so once', async () => {
    const { redis, state } = fakeRedis();
    const storage = new RedisThrottlerStorage(redis);

    const counts = [];
    for (let i = 0; i < 3; i += 1) counts.push((await hit(storage)).totalHits);

    expect(counts).toEqual([1, 2, 3]);
    expect(state.calls).toBe(1);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('asks Redis again once the period is over, and shares budgets when it answers', async () => {
    const { redis, state } = fakeRedis();
    const storage = new RedisThrottlerStorage(redis);
    await hit(storage);

    state.down = false;
    jest.advanceTimersByTime(LOCAL_COUNTING_MS);
    const shared = await hit(storage);

    expect(state.calls).toBe(2);
    expect(shared.totalHits).toBe(1);
    await hit(storage);
    expect(state.calls).toBe(3);
  });

  it('lets one request ask Redis after the period, the others counting locally until it answers', async () => {
    const { redis, state } = fakeRedis();
    const storage = new RedisThrottlerStorage(redis);
    await hit(storage);
    jest.advanceTimersByTime(LOCAL_COUNTING_MS);

    const together = await Promise.all([hit(storage), hit(storage), hit(storage)]);

    expect(state.calls).toBe(2);
    expect(together.map((record) => record.totalHits)).toEqual([4, 2, 3]);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('gives a hit back where it is counted while Redis is away', async () => {
    const { redis, state } = fakeRedis();
    const storage = new RedisThrottlerStorage(redis);
    await hit(storage);
    await hit(storage);

    await storage.refund('k', 'default');

    expect(state.calls).toBe(1);
    expect((await hit(storage)).totalHits).toBe(2);
  });

  it('counts alone once a refund finds Redis away', async () => {
    const { redis, state } = fakeRedis();
    state.down = false;
    const storage = new RedisThrottlerStorage(redis);
    state.down = true;

    await expect(storage.refund('k', 'default')).resolves.toBeUndefined();
    await hit(storage);

    expect(state.calls).toBe(1);
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
