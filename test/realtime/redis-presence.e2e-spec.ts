import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type RedisClientType } from 'redis';
import { RedisPresenceStore } from '@app/chat/redis-presence-store';
import { RedisTrouble, type RedisService } from '@app/redis/redis.service';

const describeWithRedis = process.env.REDIS_URL ? describe : describe.skip;
const TTL_MS = 2_000;

/** The cross-node presence store, against a real Redis under a key prefix of its own. */
describeWithRedis('RedisPresenceStore', () => {
  let client: RedisClientType;
  let prefix: string;
  let store: RedisPresenceStore;
  /** What the nodes' RedisService would call when a connection to Redis fails or comes back. */
  let troubleListeners: Array<(trouble: RedisTrouble) => void>;
  const redisTrouble = (trouble = RedisTrouble.Lost) =>
    troubleListeners.forEach((listener) => listener(trouble));
  let redis: RedisService;

  beforeAll(async () => {
    client = createClient({ url: process.env.REDIS_URL });
    await client.connect();
  });
  afterAll(() => client.close());

  beforeEach(() => {
    prefix = `presence-spec:${randomUUID()}:`;
    troubleListeners = [];
    redis = {
      client,
      key: (...parts: string[]) => `${prefix}${parts.join(':')}`,
      answered: <T>(command: Promise<T>) => command,
      onTrouble: (listener: (trouble: RedisTrouble) => void) => troubleListeners.push(listener),
    } as unknown as RedisService;
    store = new RedisPresenceStore(redis, TTL_MS);
  });
  afterEach(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
  });

  /** More entries than one heartbeat script takes, over several rooms. */
  const manyEntries = (count: number) =>
    Array.from({ length: count }, (_, index) => ({
      roomId: `room-${index % 3}`,
      user: { id: `user-${index}`, username: `user${index}` },
      connectionId: `conn-${index}`,
    }));

  /** This node, and another holding `count` entries, at an entry life of `ttlMs`. */
  const withOtherNode = async (ttlMs: number, count: number) => {
    const live = new RedisPresenceStore(redis, ttlMs);
    const otherNode = new RedisPresenceStore(redis, ttlMs);
    const entries = manyEntries(count);
    for (const { roomId, user, connectionId } of entries)
      await otherNode.enter(roomId, user, connectionId);
    return { live, otherNode, entries };
  };

  /** Redis is back: the other node beats before this one sweeps anything, and again an entry life later. */
  const expectBeatsBeforeSweeps = async (
    { live, otherNode, entries }: Awaited<ReturnType<typeof withOtherNode>>,
    ttlMs: number,
  ) => {
    expect(await live.sweep()).toEqual({ gone: [] });
    expect(await otherNode.refresh(entries)).toEqual({ back: [], added: [] });
    await sleep(ttlMs + 50);
    expect(await otherNode.refresh(entries)).toEqual({ back: [], added: [] });
    expect(await live.sweep()).toEqual({ gone: [] });
  };

  /** A node that holds ada in room-0, then dies. */
  const deadNodeWithAda = async (ttlMs: number) => {
    const ada = { id: 'user-ada', username: 'ada' };
    await new RedisPresenceStore(redis, ttlMs).enter('room-0', ada, 'conn-ada');
    return ada;
  };

  it('keeps every entry of a large heartbeat alive past its first expiry', async () => {
    const entries = manyEntries(1_234);
    await Promise.all(
      entries.map(({ roomId, user, connectionId }) => store.enter(roomId, user, connectionId)),
    );
    await sleep(TTL_MS / 2);
    expect(await store.refresh(entries)).toEqual({ back: [], added: [] });
    await sleep(TTL_MS / 2 + 50);

    expect(await store.sweep()).toEqual({ gone: [] });
    const present = await Promise.all([0, 1, 2].map((room) => store.users(`room-${room}`)));
    expect(present.map((users) => users.length)).toEqual([412, 411, 411]);
  });

  it('sweeps a dead node’s entries beyond one script’s batch in one heartbeat, also when users have several', async () => {
    // Each user twice: a batch takes out entries that leave no user gone.
    const entries = manyEntries(1_234).flatMap((entry) => [
      entry,
      { ...entry, connectionId: `${entry.connectionId}-second-tab` },
    ]);
    await Promise.all(
      entries.map(({ roomId, user, connectionId }) => store.enter(roomId, user, connectionId)),
    );
    await sleep(TTL_MS + 50);

    const { gone: swept } = await store.sweep();

    expect(swept).toHaveLength(1_234);
    expect(new Set(swept.map((entry) => entry.user.id)).size).toBe(1_234);
    expect(await store.users('room-0')).toEqual([]);
    expect(await store.sweep()).toEqual({ gone: [] });
  });

  it('announces back exactly the swept users whose node beats again, wherever they sit in the batch', async () => {
    const entries = manyEntries(1_100);
    const returning = [entries[3], entries[700], entries[1_099]];
    for (const { roomId, user, connectionId } of returning) {
      await store.enter(roomId, user, connectionId);
    }
    await sleep(TTL_MS + 50);
    const { gone: swept } = await store.sweep();
    expect(swept).toHaveLength(3);
    expect(await store.users(returning[1].roomId)).toEqual([]);

    const { back } = await store.refresh(entries);

    expect(back).toEqual(returning.map(({ roomId, user }) => ({ roomId, user })));
    expect(await store.users(returning[1].roomId)).toContainEqual(returning[1].user);
    // Counted once: the user's only connection leaving is their last one out.
    const { roomId, user, connectionId } = returning[2];
    expect(await store.leave(roomId, user, connectionId)).toBe(true);
  });

  it('does not announce back a user whom the sweep left present through another node', async () => {
    const ada = { id: 'ada', username: 'ada' };
    await store.enter('r', ada, 'on-stalled-node');
    await sleep(TTL_MS * 0.6);
    await store.enter('r', ada, 'on-live-node');
    await sleep(TTL_MS * 0.5);
    expect(await store.sweep()).toEqual({ gone: [] });

    expect(
      await store.refresh([{ roomId: 'r', user: ada, connectionId: 'on-stalled-node' }]),
    ).toEqual({ back: [], added: [] });
    expect(await store.leave('r', ada, 'on-live-node')).toBe(false);
    expect(await store.leave('r', ada, 'on-stalled-node')).toBe(true);
  });

  it('sweeps nothing for one entry life after Redis was away, so that every node beats first', async () => {
    const otherNode = new RedisPresenceStore(redis, TTL_MS);
    const entries = manyEntries(10);
    for (const { roomId, user, connectionId } of entries)
      await otherNode.enter(roomId, user, connectionId);
    // Redis was away longer than an entry's life, and kept its data: no entry was renewed.
    await sleep(TTL_MS + 50);
    redisTrouble();

    expect(await store.sweep()).toEqual({ gone: [] });
    expect(await otherNode.refresh(entries)).toEqual({ back: [], added: [] });
    await sleep(TTL_MS + 50);
    expect(await otherNode.refresh(entries)).toEqual({ back: [], added: [] });
    expect(await store.sweep()).toEqual({ gone: [] });
    expect(await store.users('room-0')).toHaveLength(4);
  });

  it('sweeps a dead node’s entries while trouble never ends, three entry lives after it began', async () => {
    const ttlMs = 300;
    const live = new RedisPresenceStore(redis, ttlMs);
    const ada = await deadNodeWithAda(ttlMs);
    redisTrouble();
    const troubleBegan = Date.now();
    let sweep = await live.sweep();
    // Redis troubles every node a few times an entry life, on and on.
    while (sweep.gone.length === 0 && Date.now() - troubleBegan < 10 * ttlMs) {
      await sleep(ttlMs / 6);
      redisTrouble();
      sweep = await live.sweep();
    }
    expect(sweep).toEqual({ gone: [{ roomId: 'room-0', user: ada }] });
    expect(Date.now() - troubleBegan).toBeGreaterThanOrEqual(3 * ttlMs);
  });

  it('sweeps a dead node’s entries while Redis goes away and comes back on and on, three entry lives after it first came back', async () => {
    const ttlMs = 300;
    const live = new RedisPresenceStore(redis, ttlMs);
    const ada = await deadNodeWithAda(ttlMs);
    redisTrouble(RedisTrouble.Lost);
    redisTrouble(RedisTrouble.Restored);
    const firstBack = Date.now();
    let sweep = await live.sweep();
    while (sweep.gone.length === 0 && Date.now() - firstBack < 10 * ttlMs) {
      await sleep(ttlMs / 6);
      redisTrouble(RedisTrouble.Lost);
      redisTrouble(RedisTrouble.Restored);
      sweep = await live.sweep();
    }
    expect(sweep).toEqual({ gone: [{ roomId: 'room-0', user: ada }] });
    expect(Date.now() - firstBack).toBeGreaterThanOrEqual(3 * ttlMs);
  });

  /** Redis away for four entry lives, longer than the most that trouble postpones sweeps. */
  const awayLong = async (ttlMs: number) => {
    const awayUntil = Date.now() + 4 * ttlMs;
    while (Date.now() < awayUntil) {
      redisTrouble(RedisTrouble.Lost);
      await sleep(ttlMs / 3);
    }
    redisTrouble(RedisTrouble.Restored);
  };

  it('gives every node an entry life to beat after Redis is back, however long it was away', async () => {
    const nodes = await withOtherNode(300, 3);
    // No entry was renewed meanwhile.
    await awayLong(300);
    await expectBeatsBeforeSweeps(nodes, 300);
  });

  it('gives every node an entry life to beat after a long outage that follows a brief drop', async () => {
    const nodes = await withOtherNode(300, 3);
    redisTrouble(RedisTrouble.Lost);
    redisTrouble(RedisTrouble.Restored);
    await sleep(300 / 6);
    // Away past the cap counted from the brief drop's return; no entry was renewed.
    await awayLong(300);
    await expectBeatsBeforeSweeps(nodes, 300);
    expect(await nodes.live.users('room-0')).toHaveLength(1);
  });

  it('sweeps a dead node’s entries half an entry life after Redis stays back, though it was away for long again and again', async () => {
    const ttlMs = 1_000;
    const live = new RedisPresenceStore(redis, ttlMs);
    const ada = await deadNodeWithAda(ttlMs);
    const flappingUntil = Date.now() + 3.5 * ttlMs;
    while (Date.now() < flappingUntil) {
      redisTrouble(RedisTrouble.Lost);
      await sleep(ttlMs / 2);
      redisTrouble(RedisTrouble.Restored);
      await sleep(ttlMs / 10);
      expect(await live.sweep()).toEqual({ gone: [] });
    }

    await sleep(0.7 * ttlMs);
    expect(await live.sweep()).toEqual({ gone: [{ roomId: 'room-0', user: ada }] });
  });

  it('reports the users a heartbeat made present that Redis did not know of, and only those', async () => {
    const ada = { id: 'ada', username: 'ada' };
    const bob = { id: 'bob', username: 'bob' };
    const cy = { id: 'cy', username: 'cy' };
    await store.enter('r', ada, 'stored');
    await store.enter('r', bob, 'stored');
    const entries = [
      { roomId: 'r', user: ada, connectionId: 'stored' },
      // Another connection of a user Redis knows is here: no news.
      { roomId: 'r', user: bob, connectionId: 'missed' },
      // A join whose entry never reached Redis (it was away).
      { roomId: 'r', user: cy, connectionId: 'missed' },
    ];

    expect(await store.refresh(entries)).toEqual({ back: [], added: [{ roomId: 'r', user: cy }] });
    expect(await store.refresh(entries)).toEqual({ back: [], added: [] });
    expect(await store.users('r')).toHaveLength(3);
  });

  it('lists and keeps the entries of a node whose clock is far behind this one’s', async () => {
    const ada = { id: 'ada', username: 'ada' };
    const behind = new RedisPresenceStore(redis, TTL_MS);
    await behind.enter('r', ada, 'on-node-behind');
    // This node's clock is several entry lives ahead: Redis's clock decides, not either node's.
    const ahead = Date.now() + 5 * TTL_MS;
    jest.spyOn(Date, 'now').mockImplementation(() => ahead);
    try {
      expect(await store.users('r')).toEqual([ada]);
      expect(await store.sweep()).toEqual({ gone: [] });
    } finally {
      jest.restoreAllMocks();
    }
    expect(await behind.users('r')).toEqual([ada]);
  });

  it('tells a leave whose entry was swept, or is held through another, from one Redis lost', async () => {
    const ada = { id: 'ada', username: 'ada' };
    const bob = { id: 'bob', username: 'bob' };
    await store.enter('r', ada, 'swept');
    await store.enter('r', bob, 'swept');
    await store.enter('r', bob, 'kept');
    await sleep(TTL_MS / 2);
    await store.refresh([{ roomId: 'r', user: bob, connectionId: 'kept' }]);
    await sleep(TTL_MS / 2 + 50);
    expect((await store.sweep()).gone).toEqual([{ roomId: 'r', user: ada }]);

    // Announced gone by the sweep, and still here through another entry: not the last out now.
    expect(await store.leave('r', ada, 'swept')).toBe(false);
    expect(await store.leave('r', bob, 'swept')).toBe(false);
    // Redis came back without its data: it cannot tell.
    await client.del(await client.keys(`${prefix}*`));
    expect(await store.leave('r', bob, 'kept')).toBeUndefined();
  });
});

