import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfigService } from '@nestjs/config';
import { createClient, type RedisClientType } from 'redis';
import type { AllConfig } from '@app/config/app-config';
import type { RedisService } from '@app/redis/redis.service';
import { UserSlots } from '@app/realtime/user-slots';

const TTL_MS = 3_000;
const describeWithRedis = process.env.REDIS_URL ? describe : describe.skip;

/** Two slots a user, as one node counts them with the others through Redis. */
class TwoSlots extends UserSlots {
  constructor(redis: RedisService) {
    const config = { get: () => TTL_MS } as unknown as ConfigService<AllConfig, true>;
    super(config, redis, 'slots', 'things');
  }

  protected get max(): number {
    return 2;
  }
}

/** The per-user cap over all nodes, against a real Redis under a key prefix of its own. */
describeWithRedis('UserSlots across nodes', () => {
  let client: RedisClientType;
  let prefix: string;
  let redis: RedisService;
  const nodes: TwoSlots[] = [];

  beforeAll(async () => {
    client = createClient({ url: process.env.REDIS_URL });
    await client.connect();
  });
  afterAll(() => client.close());

  beforeEach(() => {
    prefix = `slots-spec:${randomUUID()}:`;
    redis = {
      enabled: true,
      client,
      key: (...parts: string[]) => `${prefix}${parts.join(':')}`,
      answered: <T>(command: Promise<T>) => command,
    } as unknown as RedisService;
  });
  afterEach(async () => {
    for (const node of nodes.splice(0)) node.onApplicationShutdown();
    jest.restoreAllMocks();
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
  });

  const startNode = () => {
    const node = new TwoSlots(redis);
    node.onModuleInit();
    nodes.push(node);
    return node;
  };

  it('keeps counting the slots another node holds, its heartbeat past their first expiry', async () => {
    const holder = startNode();
    await holder.acquire('ada', 'one');
    await holder.acquire('ada', 'two');
    await sleep(2 * TTL_MS);

    await expect(startNode().acquire('ada', 'three')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });
  });

  it('counts the slots of a node whose clock is far behind this one’s', async () => {
    const behind = startNode();
    await behind.acquire('ada', 'one');
    await behind.acquire('ada', 'two');
    const ahead = startNode();
    // Several lives ahead: Redis's clock decides whether a holder expired, not either node's.
    const later = Date.now() + 5 * TTL_MS;
    jest.spyOn(Date, 'now').mockImplementation(() => later);

    await expect(ahead.acquire('ada', 'three')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('frees the slots of a node that stopped beating once they expire', async () => {
    const dead = startNode();
    await dead.acquire('ada', 'one');
    await dead.acquire('ada', 'two');
    dead.onApplicationShutdown();
    await sleep(TTL_MS + 100);

    await expect(startNode().acquire('ada', 'three')).resolves.toBeUndefined();
  });
});
