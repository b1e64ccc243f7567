import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type RedisClientType } from 'redis';
import type { RedisService } from '@app/redis/redis.service';
import { RedisThrottlerStorage } from '@app/throttling/redis-throttler.storage';

const describeWithRedis = process.env.REDIS_URL ? describe : describe.skip;

const WINDOW_MS = 600;
const LIMIT = 3;
const BLOCK_MS = 3_000;

/** The throttler's shared counters, against a real Redis under a key prefix of its own. */
describeWithRedis('RedisThrottlerStorage', () => {
  let client: RedisClientType;
  let prefix: string;

  beforeAll(async () => {
    client = createClient({ url: process.env.REDIS_URL });
    await client.connect();
  });
  afterAll(() => client.close());

  beforeEach(() => {
    prefix = `throttler-spec:${randomUUID()}:`;
  });
  afterEach(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
  });

  /** One node's storage; several share the counters through Redis. */
  const node = () =>
    new RedisThrottlerStorage({
      client,
      key: (...parts: string[]) => `${prefix}${parts.join(':')}`,
      answered: <T>(command: Promise<T>) => command,
    } as unknown as RedisService);

  const hit = (storage: RedisThrottlerStorage, blockMs = 0) =>
    storage.increment('user-1', WINDOW_MS, LIMIT, blockMs, 'message');

  it('counts the hits of every node in one window, and starts a new window once it expires', async () => {
    const [first, second] = [node(), node()];
    const counts = [];
    for (const storage of [first, second, first, second])
      counts.push((await hit(storage)).totalHits);
    expect(counts).toEqual([1, 2, 3, 4]);

    await sleep(WINDOW_MS + 100);
    const fresh = await hit(second);
    expect(fresh).toMatchObject({ totalHits: 1, isBlocked: false });
    expect(fresh.timeToExpire).toBe(Math.ceil(WINDOW_MS / 1000));
  });

  it('keeps a budget blocked on every node for the block duration, past the window', async () => {
    const [first, second] = [node(), node()];
    for (let i = 0; i < LIMIT; i += 1) expect((await hit(first, BLOCK_MS)).isBlocked).toBe(false);

    const over = await hit(first, BLOCK_MS);
    expect(over).toMatchObject({ isBlocked: true, timeToBlockExpire: Math.ceil(BLOCK_MS / 1000) });
    await sleep(WINDOW_MS + 100);
    expect(await hit(second, BLOCK_MS)).toMatchObject({ totalHits: 1, isBlocked: true });

    await sleep(BLOCK_MS - WINDOW_MS);
    expect(await hit(second, BLOCK_MS)).toMatchObject({ isBlocked: false });
  });

  it('keeps the budgets of different keys and throttlers apart', async () => {
    const storage = node();
    await hit(storage);
    await hit(storage);
    const other = await storage.increment('user-2', WINDOW_MS, LIMIT, 0, 'message');
    const otherThrottler = await storage.increment('user-1', WINDOW_MS, LIMIT, 0, 'typing');
    expect([other.totalHits, otherThrottler.totalHits]).toEqual([1, 1]);
  });
});
