import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type RedisClientType } from 'redis';
import type { RedisService } from '@app/redis/redis.service';
import { RedisThrottlerStorage } from '@app/throttling/redis-throttler.storage';
import { withinTime } from '@app/common/time-limit';
import { TcpProxy } from '../support/tcp-proxy';

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
    expect(await hit(second, BLOCK_MS)).toMatchObject({ totalHits: LIMIT + 1, isBlocked: true });

    await sleep(BLOCK_MS - WINDOW_MS);
    expect(await hit(second, BLOCK_MS)).toMatchObject({ isBlocked: false });
  });

  it('counts nothing during a block, so a client that keeps trying is let through once it ends', async () => {
    const [first, second] = [node(), node()];
    for (let i = 0; i <= LIMIT; i += 1) await hit(first, BLOCK_MS);
    const blockEnds = Date.now() + BLOCK_MS;
    // Retries all along the block, on both nodes: more than the windows it spans would allow.
    for (let i = 0; Date.now() < blockEnds - 500; i += 1) {
      const retry = await hit(i % 2 === 0 ? first : second, BLOCK_MS);
      expect(retry).toMatchObject({ isBlocked: true, totalHits: LIMIT + 1 });
      await sleep(100);
    }
    await sleep(Math.max(0, blockEnds - Date.now()) + 50);
    expect(await hit(second, BLOCK_MS)).toMatchObject({ isBlocked: false, totalHits: 1 });
  });

  it('answers a key in the order asked when Redis stalls, though later ones are counted locally at once', async () => {
    const url = new URL(process.env.REDIS_URL!);
    const proxy = await TcpProxy.start(url.hostname, Number(url.port || 6379));
    const proxied = createClient({ url: `redis://127.0.0.1:${proxy.port}` });
    await proxied.connect();
    try {
      const storage = new RedisThrottlerStorage({
        client: proxied,
        key: (...parts: string[]) => `${prefix}${parts.join(':')}`,
        // As RedisService answers: a command that takes too long fails.
        answered: <T>(command: Promise<T>) =>
          withinTime(command, 300, () => new Error('Redis did not answer')),
      } as unknown as RedisService);
      proxy.stall();
      const answered: string[] = [];
      const ask = (name: string) =>
        hit(storage).then(
          () => answered.push(name),
          () => answered.push(`${name} failed`),
        );
      const first = ask('first');
      await sleep(100);
      const second = ask('second');
      // The first has timed out: from now on this node counts alone, at once.
      await sleep(250);
      const third = ask('third');
      await Promise.all([first, second, third]);
      expect(answered).toEqual(['first', 'second', 'third']);
    } finally {
      await proxy.cut();
      proxied.destroy();
    }
  });

  it('gives a hit back on every node, and ends a window emptied so', async () => {
    const [first, second] = [node(), node()];
    await hit(first);
    await hit(second);
    await first.refund('user-1', 'message');
    expect((await hit(second)).totalHits).toBe(2);

    await second.refund('user-1', 'message');
    await second.refund('user-1', 'message');
    await second.refund('user-1', 'message');
    expect(await client.keys(`${prefix}*`)).toEqual([]);
    expect((await hit(first)).totalHits).toBe(1);
  });

  it('gives nothing back from a blocked budget', async () => {
    const [first, second] = [node(), node()];
    for (let i = 0; i <= LIMIT; i += 1) await hit(first, BLOCK_MS);
    await second.refund('user-1', 'message');
    expect(await hit(second, BLOCK_MS)).toMatchObject({ isBlocked: true, totalHits: LIMIT + 1 });
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