describe('RedisPresenceStore when one heartbeat batch fails', () => {
  it('still reports the users the other batches brought back, and the failure', async () => {
    let call = 0;
    const redis = {
      key: (...parts: string[]) => parts.join(':'),
      onTrouble: () => undefined,
      client: {
        eval: () => (++call === 1 ? Promise.reject(new Error('BUSY')) : Promise.resolve([[1], []])),
      },
    } as unknown as RedisService;
    const store = new RedisPresenceStore(redis, 30_000);
    const entries = Array.from({ length: 501 }, (_, i) => ({
      roomId: 'r',
      user: { id: `u${i}`, username: `n${i}` },
      connectionId: `c${i}`,
    }));

    const { back, error } = await store.refresh(entries);

    expect(back).toEqual([{ roomId: 'r', user: { id: 'u500', username: 'n500' } }]);
    expect(error?.message).toBe('BUSY');
  });

  it('sweeps nothing for one entry life after a failed or slow heartbeat', async () => {
    const ttlMs = 600;
    let pingMs = 0;
    const swept: string[] = [];
    const redis = {
      key: (...parts: string[]) => parts.join(':'),
      onTrouble: () => undefined,
      client: {
        ping: () => sleep(pingMs).then(() => 'PONG'),
        eval: () => Promise.reject(new Error('down')),
      },
    } as unknown as RedisService;
    const store = new RedisPresenceStore(redis, ttlMs);
    const sweep = async () => swept.push((await store.sweep()).error?.message ?? 'held back');
    const ada = [{ roomId: 'r', user: { id: 'a', username: 'ada' }, connectionId: 'c' }];

    await sweep();
    expect((await store.refresh(ada)).error?.message).toBe('down');
    await sweep();
    await sleep(ttlMs + 50);
    await sweep();
    pingMs = ttlMs / 3 + 50;
    expect(await store.refresh([])).toEqual({ back: [], added: [] });
    await sweep();

    expect(swept).toEqual(['down', 'held back', 'down', 'held back']);
  });

  it('still announces the users an earlier sweep script took out when a later one fails', async () => {
    const fullBatch = Array.from({ length: 500 }, (_, i) => `r|u${i}|c${i}|n${i}`);
    const answers = [
      () => Promise.resolve([500, fullBatch]),
      () => Promise.reject(new Error('READONLY')),
    ];
    const redis = {
      key: (...parts: string[]) => parts.join(':'),
      onTrouble: () => undefined,
      client: { eval: () => answers.shift()!() },
    } as unknown as RedisService;
    const store = new RedisPresenceStore(redis, 30_000);

    const { gone, error } = await store.sweep();

    expect(gone).toHaveLength(500);
    expect(gone[499]).toEqual({ roomId: 'r', user: { id: 'u499', username: 'n499' } });
    expect(error?.message).toBe('READONLY');
  });
});
