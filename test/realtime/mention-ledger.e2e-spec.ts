import { randomUUID } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import { MentionLedger, NOTIFIED_TTL_MS } from '@app/messages/mention-ledger';
import type { RedisService } from '@app/redis/redis.service';

const describeWithRedis = process.env.REDIS_URL ? describe : describe.skip;

/** Nodes telling apart, through a real Redis under a key prefix of their own, whose mentions went out. */
describeWithRedis('MentionLedger across nodes', () => {
  let client: RedisClientType;
  let prefix: string;
  /** Whether the nodes' Redis answers. */
  let answering: boolean;

  beforeAll(async () => {
    client = createClient({ url: process.env.REDIS_URL });
    await client.connect();
  });
  afterAll(() => client.close());

  beforeEach(() => {
    prefix = `mentions-spec:${randomUUID()}:`;
    answering = true;
  });
  afterEach(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
  });

  /** A node whose commands reach the shared Redis only while it answers. */
  const node = () =>
    new MentionLedger({
      enabled: true,
      client: {
        set: (...args: Parameters<RedisClientType['set']>) =>
          answering ? client.set(...args) : Promise.reject(new Error('Redis did not answer')),
        del: (...args: Parameters<RedisClientType['del']>) =>
          answering ? client.del(...args) : Promise.reject(new Error('Redis did not answer')),
      },
      key: (...parts: string[]) => `${prefix}${parts.join(':')}`,
      answered: <T>(command: Promise<T>) => command,
    } as unknown as RedisService);

  it('lets one node of all claim a message, for an hour', async () => {
    const [a, b] = [node(), node()];
    const message = randomUUID();

    expect(await Promise.all([a.claim(message), b.claim(message)])).toEqual([true, false]);
    expect(await a.claim(message)).toBe(false);
    expect(await b.claim(randomUUID())).toBe(true);
    const ttl = await client.pTTL(`${prefix}mentions-notified:${message}`);
    expect(ttl).toBeGreaterThan(NOTIFIED_TTL_MS - 60_000);
    expect(ttl).toBeLessThanOrEqual(NOTIFIED_TTL_MS);
  });

  it('goes by what the node itself claimed while Redis does not answer, also once it answers again', async () => {
    const a = node();
    const claimedBefore = randomUUID();
    expect(await a.claim(claimedBefore)).toBe(true);

    answering = false;
    const meanwhile = randomUUID();
    expect(await a.claim(claimedBefore)).toBe(false);
    expect(await a.claim(meanwhile)).toBe(true);
    expect(await a.claim(meanwhile)).toBe(false);

    answering = true;
    expect(await a.claim(meanwhile)).toBe(false);
  });

  it('lets a released claim be taken again, on any node', async () => {
    const [a, b] = [node(), node()];
    const message = randomUUID();
    expect(await a.claim(message)).toBe(true);

    await a.release(message);
    expect(await b.claim(message)).toBe(true);
    await b.release(message);
    expect(await a.claim(message)).toBe(true);
  });
});
